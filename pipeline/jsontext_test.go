package pipeline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONText(t *testing.T) {
	for _, tc := range []struct {
		in     string
		path   string
		want   string
		reason Reason
	}{
		{`{"text": "hello"}`, "text", "hello", OK},
		{`  {"id":1,"text":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"} `, "text", "a\"b\\c/d\n\té😀", OK},
		{`{"meta":{"text":"deep"},"text":"top"}`, "meta.text", "deep", OK},
		{`{"meta":{"x":[1,{"text":"no"}],"text":"yes"}}`, "meta.text", "yes", OK},
		// A key of the path given twice takes its last value, as Python's
		// json does, and says so; keys of the same name elsewhere do not count.
		{`{"text":"first","text":"last"}`, "text", "last", DuplicateField},
		{`{"meta":{"text":"a","text":"b"}}`, "meta.text", "b", DuplicateField},
		{`{"meta":{"text":"a"},"meta":{"text":"b"}}`, "meta.text", "b", DuplicateField},
		{`{"meta":{"text":"a"},"meta":{"x":1}}`, "meta.text", "", MissingField},
		{`{"meta":{"text":"a"},"meta":"s"}`, "meta.text", "", MissingField},
		{`{"meta":{"text":"a"},"meta":{"text":7}}`, "meta.text", "", NotString},
		{`{"text":"a","meta":{"text":"b"},"x":[{"text":"c"}]}`, "text", "a", OK},
		{`{"meta":{"text":"a"},"meta2":{"text":"b"}}`, "meta.text", "a", OK},
		{`{"text":"x","text":3}`, "text", "", NotString},
		{`{"text":null}`, "text", "", NotString},
		{`{"text":["a"]}`, "text", "", NotString},
		{`{"body":"x"}`, "text", "", MissingField},
		{`{"meta":"x"}`, "meta.text", "", MissingField},
		{`{}`, "text", "", MissingField},
		// A lone surrogate escape in the text is decoded as U+FFFD and
		// reported as a repair; one in a key or another value is not.
		{`{"text":"\ud800 lone"}`, "text", "\uFFFD lone", OK},
		{`{"text":"x \udc00\ud800"}`, "text", "x \uFFFD\uFFFD", OK},
		{`{"a\ud800":"\udfff","text":"fine"}`, "text", "fine", OK},
		{`{"text":"\ud800","text":"fine"}`, "text", "fine", DuplicateField},
		{`{"text":"a\u0000b"}`, "text", "a\x00b", OK},
		{`{"text":"ok"`, "text", "", BadJSON},
		{`{"text":"ok"} x`, "text", "", BadJSON},
		{`{"text":"tab	inside"}`, "text", "", BadJSON},
		{`{"text":"bad \q escape"}`, "text", "", BadJSON},
		{`{"text":01}`, "text", "", BadJSON},
		{`{"text":1.}`, "text", "", BadJSON},
		{`{"n":-1.5e+3,"b":true,"f":false,"z":null,"text":"v"}`, "text", "v", OK},
		{`["text"]`, "text", "", BadJSON},
		{`{"text":"a",}`, "text", "", BadJSON},
		{`{'text':'a'}`, "text", "", BadJSON},
		{``, "text", "", BadJSON},
		{strings.Repeat("[", 20000), "text", "", BadJSON},
		{`{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"text":"deep"}`, "text", "", BadJSON},
		// Depth is nesting, not a count of containers: 12,000 side by side are fine, and so is 9,000 deep.
		{`{"a":[` + strings.Repeat(`{"b":[]},`, 12000) + `{}],"text":"wide"}`, "text", "wide", OK},
		{`{"x":` + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + `,"text":"deep"}`, "text", "deep", OK},
	} {
		prefix := []byte("keep:")
		got, reason, repair, err := jsonText(prefix, []byte(tc.in), strings.Split(tc.path, "."))
		if reason == OK && repair&repairDupBit != 0 {
			reason = DuplicateField
		}
		if reason != tc.reason || ((reason == OK || reason == DuplicateField) && string(got[5:]) != tc.want) || string(got[:5]) != "keep:" {
			t.Errorf("jsonText(%.60q, %q) = %q, %v, %v; want %q, %v", tc.in, tc.path, got, reason, err, tc.want, tc.reason)
		}
		if lone := strings.Contains(tc.want, "\uFFFD"); lone != (repair&repairSurrBit != 0) {
			t.Errorf("jsonText(%.60q): repair %b; want the lone surrogate bit %v", tc.in, repair, lone)
		}
		if (err != nil) != (tc.reason == BadJSON) {
			t.Errorf("jsonText(%.60q) error %v with reason %v", tc.in, err, reason)
		}
	}
}

