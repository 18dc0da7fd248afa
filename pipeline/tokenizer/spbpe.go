package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// spBPE is SentencePiece's BPE model (bpe_model.cc, Model::SampleEncode
// with no dropout, which Encode is): Llama-2 style .model files.
//
// API (read-only after newSPBPE; safe for concurrent use):
//
//	m, err := newSPBPE(pieces, spBPEOptions{byteFallback: true, ws: "▁"})
//	var st spBPEState                 // per goroutine, reused
//	dst = m.encode(&st, dst, text)     // appends the ids of normalized text
//
// What it computes, exactly as SentencePiece 0.1.97 does:
//
//   - text is cut into symbols: the longest USER_DEFINED piece at a position
//     (a frozen symbol, never merged), else one character (OneCharLen).
//   - Adjacent symbols whose concatenation is a NORMAL, USER_DEFINED or
//     UNUSED piece are merge candidates, taken highest piece score first,
//     the leftmost first among equal scores, until none is left. Merges are
//     not ranked by a merges list: the score of the merged piece decides.
//   - Each final symbol gets PieceToId: a CONTROL, UNKNOWN or BYTE piece of
//     that string first, then the others, else the unk id. An UNUSED piece
//     is split back into the two symbols it was last recorded as merged
//     from, recursively.
//   - An unknown symbol becomes its bytes' <0xNN> pieces with byte_fallback;
//     without it, consecutive unknown symbols become one unk id.
//
// For speed the text is cut into words where no merge can cross (before a
// whitespace symbol that follows another character, when no piece holds a
// character followed by whitespace; or after one, when no piece holds
// whitespace followed by a character), and short words are cached per
// Encoder. The result is the same: a word's merges never depend on another
// word. Models with UNUSED pieces are encoded whole (their split-back
// record is shared by the whole text).
type spBPE struct {
	trie      *daTrie   // NORMAL, USER_DEFINED, UNUSED pieces
	reserved  *daTrie   // CONTROL, UNKNOWN, BYTE pieces (looked up first)
	resFirst  [256]bool // some reserved piece starts with this byte
	user      *daTrie   // USER_DEFINED pieces, nil when none
	userFirst [256]bool
	score     []float32
	unused    []bool
	control   []bool // CONTROL pieces: SentencePiece cannot encode text that spells one
	hasUnused bool
	unkID     int32
	byteFB    bool
	byteID    [256]int32
	ws        []byte // the whitespace symbol: "▁" (or " " without escaping)
	splitPre  bool   // words may be cut before whitespace that follows a character
	splitPost bool   // words may be cut after whitespace that precedes a character
	noMerge   bool   // CHAR model: symbols are final
}

// spBPEOptions configures newSPBPE.
type spBPEOptions struct {
	byteFallback bool
	ws           string // whitespace symbol of the normalized text; "" disables word cutting
}

// spBPEState is an Encoder's scratch for spBPE.encode.
type spBPEState struct {
	err   error // set by emit: the text spells a CONTROL piece
	sym   []bpeSym
	heap  []uint64 // pair keys (bpeKey), a min-heap
	rev   []bpeRev
	out   []int32
	cache wordCache
}

type bpeSym struct {
	off, n     int32 // bytes text[off:off+n]; n == 0 once merged away
	prev, next int32
	node       int32 // trie node of the symbol's bytes, -1 when none
	id         int32 // piece id once merged (-1: look it up)
	freeze     bool
	pair       bpePair // the last merge queued with this symbol on the left
}

// bpePair is a queued merge of a symbol with the one on its right. The
// heap holds only its key (bpeKey); the rest waits in the left symbol, as
// a symbol is the left of one live pair at a time: a pair queued for it
// makes every earlier one stale.
type bpePair struct {
	score       float32
	right, size int32
	node, id    int32
}

// bpeRev records that piece id (UNUSED) was formed from a left part of n bytes.
type bpeRev struct{ id, n int32 }

