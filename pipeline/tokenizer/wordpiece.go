package tokenizer

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// bertOptions are BertNormalizer's switches. The zero value is not HF's
// default; see defaultBertOptions.
type bertOptions struct {
	cleanText    bool
	chineseChars bool
	stripAccents bool // already resolved: HF's null means "same as lowercase"
	lowercase    bool
}

// clean appends r, of class cl, to dst as the first steps of BERT's
// normalizer have it: clean_text drops control characters and makes white
// space ' ', handle_chinese_chars puts spaces around CJK characters, and
// any other character is appended as it is. kept reports that r itself was
// appended (spaced or not).
func (o *bertOptions) clean(dst []byte, r rune, cl uint16) (_ []byte, kept bool) {
	if o.cleanText {
		if cl&cDrop != 0 {
			return dst, false
		}
		if cl&cSpace != 0 {
			return append(dst, ' '), false
		}
	}
	if o.chineseChars && cl&cCJK != 0 {
		dst = append(dst, ' ')
		dst = utf8.AppendRune(dst, r)
		return append(dst, ' '), true
	}
	return utf8.AppendRune(dst, r), true
}

// defaultBertOptions returns HF's BertNormalizer defaults, which
// BertWordPieceTokenizer uses for a bare vocab.txt: clean text, space CJK,
// lowercase, and strip accents because strip_accents is null and lowercase
// is true.
func defaultBertOptions() bertOptions {
	return bertOptions{cleanText: true, chineseChars: true, stripAccents: true, lowercase: true}
}

// ASCII byte kinds for the WordPiece fast path.
const (
	kWord  = iota // part of a word
	kDrop         // deleted by clean_text
	kSpace        // splits words
	kPunct        // a word of its own
)

// asciiClass is what the WordPiece fast path needs to know about one ASCII
// byte: its kind and its normalized (lowercased) value.
type asciiClass struct {
	kind uint8
	b    byte
}

// wordPiece is a read-only WordPiece model with Hugging Face's
// BertNormalizer and BertPreTokenizer in front of it.
type wordPiece struct {
	opts     bertOptions
	vocab    map[string]int32 // every entry, as in the vocabulary file
	prefix   string           // continuing_subword_prefix, usually "##"
	unk      int32
	maxChars int // max_input_chars_per_word
	// The entries of vocab as a trie: appendWord finds each piece, the
	// longest entry that starts the rest of the word (after the prefix, for
	// all but the first), in one walk from the root or from the prefix's
	// node (contNode: -1 when no entry starts with the prefix) instead of a
	// map lookup per candidate length. Built on the first word that the
	// word table does not hold (pieces): text whose words are all entries
	// needs none.
	trieOnce sync.Once
	trie     *daTrie
	contNode int32
	words    wordTable  // the entries of vocab of at most 16 bytes
	byte1    [128]int32 // the id of each one-byte ASCII entry, or -1
	ascii    [128]asciiClass
	tab      *charTables
}

// pieces returns the trie of the vocabulary and the node of the
// continuation prefix, building them on first use (safe for concurrent
// Encoders).
func (wp *wordPiece) pieces() (*daTrie, int32) {
	wp.trieOnce.Do(func() {
		wp.trie = trieOf(wp.vocab)
		wp.contNode = wp.trie.walk(daRoot, []byte(wp.prefix))
	})
	return wp.trie, wp.contNode
}

// trieOf returns a trie of m's non-empty keys.
func trieOf(m map[string]int32) *daTrie {
	keys := make([]string, 0, len(m))
	ids := make([]int32, 0, len(m))
	for k, id := range m {
		if k != "" && id >= 0 {
			keys = append(keys, k)
			ids = append(ids, id)
		}
	}
	t, err := buildDATrie(keys, ids)
	if err != nil {
		panic(err) // as many keys as values, by construction
	}
	return t
}

func newWordPiece(vocab map[string]int32, unk int32, prefix string, maxChars int, opts bertOptions) *wordPiece {
	wp := &wordPiece{tab: tables(), opts: opts, vocab: vocab, prefix: prefix, unk: unk, maxChars: maxChars}
	wp.words = newWordTable(wp.vocab)
	for b := range wp.byte1 {
		wp.byte1[b] = -1
		if id, ok := vocab[string(rune(b))]; ok {
			wp.byte1[b] = id
		}
	}
	for b := range wp.ascii {
		cl := wp.tab.class(rune(b))
		c := asciiClass{kind: kWord, b: byte(b)}
		switch {
		case opts.cleanText && cl&cDrop != 0:
			c.kind = kDrop
		case opts.cleanText && cl&cSpace != 0, cl&cWhite != 0:
			c.kind = kSpace
		case cl&cPunct != 0:
			c.kind = kPunct
		}
		if opts.lowercase && b >= 'A' && b <= 'Z' {
			c.b = byte(b) + 'a' - 'A'
		}
		wp.ascii[b] = c
	}
	return wp
}

