package tokenizer

import (
	"bytes"
	"hash/maphash"
	"unicode/utf8"
)

// byteLevelAlphabet returns GPT-2's bytes_to_unicode table: the printable
// bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves, the other 68
// bytes for U+0100 onwards in byte order.
func byteLevelAlphabet() (enc [256]rune) {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			enc[b] = rune(b)
		} else {
			enc[b] = 0x100 + n
			n++
		}
	}
	return enc
}

// byteLevelDecode turns a byte-level token string back into its bytes. A
// token holding a character outside the alphabet (an added token) is its
// own UTF-8, as in Hugging Face's ByteLevel decoder.
func byteLevelDecode(tok string, dec map[rune]byte) []byte {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := dec[r]
		if !ok {
			return []byte(tok)
		}
		out = append(out, b)
	}
	return out
}

// bytePair is a read-only byte-level BPE model with a pre-tokenization
// pattern in front of it: the fast path for GPT-2, Llama-3, cl100k, o200k
// and Qwen2 style tokenizers, from tokenizer.json, vocab.json+merges.txt or
// a .tiktoken file.
type bytePair struct {
	byteID       [256]int32       // id of each single byte
	merges       *pairTable       // pair (left<<32 | right) → rank<<32 | merged id
	whole        map[string]int32 // raw token bytes → id, for ignore_merges
	wholeMax     int              // the longest key of whole
	wholeFilter  *stringFilter    // whole's keys
	ignoreMerges bool             // look the whole pre-token up first (Llama-3, tiktoken)
	prefixSpace  bool             // add_prefix_space
	scan         scanKind         // the pre-tokenization pattern's scanner, or scanRegex
	re           *regex           // scanRegex: the pattern (its matches and the gaps between them are the pieces)
	tab          *charTables
}

// initClasses fills the character-class fields of m.
func (m *bytePair) initClasses() { m.tab = tables() }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// nextPreToken returns the end of the GPT-2 pre-token that starts at text[i].
func (m *bytePair) nextPreToken(text []byte, i int, general bool) int {
	return gpt2Next(m.tab, text, i, general)
}

// GPT-2 pattern classes.
const (
	gOther = iota
	gLetter
	gNumber
	gSpace
)

// gptClass returns the GPT-2 pattern class of the character at text[i] and
// its size. general forces the decoding path for ASCII too (tests).
func gptClass(tab *charTables, text []byte, i int, general bool) (uint8, int) {
	var cl uint16
	sz := 1
	if b := text[i]; b < utf8.RuneSelf && !general {
		cl = tab.cls[b]
	} else {
		var r rune
		r, sz = utf8.DecodeRune(text[i:])
		cl = tab.class(r)
	}
	switch {
	case cl&cL != 0:
		return gLetter, sz
	case cl&cN != 0:
		return gNumber, sz
	case cl&cS != 0:
		return gSpace, sz
	}
	return gOther, sz
}

