package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// mapAppendWord is WordPiece's greedy longest match written the plain way,
// a map lookup per candidate end (what appendWord did before its trie and
// word table): the reference for them. A piece after the first is looked
// up with the continuation prefix in front.
func mapAppendWord(wp *wordPiece, dst []int32, w []byte, n int) []int32 {
	if n > wp.maxChars {
		return append(dst, wp.unk)
	}
	mark := len(dst)
	for start := 0; start < len(w); {
		prefix := ""
		if start > 0 {
			prefix = wp.prefix
		}
		end := len(w)
		for ; end > start; end-- {
			if end < len(w) && !utf8.RuneStart(w[end]) {
				continue // not a character boundary
			}
			if id, ok := wp.vocab[prefix+string(w[start:end])]; ok {
				dst = append(dst, id)
				break
			}
		}
		if end == start {
			return append(dst[:mark], wp.unk)
		}
		start = end
	}
	return dst
}

// checkWords compares appendWord with mapAppendWord on each word.
func checkWords(t *testing.T, name string, wp *wordPiece, words [][]byte) {
	t.Helper()
	var got, want []int32
	for _, w := range words {
		n := utf8.RuneCount(w)
		got = wp.appendWord(got[:0], w, n)
		want = mapAppendWord(wp, want[:0], w, n)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: word %q: ids %v, want %v", name, w, got, want)
		}
	}
}

// TestWordPieceLookup checks the tries and the word table against map
// lookups: on every entry of real vocabularies, on entries cut short and
// run together, and on random stretches of real and adversarial text.
func TestWordPieceLookup(t *testing.T) {
	for _, spec := range []string{"bert-base-uncased", filepath.Join(sharedDir, "tokenizers", "bert-base-chinese", "vocab.txt")} {
		tk, err := Load(spec)
		if err != nil {
			t.Fatal(err)
		}
		wp := tk.wp
		if wp == nil {
			t.Fatalf("%s: not a WordPiece tokenizer", spec)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		var words [][]byte
		keys := make([]string, 0, len(wp.vocab))
		for k := range wp.vocab {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "" {
				continue
			}
			words = append(words, []byte(k), []byte(k+"x"), []byte(k)[:len(k)-1], []byte(k+keys[rng.IntN(len(keys))]))
		}
		for _, c := range []corpus{englishCorpus(t), stressCorpus()} {
			for range 20000 {
				d := c.docs[rng.IntN(len(c.docs))]
				i := rng.IntN(len(d))
				w := d[i:min(len(d), i+1+rng.IntN(40))]
				if utf8.Valid(w) && len(w) > 0 {
					words = append(words, w)
				}
			}
		}
		var valid [][]byte
		for _, w := range words {
			if len(w) > 0 && utf8.Valid(w) {
				valid = append(valid, w)
			}
		}
		checkWords(t, spec, wp, valid)

		// The word table finds every entry of up to 16 bytes, wherever the
		// word lies in its buffer and whatever follows it there.
		buf := make([]byte, 64)
		for _, k := range keys {
			if k == "" || len(k) > 16 {
				continue
			}
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			at := rng.IntN(len(buf) - len(k))
			w := buf[at : at+copy(buf[at:], k)]
			if id, ok := wp.words.lookup(w); !ok || id != wp.vocab[k] {
				t.Fatalf("%s: word table lookup of %q = %d, %v; want %d", spec, k, id, ok, wp.vocab[k])
			}
		}
	}
}

// TestWordPieceLookupOddVocab: entries that are not whole characters, or
// longer than the word table holds, or a bare prefix, match only where
// the map lookups matched.
func TestWordPieceLookupOddVocab(t *testing.T) {
	vocab := map[string]int32{
		"[UNK]": 0, "\xc3": 1, "a": 2, "##\xa9": 3, "##b": 4, "é": 5, "##": 6, "ab": 7,
		"abcdefghijklmnopqrstuvwxyz": 8, "abcdefghijklmnop": 9, "##cdefghijklmnopq": 10, "abcdefgh": 11,
		"\x00": 12, "a\x00": 13, "##\xbc": 14,
	}
	wp := newWordPiece(vocab, 0, "##", 100, defaultBertOptions())
	var words [][]byte
	for _, w := range []string{"é", "éb", "ü", "aü", "aé", "ab", "abb", "a\xc3", "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopq",
		"abcdefghijklmnopqrstuvwxy", "abcdefgh", "abcdefghi", "a", "b", "\x00", "a\x00", "a\x00\x00", "##", "##b"} {
		words = append(words, []byte(w))
	}
	checkWords(t, "odd vocabulary", wp, words)
	if got := wp.appendWord(nil, []byte("abcdefghijklmnop"), 16); !slices.Equal(got, []int32{9}) {
		t.Errorf("a 16-byte entry: %v, want [9]", got)
	}
	if got := wp.appendWord(nil, []byte("é"), 1); !slices.Equal(got, []int32{5}) {
		t.Errorf("é: %v, want [5] (not \\xc3 then ##\\xa9)", got)
	}
}

// TestWordPieceLookupRandomVocab compares appendWord with the map lookups
// on random vocabularies over a small alphabet (so that entries share
// prefixes, run past 16 bytes and split characters), with the usual, an
// empty and an unusual continuation prefix.
func TestWordPieceLookupRandomVocab(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "é", "\xc3", "\xa9", "語", "#", "x"}
	word := func(n int) string {
		var b []byte
		for range n {
			b = append(b, alphabet[rng.IntN(len(alphabet))]...)
		}
		return string(b)
	}
	for round := range 300 {
		prefix := []string{"##", "", "@@"}[round%3]
		vocab := map[string]int32{"[UNK]": 0}
		for range 1 + rng.IntN(60) {
			k := word(1 + rng.IntN(20))
			if rng.IntN(2) == 0 {
				k = prefix + k
			}
			vocab[k] = int32(len(vocab))
		}
		wp := newWordPiece(vocab, 0, prefix, 1+rng.IntN(30), defaultBertOptions())
		var words [][]byte
		for range 300 {
			if w := word(1 + rng.IntN(24)); utf8.ValidString(w) {
				words = append(words, []byte(w))
			}
		}
		for k := range vocab {
			if utf8.ValidString(k) && k != "" {
				words = append(words, []byte(k), []byte(k+k))
			}
		}
		checkWords(t, fmt.Sprintf("round %d (prefix %q)", round, prefix), wp, words)
	}
}

// TestWordPieceConcurrent: goroutines that share a freshly loaded
// Tokenizer, each with its own Encoder, build its trie at once (on the
// first word the word table does not hold) and all get the ids of a
// tokenizer used alone (run with -race).
func TestWordPieceConcurrent(t *testing.T) {
	vocab := filepath.Join(sharedDir, "tokenizers", "bert-base-chinese", "vocab.txt")
	docs := append(englishCorpus(t).docs[:20], stressCorpus().docs[:40]...)
	alone, err := Load(vocab)
	if err != nil {
		t.Fatal(err)
	}
	want := encodeEach(alone, docs)
	tk, err := Load(vocab)
	if err != nil {
		t.Fatal(err)
	}
	checkConcurrent(t, "bert-base-chinese", tk, docs, want)
}