// newSPBPE builds a model from SentencePiece pieces in id order.
func newSPBPE(pieces []vocabPiece, opt spBPEOptions) (*spBPE, error) {
	if len(pieces) == 0 {
		return nil, errors.New("no pieces")
	}
	if len(pieces) > math.MaxInt32 {
		return nil, errors.New("too many pieces")
	}
	if err := checkSPPieces(pieces); err != nil {
		return nil, err
	}
	m := &spBPE{byteFB: opt.byteFallback, unkID: -1, ws: []byte(opt.ws)}
	m.score = make([]float32, len(pieces))
	m.unused = make([]bool, len(pieces))
	m.control = make([]bool, len(pieces))
	for i := range m.byteID {
		m.byteID[i] = -1
	}
	d, err := m.readPieces(pieces)
	if err != nil {
		return nil, err
	}
	if m.unkID < 0 {
		return nil, errors.New("unk is not defined (no piece of type UNKNOWN)")
	}
	if opt.byteFallback {
		for b, id := range m.byteID {
			if id < 0 {
				return nil, fmt.Errorf("there are not 256 byte pieces although byte_fallback is true (<0x%02X> is missing)", b)
			}
		}
	}
	if m.trie, err = buildDATrie(d.keys, d.vals); err != nil {
		return nil, err
	}
	if m.reserved, err = buildDATrie(d.rkeys, d.rvals); err != nil {
		return nil, err
	}
	if len(d.ukeys) > 0 {
		if m.user, err = buildDATrie(d.ukeys, d.uvals); err != nil {
			return nil, err
		}
	}
	if len(m.ws) > 0 && !m.hasUnused {
		m.splitPre, m.splitPost = wordCuts(d.keys, m.ws)
	}
	return m, nil
}

// spDicts are the keys and values of spBPE's tries: the pieces symbols
// merge into (NORMAL, USER_DEFINED, UNUSED), the reserved ones, and the
// user-defined ones.
type spDicts struct {
	keys, rkeys, ukeys []string
	vals, rvals, uvals []int32
}

