package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// walkDoc returns the records jsonDoc cuts from doc with path, read
// through a bufio.Reader of size buf (16 makes every string straddle
// buffers), and the damage, if any.
func walkDoc(t *testing.T, doc []byte, path string, buf, maxDoc int) ([]record, []string, error) {
	t.Helper()
	d := jsonDoc{br: bufio.NewReaderSize(bytes.NewReader(doc), buf), path: splitPath(path), maxDoc: maxDoc}
	recs, texts, err := drain(d.next)
	if err != nil {
		t.Fatal(err)
	}
	return recs, texts, d.inErr
}

// randValue makes a JSON value with strings full of escapes and quotes.
func randValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(7); {
	case depth > 3 || k < 2:
		var b strings.Builder
		for range r.IntN(40) {
			b.WriteString([]string{`a`, `"`, `\`, `\\`, `\"`, "\n", `é`, `]`, `}`, `,`, `{"x":`, "\u2028", "\x01"}[r.IntN(13)])
		}
		return b.String()
	case k == 2:
		return r.Float64()*1e6 - 5e5
	case k == 3:
		return []any{nil, true, false}[r.IntN(3)]
	case k == 4:
		var l []any
		for range r.IntN(5) {
			l = append(l, randValue(r, depth+1))
		}
		return l
	default:
		m := map[string]any{}
		for i := range r.IntN(5) {
			m[fmt.Sprintf("k%d\"\\", i)] = randValue(r, depth+1)
		}
		return m
	}
}

// The records of a list, and of nested lists through a path, are the
// values encoding/json finds there, byte for byte as JSON, whatever the
// buffer size.
func TestJSONDocRecords(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		items := []any{}
		for range r.IntN(20) {
			v := randValue(r, 0)
			if l, ok := v.([]any); ok { // a list in a list is walked through, not a record
				v = map[string]any{"l": l}
			}
			items = append(items, v)
		}
		var want []string
		for _, it := range items {
			b, _ := json.Marshal(it)
			want = append(want, string(b))
		}
		// A list at the top, and SQuAD-like nesting: {"data": [{"p": [x, …]}, …]}.
		top, _ := json.Marshal(items)
		var arts []any
		for i := 0; i < len(items); i += 3 {
			arts = append(arts, map[string]any{"title": "t", "p": items[i:min(i+3, len(items))]})
		}
		nested, _ := json.MarshalIndent(map[string]any{"version": 1, "data": arts}, "", " ")
		for _, tc := range []struct {
			doc  []byte
			path string
		}{{top, ""}, {nested, "data.p"}} {
			for _, buf := range []int{16, 4096} {
				_, got, err := walkDoc(t, tc.doc, tc.path, buf, 1<<20)
				if err != nil {
					t.Fatalf("trial %d (%s, buffer %d): %v\n%s", trial, tc.path, buf, err, tc.doc)
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("trial %d (%s, buffer %d): records\n%q\nwant\n%q", trial, tc.path, buf, got, want)
				}
			}
		}
	}
}

func TestJSONDocEdges(t *testing.T) {
	for _, tc := range []struct {
		doc, path string
		want      string // records joined by |, reasons in brackets
		damage    string
	}{
		{`[]`, "", "", ""},
		{``, "", "", ""},
		{"\xef\xbb\xbf[\"a\"]", "", `"a"`, ""},
		{`[{"text":"a"}, [{"text":"b"}], "c"]`, "", `{"text":"a"}|{"text":"b"}|"c"`, ""},
		{`{"data":[{"p":[1]},{"q":2},3]}`, "data.p", `1|[missing_field]|[missing_field]`, ""},
		{`{"x":1}`, "data", `[missing_field]`, ""},
		// Damage ends the document with one truncated record, counted as a
		// compressed stream's damage is.
		{`[{"text":"a"},{"text":"b"`, "", `{"text":"a"}|[truncated]`, "the document ends"},
		{`[{"text":"a"}] [1]`, "", `{"text":"a"}|[truncated]`, "data after the JSON document"},
		{`[{"text":"a"},, 2]`, "", `{"text":"a"}|[truncated]`, "invalid JSON"},
		{`["` + strings.Repeat("x", 100) + `", "short"]`, "", `[too_long]|"short"`, ""},
	} {
		recs, texts, err := walkDoc(t, []byte(tc.doc), tc.path, 16, 50)
		var got []string
		for i, r := range recs {
			if r.reason != OK {
				got = append(got, "["+r.reason.String()+"]")
			} else {
				got = append(got, texts[i])
			}
		}
		if strings.Join(got, "|") != tc.want || (tc.damage == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.damage) {
			t.Errorf("%q (%s): %q, damage %v; want %q, %q", tc.doc, tc.path, strings.Join(got, "|"), err, tc.want, tc.damage)
		}
	}
}

// jsonDocHead tells documents from JSON Lines.
func TestJSONDocHead(t *testing.T) {
	fields := [][]string{{"text"}}
	for _, tc := range []struct {
		head string
		doc  bool
	}{
		{`[{"text": "a"}]`, true},
		{"{\n  \"data\": []\n}\n", true},
		{`{"version": 1, "data": [{"text": "a"}]}`, true},
		{`{"text": "a"}`, false},
		{"{\"text\": \"a\"}\n{\"text\": \"b\"}\n", false},
		{"{\"other\": 1}\n{\"other\": 2}\n", false},
		{"", false},
		{"plain text", false},
	} {
		doc, err := jsonDocHead(bufio.NewReader(strings.NewReader(tc.head)), fields, 1<<20)
		if err != nil || doc != tc.doc {
			t.Errorf("%q: document %v (%v), want %v", tc.head, doc, err, tc.doc)
		}
	}
}