// gpt2Next returns the end of the pre-token that starts at text[i]: GPT-2's
// pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// written out as a scanner, alternatives tried in order as the regex does.
func gpt2Next(tab *charTables, text []byte, i int, general bool) int {
	n := len(text)
	if text[i] == '\'' && i+1 < n {
		switch text[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r':
			if i+2 < n && text[i+2] == 'e' {
				return i + 3
			}
		case 'v':
			if i+2 < n && text[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < n && text[i+2] == 'l' {
				return i + 3
			}
		}
	}
	j := i
	if text[i] == ' ' && i+1 < n {
		j = i + 1
	}
	cl, sz := gptClass(tab, text, j, general)
	if cl == gSpace && j != i {
		// " " followed by whitespace: the optional space does not help.
		j = i
		cl, sz = gptClass(tab, text, j, general)
	}
	if cl != gSpace {
		k := j + sz
		for k < n {
			c, s := gptClass(tab, text, k, general)
			if c != cl {
				break
			}
			k += s
		}
		return k
	}
	// \s+(?!\S) | \s+
	k, last := j, 0
	for k < n {
		c, s := gptClass(tab, text, k, general)
		if c != gSpace {
			break
		}
		k += s
		last = s
	}
	if k == n || k-last == i {
		return k
	}
	return k - last
}

// next returns the end of the pre-token at text[i] for the scanner patterns.
func (m *bytePair) next(text []byte, i int, general bool) int {
	if m.scan == scanGPT2 {
		return gpt2Next(m.tab, text, i, general)
	}
	return m.scan.next(m.tab, text, i)
}

// bpeState is an Encoder's byte-level BPE scratch space and word cache.
type bpeState struct {
	ids   []int32
	ranks []uint64
	heap  []uint64
	next  []int32
	prev  []int32
	cache wordCache
	text  []byte // add_prefix_space copy
	re    reMatcher
	cuts  []int32 // regex pieces: their ends
	key   []byte  // the general BPE model's symbol strings
}

// maxCachedWord is the longest pre-token, in bytes, that the word cache
// keeps: long ones (whole CJK sentences) rarely repeat.
const maxCachedWord = 48

// encode appends the ids of text (valid UTF-8) to dst.
func (m *bytePair) encode(st *bpeState, dst []int32, text []byte, general, noCache bool) ([]int32, error) {
	if m.prefixSpace && len(text) > 0 && text[0] != ' ' {
		st.text = append(append(st.text[:0], ' '), text...)
		text = st.text
	}
	if m.scan == scanRegex {
		// The pattern's matches and the gaps between them (Split, Isolated).
		cuts := st.cuts[:0]
		prev := 0
		err := st.re.findAll(m.re, text, func(s, e int) {
			if s > prev {
				cuts = append(cuts, int32(s))
			}
			if e > s {
				cuts = append(cuts, int32(e))
			}
			prev = e
		})
		if err != nil {
			return dst, err
		}
		if prev < len(text) {
			cuts = append(cuts, int32(len(text)))
		}
		st.cuts = cuts
		i := 0
		for _, j := range cuts {
			dst = m.encodeWord(st, dst, text[i:j], noCache)
			i = int(j)
		}
		return dst, nil
	}
	for i := 0; i < len(text); {
		j := m.next(text, i, general)
		dst = m.encodeWord(st, dst, text[i:j], noCache)
		i = j
	}
	return dst, nil
}

// encodeWord appends the ids of one pre-token.
func (m *bytePair) encodeWord(st *bpeState, dst []int32, w []byte, noCache bool) []int32 {
	if len(w) == 1 {
		return append(dst, m.byteID[w[0]])
	}
	if m.ignoreMerges && len(w) <= m.wholeMax && m.wholeFilter.mayHave(w) {
		if id, ok := m.whole[string(w)]; ok {
			return append(dst, id)
		}
	}
	if noCache || len(w) > maxCachedWord {
		return m.appendMerged(st, dst, w)
	}
	if ids, ok := st.cache.get(w); ok {
		return append(dst, ids...)
	}
	mark := len(dst)
	dst = m.appendMerged(st, dst, w)
	st.cache.put(w, dst[mark:])
	return dst
}

// heapMergeMin is the word length from which merging uses a heap instead of
// rescanning the pairs after every merge.
const heapMergeMin = 64

// appendMerged appends the BPE ids of one pre-token: start from its bytes and
// apply the merge of lowest rank, leftmost first, until none applies.
func (m *bytePair) appendMerged(st *bpeState, dst []int32, w []byte) []int32 {
	ids := st.ids[:0]
	for _, b := range w {
		ids = append(ids, m.byteID[b])
	}
	st.ids = ids
	return appendMergedIDs(st, m.merges, dst)
}

// appendMergedIDs merges the symbols in st.ids with merges (lowest rank
// first, leftmost among equal ranks, as Hugging Face and tiktoken do) and
// appends the result to dst.
func appendMergedIDs(st *bpeState, merges *pairTable, dst []int32) []int32 {
	if len(st.ids) >= heapMergeMin {
		return appendMergedHeap(st, merges, dst)
	}
	ids, ranks := st.ids, st.ranks[:0]
	const none = ^uint64(0)
	for k := 0; k+1 < len(ids); k++ {
		v, ok := merges.get(pairKey(ids[k], ids[k+1]))
		if !ok {
			v = none
		}
		ranks = append(ranks, v)
	}
	for len(ids) > 1 {
		best, bi := none, -1
		for k, v := range ranks {
			if v < best {
				best, bi = v, k
			}
		}
		if bi < 0 {
			break
		}
		ids[bi] = int32(uint32(best))
		ids = append(ids[:bi+1], ids[bi+2:]...)
		ranks = append(ranks[:bi], ranks[bi+1:]...)
		if bi > 0 {
			v, ok := merges.get(pairKey(ids[bi-1], ids[bi]))
			if !ok {
				v = none
			}
			ranks[bi-1] = v
		}
		if bi < len(ranks) {
			v, ok := merges.get(pairKey(ids[bi], ids[bi+1]))
			if !ok {
				v = none
			}
			ranks[bi] = v
		}
	}
	st.ids, st.ranks = ids, ranks
	return append(dst, ids...)
}

// appendMergedHeap is appendMergedIDs for long pre-tokens: a linked list of
// symbols and a min-heap of candidate merges keyed by (rank, position),
// which is the order Hugging Face applies them in. Stale heap entries are
// skipped when popped.
func appendMergedHeap(st *bpeState, merges *pairTable, dst []int32) []int32 {
	ids := st.ids
	n := len(ids)
	next, prev := st.next[:0], st.prev[:0]
	for k := range n {
		next = append(next, int32(k+1))
		prev = append(prev, int32(k-1))
	}
	next[n-1] = -1
	h := st.heap[:0]
	for k := 0; k+1 < n; k++ {
		if v, ok := merges.get(pairKey(ids[k], ids[k+1])); ok {
			h = heapPush(h, v>>32<<32|uint64(k))
		}
	}
	for len(h) > 0 {
		var top uint64
		top, h = heapPop(h)
		rank, pos := uint32(top>>32), int32(uint32(top))
		if ids[pos] < 0 {
			continue // merged into its left neighbour
		}
		nx := next[pos]
		if nx < 0 {
			continue
		}
		v, ok := merges.get(pairKey(ids[pos], ids[nx]))
		if !ok || uint32(v>>32) != rank {
			continue // stale
		}
		ids[pos] = int32(uint32(v))
		ids[nx] = -1
		next[pos] = next[nx]
		if next[nx] >= 0 {
			prev[next[nx]] = pos
		}
		if p := prev[pos]; p >= 0 {
			if v, ok := merges.get(pairKey(ids[p], ids[pos])); ok {
				h = heapPush(h, v>>32<<32|uint64(p))
			}
		}
		if q := next[pos]; q >= 0 {
			if v, ok := merges.get(pairKey(ids[pos], ids[q])); ok {
				h = heapPush(h, v>>32<<32|uint64(pos))
			}
		}
	}
	for k := int32(0); k >= 0; k = next[k] {
		dst = append(dst, ids[k])
	}
	st.ids, st.next, st.prev, st.heap = ids, next, prev, h
	return dst
}

func heapPush(h []uint64, v uint64) []uint64 {
	h = append(h, v)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p] <= h[i] {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	return h
}

func heapPop(h []uint64) (uint64, []uint64) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		s := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			s = r
		}
		if h[i] <= h[s] {
			break
		}
		h[i], h[s] = h[s], h[i]
		i = s
	}
	return top, h
}

