package tokenizer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// SentenceEndsOf marks a token where a sentence-end character ends in the
// byte stream of the tokens, found here by searching the stream itself
// (byte-level BPE, built in and from a tokenizer.json, whose one-token
// decode gave U+FFFD for such bytes); for a vocabulary of whole characters
// (WordPiece) it is the per-id bit.
func TestSentenceEndsOf(t *testing.T) {
	text := []byte("他来了吗？我不知道！也许明天；也许后天。真的…好 a.b 3:4 ？！；?\n末")
	for _, tc := range []struct {
		spec      string
		byteLevel bool
	}{{"gpt2", true}, {filepath.Join(sharedDir, "tokenizers/gpt2/tokenizer.json"), true}, {"bert-base-uncased", false}} {
		spec := tc.spec
		if _, err := os.Stat(spec); err != nil && strings.Contains(spec, sharedDir) {
			t.Logf("skipping %s: %v", spec, err)
			continue
		}
		tok, err := Load(spec)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := tok.NewEncoder().Encode(nil, text)
		if err != nil {
			t.Fatal(err)
		}
		got := tok.SentenceEndsOf(slices.Concat([]int32{tok.Special().CLS}, ids, []int32{tok.Special().EOS}), nil)
		want := make([]bool, len(ids)+2)
		if !tc.byteLevel {
			for i, id := range ids {
				want[i+1] = tok.ends[id]
			}
		} else {
			var stream []byte
			var at []int // token of each byte
			for i, id := range ids {
				b := byteLevelDecode(tok.tokens[id], tok.byteDec)
				stream = append(stream, b...)
				for range b {
					at = append(at, i)
				}
				want[i+1] = tok.ends[id]
			}
			split := 0
			for k := 0; k < len(splitEnds); k += 3 {
				c := []byte(splitEnds[k : k+3])
				for off := 0; ; {
					j := bytes.Index(stream[off:], c)
					if j < 0 {
						break
					}
					end := off + j + len(c) - 1
					if at[off+j] != at[end] {
						split++
					}
					want[at[end]+1] = true
					off = end + 1
				}
			}
			if split < 3 {
				t.Fatalf("%s: only %d sentence-end characters are split across tokens; the test needs more", spec, split)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: SentenceEndsOf\n%v\nwant\n%v", spec, got, want)
		}
	}
}
