package tokenizer

import (
	"bytes"
	"slices"
	"testing"

	tiktoken "github.com/tiktoken-go/tokenizer"
)

// TestTiktokenGPT2 checks the GPT-2 encoder against a second, independent
// oracle that runs without node: tiktoken-go's r50k_base, which is GPT-2.
// The stress set is included, without DEL characters (see below).
func TestTiktokenGPT2(t *testing.T) {
	if testing.Short() {
		t.Skip("slow in -short mode")
	}
	codec, err := tiktoken.Get(tiktoken.R50kBase)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := Load("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	enc := tk.NewEncoder()
	var got []int32
	for _, c := range append(corpora(t), stressCorpus()) {
		var ntok, bad int
		for di, d := range c.docs {
			// tiktoken-go v0.10.0 drops DEL (0x7f); Hugging Face and we
			// encode it as byte token 127. Compare on text without it.
			d = bytes.ReplaceAll(d, []byte{0x7f}, nil)
			text := string(appendRepaired(nil, d))
			ids, _, err := codec.Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int32, len(ids))
			for i, id := range ids {
				want[i] = int32(id)
			}
			got, _ = enc.Encode(got[:0], d)
			ntok += len(want)
			if !slices.Equal(got, want) {
				bad++
				if bad <= 3 {
					t.Errorf("%s doc %d differs from tiktoken r50k_base\ndoc: %q\ntiktoken: %v\nours:     %v", c.name, di, d, want, got)
				}
			}
		}
		t.Logf("gpt2 vs tiktoken %-20s %6d docs %9d tokens %4d mismatches", c.name, len(c.docs), ntok, bad)
	}
}