// Word cache bounds: when any is reached the cache is emptied and refilled.
// About 1 MiB per Encoder.
const (
	cacheSlots    = 1 << 14 // open-addressing slots; at most half are used
	cacheKeyBytes = 1 << 18
	cacheIDs      = 1 << 16
)

// wordCache is a bounded map from pre-token bytes to BPE ids with its keys
// and values in two arenas, so that it allocates nothing once it exists.
// It belongs to one Encoder.
type wordCache struct {
	slots []cacheSlot
	keys  []byte
	ids   []int32
	used  int
	seed  maphash.Seed
}

type cacheSlot struct {
	hash   uint64
	keyOff uint32
	idsOff uint32
	keyLen uint16 // 0: empty
	idsLen uint16
}

func (c *wordCache) get(w []byte) ([]int32, bool) {
	if c.slots == nil {
		return nil, false
	}
	h := maphash.Bytes(c.seed, w)
	mask := uint64(len(c.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &c.slots[i]
		if s.keyLen == 0 {
			return nil, false
		}
		if s.hash == h && int(s.keyLen) == len(w) && bytes.Equal(c.keys[s.keyOff:s.keyOff+uint32(s.keyLen)], w) {
			return c.ids[s.idsOff : s.idsOff+uint32(s.idsLen)], true
		}
	}
}

func (c *wordCache) put(w []byte, ids []int32) {
	if c.slots == nil {
		c.slots = make([]cacheSlot, cacheSlots)
		c.keys = make([]byte, 0, cacheKeyBytes)
		c.ids = make([]int32, 0, cacheIDs)
		c.seed = maphash.MakeSeed()
	}
	if c.used >= len(c.slots)/2 || len(c.keys)+len(w) > cap(c.keys) || len(c.ids)+len(ids) > cap(c.ids) {
		clear(c.slots)
		c.keys, c.ids, c.used = c.keys[:0], c.ids[:0], 0
	}
	h := maphash.Bytes(c.seed, w)
	mask := uint64(len(c.slots) - 1)
	i := h & mask
	for c.slots[i].keyLen != 0 {
		i = (i + 1) & mask
	}
	c.slots[i] = cacheSlot{hash: h, keyOff: uint32(len(c.keys)), idsOff: uint32(len(c.ids)), keyLen: uint16(len(w)), idsLen: uint16(len(ids))}
	c.keys = append(c.keys, w...)
	c.ids = append(c.ids, ids...)
	c.used++
}