// readPieces reads the pieces' scores and types into m and the
// dictionaries.
func (m *spBPE) readPieces(pieces []vocabPiece) (*spDicts, error) {
	d := &spDicts{}
	for i, p := range pieces {
		m.score[i] = float32(p.score)
		switch p.typ {
		case spHidden:
			continue
		case spNormal, spUserDefined, spUnused:
			d.keys, d.vals = append(d.keys, p.piece), append(d.vals, int32(i))
			if p.typ == spUserDefined {
				d.ukeys, d.uvals = append(d.ukeys, p.piece), append(d.uvals, int32(i))
				m.userFirst[p.piece[0]] = true
			}
			if p.typ == spUnused {
				m.unused[i], m.hasUnused = true, true
			}
		default:
			d.rkeys, d.rvals = append(d.rkeys, p.piece), append(d.rvals, int32(i))
			m.resFirst[p.piece[0]] = true
			if err := m.reservedPiece(i, p); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// reservedPiece records a CONTROL, UNKNOWN or BYTE piece.
func (m *spBPE) reservedPiece(i int, p vocabPiece) error {
	switch p.typ {
	case spControl:
		m.control[i] = true
	case spUnknown:
		if m.unkID >= 0 {
			return fmt.Errorf("pieces[%d]: unk is already defined (pieces[%d])", i, m.unkID)
		}
		m.unkID = int32(i)
	case spByte:
		b, ok := pieceByte(p.piece)
		if !ok {
			return fmt.Errorf("pieces[%d]: byte piece %q is invalid", i, p.piece)
		}
		if !m.byteFB {
			return fmt.Errorf("pieces[%d]: byte piece %q is found although byte_fallback is false", i, p.piece)
		}
		m.byteID[b] = int32(i)
	}
	return nil
}

// wordCuts reports whether words may be cut before whitespace that follows
// a character (pre) and after whitespace that precedes one (post): true
// unless some key has a character, then whitespace (or whitespace, then a
// character).
func wordCuts(keys []string, ws []byte) (pre, post bool) {
	pre, post = true, true
	for _, k := range keys {
		kb := []byte(k)
		for i := 0; i < len(kb); {
			j := bytes.Index(kb[i:], ws)
			if j < 0 {
				break
			}
			j += i
			if j > 0 && !bytes.HasSuffix(kb[:j], ws) {
				pre = false // a character, then whitespace
			}
			if e := j + len(ws); e < len(kb) && !bytes.HasPrefix(kb[e:], ws) {
				post = false // whitespace, then a character
			}
			i = j + len(ws)
		}
	}
	return pre, post
}

// encode appends the ids of normalized text to dst.
func (m *spBPE) encode(st *spBPEState, dst []int32, text []byte) []int32 {
	mark := len(dst)
	if !m.splitPre && !m.splitPost {
		return m.appendSegment(st, dst, mark, text)
	}
	ws := m.ws
	ws0 := ws[0]
	start := 0
	prevWS := false
	for i := 0; i < len(text); {
		atWS := text[i] == ws0 && bytes.HasPrefix(text[i:], ws)
		if i > start && ((m.splitPre && atWS && !prevWS) || (m.splitPost && !atWS && prevWS)) {
			dst = m.appendWord(st, dst, mark, text[start:i])
			start = i
		}
		prevWS = atWS
		if atWS {
			i += len(ws)
		} else {
			i++
			for i < len(text) && text[i]&0xC0 == 0x80 {
				i++
			}
		}
	}
	if start < len(text) {
		dst = m.appendWord(st, dst, mark, text[start:])
	}
	return dst
}

// appendWord appends one word's ids, through the Encoder's cache.
func (m *spBPE) appendWord(st *spBPEState, dst []int32, mark int, w []byte) []int32 {
	if len(w) > maxCachedWord {
		return m.appendSegment(st, dst, mark, w)
	}
	if ids, ok := st.cache.get(w); ok {
		return m.appendIDs(dst, mark, ids)
	}
	st.out = m.merge(st, st.out[:0], w)
	st.cache.put(w, st.out)
	return m.appendIDs(dst, mark, st.out)
}

// appendSegment merges seg and appends its ids.
func (m *spBPE) appendSegment(st *spBPEState, dst []int32, mark int, seg []byte) []int32 {
	st.out = m.merge(st, st.out[:0], seg)
	return m.appendIDs(dst, mark, st.out)
}

// appendIDs appends a segment's ids, merging an unknown id at its start
// into an unknown id that ends dst[mark:] (no byte fallback).
func (m *spBPE) appendIDs(dst []int32, mark int, ids []int32) []int32 {
	if !m.byteFB && len(ids) > 0 && ids[0] == m.unkID && len(dst) > mark && dst[len(dst)-1] == m.unkID {
		ids = ids[1:]
	}
	return append(dst, ids...)
}

// bpeKey orders the queued merges as SentencePiece takes them: the highest
// score first, and of equal scores the leftmost. The score's bits, mapped
// so that unsigned order is float order and inverted, are the high half;
// the left symbol's index is the low half. -0 counts as +0.
func bpeKey(score float32, left int32) uint64 {
	if score == 0 {
		score = 0
	}
	u := math.Float32bits(score)
	if u>>31 != 0 {
		u = ^u
	} else {
		u |= 1 << 31
	}
	return uint64(^u)<<32 | uint64(uint32(left))
}

// maybePair queues the merge of symbols l and r when their concatenation
// is a piece (MaybeAddNewSymbolPair).
func (m *spBPE) maybePair(st *spBPEState, text []byte, l, r int32) {
	if l < 0 || r < 0 {
		return
	}
	sl, sr := &st.sym[l], &st.sym[r]
	if sl.freeze || sr.freeze || sl.node < 0 {
		return
	}
	node := m.trie.walk(sl.node, text[sr.off:sr.off+sr.n])
	if node < 0 {
		return
	}
	id := m.trie.value(node)
	if id < 0 {
		return
	}
	score := m.score[id]
	sl.pair = bpePair{score: score, right: r, size: sl.n + sr.n, node: node, id: id}
	st.heap = heapPush(st.heap, bpeKey(score, l))
	if m.unused[id] {
		st.rev = append(st.rev, bpeRev{id: id, n: sl.n})
	}
}

// merge appends the final ids of seg (byte fallback expanded, unknown runs
// merged) to out.
func (m *spBPE) merge(st *spBPEState, out []int32, seg []byte) []int32 {
	syms := st.sym[:0]
	for i := 0; i < len(seg); {
		n, freeze := 0, false
		if m.user != nil && m.userFirst[seg[i]] {
			n = m.longestUser(seg[i:])
			freeze = n > 0
		}
		if n == 0 {
			n = min(oneCharLen(seg[i]), len(seg)-i)
		}
		k := int32(len(syms))
		syms = append(syms, bpeSym{off: int32(i), n: int32(n), prev: k - 1, next: k + 1, node: m.trie.walk(daRoot, seg[i:i+n]), id: -1, freeze: freeze})
		i += n
	}
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].next = -1
	st.sym, st.heap, st.rev = syms, st.heap[:0], st.rev[:0]
	for i := int32(1); i < int32(len(syms)) && !m.noMerge; i++ {
		m.maybePair(st, seg, i-1, i)
	}
	for len(st.heap) > 0 {
		var key uint64
		key, st.heap = heapPop(st.heap)
		left := int32(uint32(key))
		l := &st.sym[left]
		top := l.pair
		if bpeKey(top.score, left) != key {
			continue // stale: a later pair of left replaced it
		}
		r := &st.sym[top.right]
		if l.n == 0 || r.n == 0 || l.n+r.n != top.size {
			continue // stale
		}
		l.n += r.n
		l.node, l.id = top.node, top.id
		l.next = r.next
		if r.next >= 0 {
			st.sym[r.next].prev = left
		}
		r.n = 0
		m.maybePair(st, seg, l.prev, left)
		m.maybePair(st, seg, left, l.next)
	}
	prevUnk := false
	for k := int32(0); k >= 0; k = st.sym[k].next {
		s := &st.sym[k]
		out, prevUnk = m.emit(st, out, seg[s.off:s.off+s.n], s.id, prevUnk)
	}
	return out
}

// emit appends the ids of one final symbol w (id: its piece id when known
// from a merge, else -1), resegmenting UNUSED pieces.
func (m *spBPE) emit(st *spBPEState, out []int32, w []byte, id int32, prevUnk bool) ([]int32, bool) {
	id = m.pieceToID(w, id)
	if id >= 0 && m.unused[id] {
		for k := len(st.rev) - 1; k >= 0; k-- {
			if st.rev[k].id == id {
				n := st.rev[k].n
				out, prevUnk = m.emit(st, out, w[:n], -1, prevUnk)
				return m.emit(st, out, w[n:], -1, prevUnk)
			}
		}
		// Not reached: every UNUSED final symbol was recorded when queued.
	}
	if id != m.unkID {
		if m.control[id] && st.err == nil {
			st.err = fmt.Errorf("sentencepiece: the text spells %q, a CONTROL piece of the model, as a whole symbol; SentencePiece cannot encode that (EncodeAsIds returns a truncated result)", w)
		}
		return append(out, id), false
	}
	if m.byteFB {
		for _, b := range w {
			out = append(out, m.byteID[b])
		}
	} else if !prevUnk {
		out = append(out, id)
	}
	return out, true
}

// pieceToID is ModelInterface::PieceToId: reserved pieces first, then the
// others (known is the id a merge found, or -1), else unk.
func (m *spBPE) pieceToID(w []byte, known int32) int32 {
	if m.resFirst[w[0]] {
		if id := m.reserved.lookup(w); id >= 0 {
			return id
		}
	}
	if known >= 0 {
		return known
	}
	if id := m.trie.lookup(w); id >= 0 {
		return id
	}
	return m.unkID
}

// longestUser returns the length of the longest USER_DEFINED piece that is
// a prefix of s (among the first 64 matches, as SentencePiece's
// PrefixMatcher keeps), or 0.
func (m *spBPE) longestUser(s []byte) int {
	return longestPrefix(m.user, s, 64)
}

// longestPrefix returns the length of the longest key of t that is a
// prefix of s, considering the first limit matches, or 0.
func longestPrefix(t *daTrie, s []byte, limit int) int {
	best, found := 0, 0
	node := int32(daRoot)
	for i, b := range s {
		if node = t.child(node, b); node < 0 {
			break
		}
		if t.value(node) >= 0 {
			if found < limit {
				best = i + 1
			}
			found++
		}
	}
	return best
}

// encodeWords is the WORD model (word_model.cc): the text is cut before
// every U+2581 (SplitIntoWords) and each word is one piece, or unknown.
func (m *spBPE) encodeWords(st *spBPEState, dst []int32, text []byte) []int32 {
	prevUnk := false
	for len(text) > 0 {
		n := len(wsSymbol)
		if !bytes.HasPrefix(text, wsSymbol) {
			n = 0
		}
		if i := bytes.Index(text[n:], wsSymbol); i >= 0 {
			n += i
		} else {
			n = len(text)
		}
		dst, prevUnk = m.emit(st, dst, text[:n], -1, prevUnk)
		text = text[n:]
	}
	return dst
}