// wpState is an Encoder's WordPiece scratch space.
type wpState struct {
	word   []byte // the word being collected, normalized
	nchars int    // characters in word
	run    []byte // a non-ASCII run after clean_text and CJK spacing
	nfd    []byte // run after NFD
	iter   norm.Iter
}

// encode appends the ids of text (valid UTF-8) to dst.
func (wp *wordPiece) encode(st *wpState, dst []int32, text []byte, general bool) []int32 {
	word, n := st.word[:0], 0
	for i := 0; i < len(text); {
		b := text[i]
		if b < utf8.RuneSelf && !general {
			c := wp.ascii[b]
			switch c.kind {
			case kWord:
				word = append(word, c.b)
				n++
			case kSpace:
				if len(word) > 0 {
					dst = wp.appendWord(dst, word, n)
					word, n = word[:0], 0
				}
			case kPunct:
				if len(word) > 0 {
					dst = wp.appendWord(dst, word, n)
					word, n = word[:0], 0
				}
				dst = wp.appendWord(dst, text[i:i+1], 1)
			}
			i++
			continue
		}
		j := i + 1
		for j < len(text) && (text[j] >= utf8.RuneSelf || general) {
			j++
		}
		st.word = word
		dst = wp.encodeRun(st, dst, text[i:j], n)
		word, n = st.word, st.nchars
		i = j
	}
	if len(word) > 0 {
		dst = wp.appendWord(dst, word, n)
	}
	st.word = word[:0]
	return dst
}

// encodeRun runs the general path over run, a stretch of text between ASCII
// bytes (or any text, for the tests' general mode), continuing the word in
// st.word which has n characters so far. It leaves the unfinished last word
// in st.word and st.nchars.
//
// This is exact because ASCII characters are NFD starters: normalization
// never moves anything across them.
func (wp *wordPiece) encodeRun(st *wpState, dst []int32, run []byte, n int) []int32 {
	o := &wp.opts
	// clean_text and handle_chinese_chars.
	buf := st.run[:0]
	needNFD := false
	for k := 0; k < len(run); {
		r, sz := utf8.DecodeRune(run[k:])
		k += sz
		cl := wp.tab.class(r)
		var kept bool
		if buf, kept = o.clean(buf, r, cl); kept && cl&cNFD != 0 {
			needNFD = true
		}
	}
	st.run = buf
	// strip_accents: NFD, then the marks go below.
	if o.stripAccents && needNFD {
		// norm.Iter lives in the Encoder: norm.NFD.Append would allocate
		// its reorder buffer on every call.
		nfd := st.nfd[:0]
		st.iter.Init(norm.NFD, buf)
		for !st.iter.Done() {
			nfd = append(nfd, st.iter.Next()...)
		}
		st.nfd = nfd
		buf = nfd
	}
	// lowercase, then BertPreTokenizer.
	word := st.word
	for k := 0; k < len(buf); {
		r, sz := utf8.DecodeRune(buf[k:])
		start := k
		k += sz
		cl := wp.tab.class(r)
		if o.stripAccents && cl&cMn != 0 {
			continue
		}
		if o.lowercase && cl&cLower != 0 {
			if r == 0x130 {
				// Rust lowercases İ to two characters: i and U+0307.
				var tmp [8]byte
				for _, lr := range string(appendLowerMulti(tmp[:0], r)) {
					word, n, dst = wp.feed(dst, word, n, lr)
				}
				continue
			}
			word, n, dst = wp.feed(dst, word, n, wp.tab.lowerRune(r))
			continue
		}
		if r < utf8.RuneSelf || cl&(cWhite|cPunct) != 0 {
			word, n, dst = wp.feed(dst, word, n, r)
			continue
		}
		word = append(word, buf[start:k]...)
		n++
	}
	st.word, st.nchars = word, n
	return dst
}