// FuzzJSONDoc: any bytes, any path: the walk ends (records, then errEnd)
// without a panic, and every record is bytes of the document.
func FuzzJSONDoc(f *testing.F) {
	for _, s := range []string{`[{"text":"a"},"b"]`, `{"data":[{"p":["x",{"q":1}]}]}`, `[`, `["\\"]`, `{"a":`, `[1,,]`, "\xef\xbb\xbf[]", `[{"k\u0022":"v"}]`} {
		f.Add([]byte(s), "data.p")
		f.Add([]byte(s), "")
	}
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		if strings.Contains(path, "..") || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") {
			return
		}
		recs, texts, _ := walkDoc(t, doc, path, 16, 1<<16)
		if len(recs) > len(doc)+1 {
			t.Fatalf("%d records from %d bytes", len(recs), len(doc))
		}
		for i, tx := range texts {
			if recs[i].reason == OK && !bytes.Contains(doc, []byte(tx)) {
				t.Fatalf("record %q is not in the document", tx)
			}
		}
	})
}

// benchDocs are two generated JSON documents of about 8 MB each: a list
// of records (objects with a text, numbers, a nested object and a list),
// and SQuAD-like articles whose paragraphs' contexts --json-path
// data.paragraphs.context reaches past titles and lists of questions.
func benchDocs() (list, squad []byte) {
	r := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields(`the river "flows" into a sea\n of words, é and 中文 with \\ escapes and \u00e9 more text here`)
	text := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.IntN(len(words))])
		}
		return b.String()
	}
	var recs []any
	for n := 0; n < 8<<20; {
		rec := map[string]any{"id": len(recs), "text": text(20 + r.IntN(200)), "score": r.Float64(),
			"meta": map[string]any{"url": "https://example.com/" + text(2), "tags": []any{"a", "b", true, nil}}}
		b, _ := json.Marshal(rec)
		n += len(b)
		recs = append(recs, rec)
	}
	list, _ = json.Marshal(recs)
	var arts []any
	for n := 0; n < 8<<20; {
		var paras []any
		for range 1 + r.IntN(8) {
			var qas []any
			for range r.IntN(5) {
				qas = append(qas, map[string]any{"question": text(10), "id": fmt.Sprint(r.Uint64()),
					"answers": []any{map[string]any{"text": text(3), "answer_start": r.IntN(1000)}}})
			}
			paras = append(paras, map[string]any{"context": text(50 + r.IntN(150)), "qas": qas})
		}
		art := map[string]any{"title": text(3), "paragraphs": paras}
		b, _ := json.Marshal(art)
		n += len(b)
		arts = append(arts, art)
	}
	squad, _ = json.MarshalIndent(map[string]any{"version": "1.1", "data": arts}, "", " ")
	return list, squad
}

// BenchmarkJSONDoc reads the records of benchDocs with jsonDoc, as a JSON
// document input does, and reports MB/s of document.
func BenchmarkJSONDoc(b *testing.B) {
	list, squad := benchDocs()
	for _, c := range []struct {
		name, path string
		doc        []byte
	}{{"list", "", list}, {"squad", "data.paragraphs.context", squad}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			arena := make([]byte, 0, 1<<20)
			var n int
			for b.Loop() {
				d := jsonDoc{br: bufio.NewReaderSize(bytes.NewReader(c.doc), 1<<16), path: splitPath(c.path), maxDoc: 1 << 20}
				for n = 0; ; n++ {
					_, a, err := d.next(arena[:0])
					arena = a
					if err == errEnd {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if d.inErr != nil || n == 0 {
					b.Fatalf("%d records, damage %v", n, d.inErr)
				}
			}
			b.ReportMetric(float64(n), "records")
		})
	}
}

// --max-doc-bytes bounds each record, not the job's arena that the reader
// appends the records of a job to: a long list of short records keeps
// every one of them, whatever came before it in the arena.
func TestJSONDocLimitPerRecord(t *testing.T) {
	var items []string
	for i := range 300 {
		items = append(items, fmt.Sprintf(`{"text":"record %d %s"}`, i, strings.Repeat("w", i%40)))
	}
	items = append(items, `{"text":"`+strings.Repeat("x", 80)+`"}`, `{"text":"after"}`)
	doc := []byte("[" + strings.Join(items, ",\n") + "]")
	for _, buf := range []int{16, 4096} {
		d := jsonDoc{br: bufio.NewReaderSize(bytes.NewReader(doc), buf), maxDoc: 70}
		var arena []byte
		for i := 0; ; i++ {
			rec, a, err := d.next(arena) // the arena grows, as a job's does
			arena = a
			if err == errEnd {
				if i != len(items) {
					t.Fatalf("buffer %d: %d records, want %d", buf, i, len(items))
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			wantLong := len(items[i]) > 70
			if got := rec.reason == TooLong; got != wantLong {
				t.Fatalf("buffer %d: record %d (%d bytes, arena at %d): too_long %v, want %v", buf, i, len(items[i]), rec.start, got, wantLong)
			}
			if !wantLong && string(arena[rec.start:rec.end]) != items[i] {
				t.Fatalf("buffer %d: record %d is %q, want %q", buf, i, arena[rec.start:rec.end], items[i])
			}
		}
		if d.inErr != nil {
			t.Fatal(d.inErr)
		}
	}
}
