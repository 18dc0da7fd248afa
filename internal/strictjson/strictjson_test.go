package strictjson

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type rec struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	for _, c := range []struct {
		in   string
		want string // "" for success, else part of the error
	}{
		{`{"a":1,"b":"x"}`, ""},
		{" \n{\"a\":1}\n\t ", ""},
		{`{"a":1,"c":2}`, `unknown field "c"`},
		{`{"a":1} {"a":2}`, "data after the JSON value"},
		{`{"a":1}x`, "data after the JSON value"},
		{`{"a":"one"}`, "cannot unmarshal"},
		{`{"a":1`, "unexpected EOF"},
		{``, "EOF"},
	} {
		var r rec
		err := Decode([]byte(c.in), &r)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Decode(%q): %v", c.in, err)
		case c.want == "" && r.A != 1:
			t.Errorf("Decode(%q): a = %d, want 1", c.in, r.A)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Decode(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}