// feed adds one normalized character to the pre-tokenizer.
func (wp *wordPiece) feed(dst []int32, word []byte, n int, r rune) ([]byte, int, []int32) {
	cl := wp.tab.class(r)
	switch {
	case cl&cWhite != 0:
		if len(word) > 0 {
			dst = wp.appendWord(dst, word, n)
		}
		return word[:0], 0, dst
	case cl&cPunct != 0:
		if len(word) > 0 {
			dst = wp.appendWord(dst, word, n)
		}
		var tmp [4]byte
		dst = wp.appendWord(dst, utf8.AppendRune(tmp[:0], r), 1)
		return word[:0], 0, dst
	}
	return utf8.AppendRune(word, r), n + 1, dst
}

// appendWord appends the WordPiece ids of one pre-tokenized word w (valid
// UTF-8, n characters): greedy longest match from the left, continuation
// pieces carrying the prefix; [UNK] for the whole word when it is longer
// than max_input_chars_per_word or when some position matches nothing.
func (wp *wordPiece) appendWord(dst []int32, w []byte, n int) []int32 {
	if n > wp.maxChars {
		return append(dst, wp.unk)
	}
	if len(w) == 1 && w[0] < utf8.RuneSelf && wp.byte1[w[0]] >= 0 {
		return append(dst, wp.byte1[w[0]]) // punctuation, mostly
	}
	if id, ok := wp.words.lookup(w); ok {
		return append(dst, id)
	}
	mark := len(dst)
	trie, contNode := wp.pieces()
	for start, from := 0, int32(daRoot); start < len(w); from = contNode {
		if from < 0 {
			return append(dst[:mark], wp.unk)
		}
		id, n := trie.longestPiece(from, w[start:])
		if id < 0 {
			return append(dst[:mark], wp.unk)
		}
		dst = append(dst, id)
		start += n
	}
	return dst
}

// wordTable holds the entries of a vocabulary of at most 16 bytes, each in
// a slot of an open-addressing table with its bytes inline, so that looking
// up a whole word (what most words of a text are) costs one hash of two
// words and, mostly, one cache line. It is exact: a word of at most 16
// bytes that it does not hold is not in the vocabulary.
type wordTable struct {
	slots []wordSlot
	shift uint // 64 − log2(len(slots))
}

// wordSlot is one entry: the key's bytes little-endian and zero-padded,
// its length (0: an empty slot) and its id.
type wordSlot struct {
	k0, k1 uint64
	n, id  int32
}

func newWordTable(vocab map[string]int32) wordTable {
	n := 0
	for k := range vocab {
		if k != "" && len(k) <= 16 {
			n++
		}
	}
	lg := bits.Len(uint(2 * n)) // at most half full
	t := wordTable{slots: make([]wordSlot, 1<<lg), shift: uint(64 - lg)}
	for k, id := range vocab {
		if k == "" || len(k) > 16 {
			continue
		}
		k0, k1 := packWord([]byte(k))
		i := t.home(k0, k1, len(k))
		for t.slots[i].n != 0 {
			i = (i + 1) & (len(t.slots) - 1)
		}
		t.slots[i] = wordSlot{k0: k0, k1: k1, n: int32(len(k)), id: id}
	}
	return t
}

// packWord returns w's bytes (at most 16) as two little-endian words,
// zero-padded. When w's array has room it loads the two words straight
// from it and masks off what follows w (a copy into a zeroed array would
// make each load wait for the bytes stored before it).
func packWord(w []byte) (k0, k1 uint64) {
	n := len(w)
	if cap(w) < 16 {
		var b [16]byte
		copy(b[:], w)
		return binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	}
	b := w[:16]
	k0, k1 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	if n < 8 {
		return k0 & (1<<(8*n) - 1), 0
	}
	return k0, k1 & (1<<(8*(n-8)) - 1)
}

// home is the first slot to probe for a key.
func (t *wordTable) home(k0, k1 uint64, n int) int {
	h := (k0 ^ bits.RotateLeft64(k1, 31) ^ uint64(n)) * 0x9E3779B97F4A7C15
	return int(h >> t.shift)
}

// lookup returns w's id when w is an entry of at most 16 bytes.
func (t *wordTable) lookup(w []byte) (int32, bool) {
	if len(w) > 16 || len(w) == 0 {
		return 0, false
	}
	k0, k1 := packWord(w)
	mask := len(t.slots) - 1
	for i := t.home(k0, k1, len(w)); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.n == 0 {
			return 0, false
		}
		if s.k0 == k0 && s.k1 == k1 && int(s.n) == len(w) {
			return s.id, true
		}
	}
}
