package tokenizer

import (
	"slices"
	"testing"
)

// FuzzEncode checks, for both built-in tokenizers and any input: no panic,
// the same ids from a fresh and a reused Encoder, from the ASCII fast path
// and the general path, and (BPE) with and without the word cache.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "don't 'S ''s", "a \n\nb  ", "------", "Café e\u0301 İ",
		"中文 テスト 한국어", "\v\f\x00\x7f\u200b\ufeff", "\xff\xe4\xb8", "[MASK] <|endoftext|>", "1½ ٣٤ ①"} {
		f.Add([]byte(s))
	}
	bert := loadBuiltin(f, BuiltinBERT)
	gpt2 := loadBuiltin(f, BuiltinGPT2)
	reused := []*Encoder{bert.NewEncoder(), gpt2.NewEncoder()}
	f.Fuzz(func(t *testing.T, text []byte) {
		for i, tk := range []*Tokenizer{bert, gpt2} {
			want, err := tk.NewEncoder().Encode(nil, text)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := reused[i].Encode(nil, text)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: reused encoder %v, fresh %v", tk.Name(), got, want)
			}
			general := tk.NewEncoder()
			general.general = true
			if got, _ := general.Encode(nil, text); !slices.Equal(got, want) {
				t.Fatalf("%s: general path %v, fast path %v", tk.Name(), got, want)
			}
			nocache := tk.NewEncoder()
			nocache.noCache = true
			if got, _ := nocache.Encode(nil, text); !slices.Equal(got, want) {
				t.Fatalf("%s: uncached %v, cached %v", tk.Name(), got, want)
			}
			for _, id := range want {
				if id < 0 || int(id) >= tk.BaseVocabSize() {
					t.Fatalf("%s: id %d out of the base vocabulary", tk.Name(), id)
				}
			}
			_ = tk.Decode(want)
		}
	})
}