// FuzzJSONText checks the scanner against encoding/json: both accept the
// same objects, and the text they find is the same.
func FuzzJSONText(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"text":"a","text":"b"}`, `{"a":[1,2,{"b":null}],"text":"x\u00e9"}`, `{"text":1}`, `{"t":"\ud83d\ude00"}`, `{"text":"a"`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, reason, repair, err := jsonText(nil, data, []string{"text"})
		// Decoding in place, over the record itself (as the pipeline
		// does, so a big record is not held twice), gives the same.
		inPlace := bytes.Clone(data)
		got2, reason2, _, err2 := jsonText(inPlace[:0:len(inPlace)], inPlace, []string{"text"})
		if reason2 != reason || (err == nil) != (err2 == nil) || reason == OK && !bytes.Equal(got, got2) {
			t.Fatalf("%q: in place %q %v %v, into a new buffer %q %v %v", data, got2, reason2, err2, got, reason, err)
		}
		var obj map[string]json.RawMessage
		stdErr := json.Unmarshal(data, &obj)
		if stdErr != nil || obj == nil {
			if reason != BadJSON && utf8.Valid(data) && stdErr != nil {
				t.Fatalf("encoding/json rejects %q (%v) but jsonText gives %v", data, stdErr, reason)
			}
			return
		}
		if !utf8.Valid(data) {
			return // encoding/json replaces invalid bytes; jsonText keeps them
		}
		if reason == BadJSON {
			t.Fatalf("jsonText rejects %q: %v", data, err)
		}
		raw, ok := obj["text"]
		var s string
		switch {
		case !ok:
			if reason != MissingField {
				t.Fatalf("%q: reason %v, want missing", data, reason)
			}
		case json.Unmarshal(raw, &s) != nil || string(raw) == "null":
			if reason != NotString {
				t.Fatalf("%q: reason %v, want not a string", data, reason)
			}
		default:
			if reason != OK || string(got) != s {
				t.Fatalf("%q: got %q (%v), encoding/json %q", data, got, reason, s)
			}
			if dup := topKeys(data, "text") > 1; dup != (repair&repairDupBit != 0) {
				t.Fatalf("%q: repair %b; a key given twice: %v", data, repair, dup)
			}
		}
	})
}

// topKeys counts the keys named key of the JSON object data (not of the
// objects inside it), by encoding/json's tokens.
func topKeys(data []byte, key string) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return 0
	}
	n := 0
	for dec.More() {
		k, err := dec.Token()
		var v json.RawMessage
		if err != nil || dec.Decode(&v) != nil {
			return n
		}
		if k == key {
			n++
		}
	}
	return n
}

// A byte order mark that starts a record (files joined with cat) is bad
// JSON that says so; a record without one still parses.
func TestRecordBOM(t *testing.T) {
	fields := [][]string{{"text"}}
	_, _, reason, _, detail := recordText([]byte("\xef\xbb\xbf{\"text\":\"b\"}"), fields, false, nil)
	if reason != BadJSON || !strings.Contains(detail, "byte order mark") {
		t.Errorf("a record after a BOM: %v %q; want bad_json naming the byte order mark", reason, detail)
	}
	if text, _, reason, _, _ := recordText([]byte(`{"text":"b"}`), fields, false, nil); reason != OK || string(text) != "b" {
		t.Errorf("a plain record: %v %q", reason, text)
	}
}
