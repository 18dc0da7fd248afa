package tokenizer

import (
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"
)

// scanPieces splits text with a scanner.
func scanPieces(k scanKind, text []byte) []string {
	tab := tables()
	var out []string
	for i := 0; i < len(text); {
		var j int
		if k == scanGPT2 {
			m := &bytePair{}
			m.initClasses()
			j = m.nextPreToken(text, i, false)
		} else {
			j = k.next(tab, text, i)
		}
		if j <= i {
			panic(fmt.Sprintf("scanner %d stuck at %d in %q", k, i, text))
		}
		out = append(out, string(text[i:j]))
		i = j
	}
	return out
}

// regexPieces splits text at the matches of re (Isolated), gaps included.
func regexPieces(t testing.TB, re *regex, text []byte) []string {
	var out []string
	var m reMatcher
	prev := 0
	err := m.findAll(re, text, func(s, e int) {
		if s > prev {
			out = append(out, string(text[prev:s]))
		}
		if e > s {
			out = append(out, string(text[s:e]))
		}
		prev = e
	})
	if err != nil {
		t.Fatal(err)
	}
	if prev < len(text) {
		out = append(out, string(text[prev:]))
	}
	return out
}

var scannerPatterns = []struct {
	kind scanKind
	pat  string
}{{scanGPT2, patGPT2}, {scanCL100K, patCL100K}, {scanQwen2, patQwen2}, {scanO200K, patO200K}}

func compiledScannerPatterns(t testing.TB) []*regex {
	var res []*regex
	for _, sp := range scannerPatterns {
		re, err := compileRegex(sp.pat)
		if err != nil {
			t.Fatal(err)
		}
		if scannerFor(sp.pat) != sp.kind {
			t.Fatalf("pattern not recognised: %s", sp.pat)
		}
		res = append(res, re)
	}
	return res
}

func TestScannerCases(t *testing.T) {
	res := compiledScannerPatterns(t)
	for _, s := range []string{"Hello world", "HELLO world", "HELLOworld", " Hello", "don't DON'T don'ſ", "I'm we'll they're",
		"a  b\n\n  c\r\n x", "12345 1½", "中文字符串。テスト", "(hello) ...world!!\n", "Ǆemal ǅemal", "e\u0301a\u0316\u0301",
		"   ", "\n", "x\u3000\u3000y", "'S's'", "foo/bar//\n\nbaz"} {
		for i, sp := range scannerPatterns {
			got := scanPieces(sp.kind, []byte(s))
			want := regexPieces(t, res[i], []byte(s))
			if !slices.Equal(got, want) {
				t.Errorf("scanner %d on %q:\n got  %q\n want %q", sp.kind, s, got, want)
			}
		}
	}
}

func FuzzScanners(f *testing.F) {
	for _, s := range []string{"Hello world", "don't", "a  \n\n b", "1234567", "ÄÖü中文", "'ſ 'LL"} {
		f.Add([]byte(s))
	}
	res := compiledScannerPatterns(f)
	f.Fuzz(func(t *testing.T, text []byte) {
		if !utf8.Valid(text) {
			text = appendRepaired(nil, text)
		}
		for i, sp := range scannerPatterns {
			got := scanPieces(sp.kind, text)
			want := regexPieces(t, res[i], text)
			if !slices.Equal(got, want) {
				t.Fatalf("scanner %d on %q:\n got  %q\n want %q", sp.kind, text, got, want)
			}
		}
	})
}

// TestScannersAgree runs every scanner and the regex engine, on the same
// pattern, over the agreement sample of every corpus and the stress set
// (every document with GLMKIT_TOKENIZER_FULL; FuzzScanners looks further).
func TestScannersAgree(t *testing.T) {
	res := compiledScannerPatterns(t)
	for _, c := range agreementCorpora(t) {
		for _, d := range c.docs {
			d = appendRepaired(nil, d)
			for i, sp := range scannerPatterns {
				got := scanPieces(sp.kind, d)
				want := regexPieces(t, res[i], d)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: scanner %d differs from the regex engine on %q:\n got  %q\n want %q", c.name, sp.kind, d, got, want)
				}
			}
		}
	}
}
