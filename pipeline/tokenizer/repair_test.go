package tokenizer

import (
	"testing"
	"unicode/utf8"
)

func TestRepairUTF8(t *testing.T) {
	// Expected outputs from Python's bytes.decode("utf-8", "replace").
	for _, tc := range []struct{ in, want string }{
		{"\xe2\x82", "\uFFFD"},
		{"\xff\xff", "\uFFFD\uFFFD"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"a\xf0\x9f\x98", "a\uFFFD"},
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xc0\xaf", "\uFFFD\uFFFD"},
		{"\xe0\x80\xaf", "\uFFFD\uFFFD\uFFFD"},
		{"\xf0\x9f\x98\x80\xe2\x82x", "😀\uFFFDx"},
		{"\xc2", "\uFFFD"},
		{"plain ascii", "plain ascii"},
	} {
		got, _ := RepairUTF8(nil, []byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("RepairUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !utf8.Valid(got) {
			t.Errorf("RepairUTF8(%q) is not valid UTF-8", tc.in)
		}
	}
}
