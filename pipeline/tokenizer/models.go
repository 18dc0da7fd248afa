package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// The models of the general pipeline, each exactly as Hugging Face's.

// bpeModel is tokenizer.json's BPE in general: initial symbols are the
// piece's characters (with continuing_subword_prefix and
// end_of_word_suffix), unknown ones become byte-fallback tokens <0xXX>, or
// the unknown token (fused with its neighbours if fuse_unk), or nothing;
// then ranked merges. A raw piece (ByteLevel before it) has one symbol per
// byte, its byte-level character.
type bpeModel struct {
	vocab        map[string]int32
	merges       *pairTable
	unk          int32 // -1: none
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string
	suffix       string
	fallbackID   [256]int32       // <0xXX>, -1 when absent
	rawWhole     map[string]int32 // ignore_merges on raw pieces: token bytes → id
	tab          *charTables
	// metaCut: a piece (a whole document, for Llama-2's files) is encoded
	// word by word, each word through the word cache, cut before each "▁"
	// that follows another character c, where no token holds c then "▁":
	// no merge crosses there, since every merged symbol is a token. Exact:
	// the merges on either side never interact, and "▁" is a known
	// character, so unknown runs never fuse across. Where some tokens do
	// hold such a pair (InternLM2's "\t▁▁▁"), noCutAfter lists their c,
	// and a cut also needs c to be a token itself (an unknown c becomes a
	// byte token or the unknown token, whose own last character may pair
	// with "▁").
	metaCut    bool
	noCutAfter map[rune]bool
	// charIDs is the id of each one-character token below U+10000 (-1:
	// none), for a model without prefix or suffix: the symbols' lookups,
	// a map probe each in vocabularies of 256k tokens, become one load.
	charIDs []int32
}

// newCharIDs returns bpeModel.charIDs for vocab.
func newCharIDs(vocab map[string]int32) []int32 {
	ids := make([]int32, 0x10000)
	for i := range ids {
		ids[i] = -1
	}
	for tok, id := range vocab {
		r, n := utf8.DecodeRuneInString(tok)
		if n == len(tok) && r < 0x10000 && r != utf8.RuneError {
			ids[r] = id
		}
	}
	return ids
}

// cutBefore reports whether metaCut cuts piece before i, where a "▁" starts.
func (m *bpeModel) cutBefore(piece []byte, i int) bool {
	prev, n := utf8.DecodeLastRune(piece[:i])
	if prev == '\u2581' {
		return false
	}
	if len(m.noCutAfter) == 0 {
		return true
	}
	_, known := m.symbolID(piece[i-n:i], prev)
	return known && !m.noCutAfter[prev]
}

func (m *bpeModel) encodePiece(st *genState, dst []int32, piece []byte, raw bool) ([]int32, error) {
	if m.ignoreMerges {
		var id int32
		var ok bool
		if raw {
			id, ok = m.rawWhole[string(piece)]
		} else {
			id, ok = m.vocab[string(piece)]
		}
		if ok {
			return append(dst, id), nil
		}
	}
	if !m.metaCut || raw {
		return m.encodeSymbols(st, dst, piece, raw), nil
	}
	start := 0
	for i := 0; i <= len(piece); {
		cut := i == len(piece)
		sz := 1
		if !cut {
			var r rune
			r, sz = utf8.DecodeRune(piece[i:])
			cut = r == '\u2581' && i > start && m.cutBefore(piece, i)
		}
		if cut && i > start {
			dst = m.encodeWord(st, dst, piece[start:i])
			start = i
		}
		i += sz
	}
	return dst, nil
}

// encodeWord encodes one word of a cut piece, through the word cache.
func (m *bpeModel) encodeWord(st *genState, dst []int32, w []byte) []int32 {
	if len(w) > maxCachedWord {
		return m.encodeSymbols(st, dst, w, false)
	}
	if ids, ok := st.bpe.cache.get(w); ok {
		return append(dst, ids...)
	}
	mark := len(dst)
	dst = m.encodeSymbols(st, dst, w, false)
	st.bpe.cache.put(w, dst[mark:])
	return dst
}

// encodeSymbols is BPE on one piece (or word): its symbols, then merges.
func (m *bpeModel) encodeSymbols(st *genState, dst []int32, piece []byte, raw bool) []int32 {
	b := &st.bpe
	ids := b.ids[:0]
	unk, unkOpen := int32(0), false
	key := b.key[:0]
	var rb [utf8.UTFMax]byte
	for i := 0; i < len(piece); {
		isFirst := i == 0
		var ch []byte
		var r rune
		if raw {
			r = m.tab.byteRune[piece[i]]
			ch = utf8.AppendRune(rb[:0], r)
			i++
		} else {
			var sz int
			r, sz = utf8.DecodeRune(piece[i:])
			ch = piece[i : i+sz]
			i += sz
		}
		key = key[:0]
		if !isFirst {
			key = append(key, m.prefix...)
		}
		key = append(key, ch...)
		if i == len(piece) {
			key = append(key, m.suffix...)
		}
		if id, ok := m.symbolID(key, r); ok {
			if unkOpen {
				ids = append(ids, unk)
				unkOpen = false
			}
			ids = append(ids, id)
			continue
		}
		// As HF: the byte tokens go in before a pending unknown token.
		var ok bool
		if ids, ok = appendByteTokens(ids, m.byteFallback, &m.fallbackID, key); ok {
			continue
		}
		if m.unk < 0 {
			continue // no unknown token: the character is dropped, as HF does
		}
		if unkOpen {
			if m.fuseUnk {
				continue
			}
			ids = append(ids, unk)
		}
		unk, unkOpen = m.unk, true
	}
	if unkOpen {
		ids = append(ids, unk)
	}
	b.key = key
	b.ids = ids
	if len(ids) == 0 {
		return dst
	}
	return appendMergedIDs(b, m.merges, dst)
}

// symbolID is the id of a symbol: key, its character r with the prefix and
// suffix the symbol takes.
func (m *bpeModel) symbolID(key []byte, r rune) (int32, bool) {
	if m.charIDs != nil && r < 0x10000 && r != utf8.RuneError {
		id := m.charIDs[r] // key is r: no prefix or suffix
		return id, id >= 0
	}
	id, ok := m.vocab[string(key)]
	return id, ok
}

// appendByteTokens appends the <0xXX> token of each byte of b (byte
// fallback, in BPE and Unigram) when it is on and every one of them has
// its token (byteID[c] ≥ 0), and reports whether it did.
func appendByteTokens(dst []int32, on bool, byteID *[256]int32, b []byte) ([]int32, bool) {
	if !on {
		return dst, false
	}
	for _, c := range b {
		if byteID[c] < 0 {
			return dst, false
		}
	}
	for _, c := range b {
		dst = append(dst, byteID[c])
	}
	return dst, true
}

// metaCuts reports whether this model's pieces can be cut before a "▁"
// (see bpeModel.metaCut), and after which characters they cannot.
func metaCuts(m *bpeModel) (ok bool, noCutAfter map[rune]bool) {
	if m.prefix != "" || m.suffix != "" || m.ignoreMerges {
		return false, nil
	}
	if _, ok := m.vocab["\u2581"]; !ok {
		return false, nil
	}
	for tok := range m.vocab {
		for i, r := range tok {
			if r == '\u2581' && i > 0 {
				prev, _ := utf8.DecodeLastRuneInString(tok[:i])
				if prev != '\u2581' {
					if noCutAfter == nil {
						noCutAfter = map[rune]bool{}
					}
					noCutAfter[prev] = true
				}
			}
		}
	}
	return true, noCutAfter
}

// wordLevelModel is WordLevel: the whole piece, or the unknown token.
type wordLevelModel struct {
	vocab map[string]int32
	unk   int32
}

func (m *wordLevelModel) encodePiece(st *genState, dst []int32, piece []byte, raw bool) ([]int32, error) {
	if raw {
		piece = rawToByteLevel(st, piece)
	}
	if id, ok := m.vocab[string(piece)]; ok {
		return append(dst, id), nil
	}
	return append(dst, m.unk), nil
}

// wordPieceModel is WordPiece on a pre-tokenized piece.
type wordPieceModel struct{ wp *wordPiece }

func (m *wordPieceModel) encodePiece(st *genState, dst []int32, piece []byte, raw bool) ([]int32, error) {
	if raw {
		piece = rawToByteLevel(st, piece)
	}
	return m.wp.appendWord(dst, piece, utf8.RuneCount(piece)), nil
}

// rawToByteLevel returns the byte-level characters of a raw piece.
func rawToByteLevel(st *genState, piece []byte) []byte {
	st.bpe.text = st.tab.appendByteLevel(st.bpe.text[:0], piece)
	return st.bpe.text
}

// byteFallbackIDs finds <0x00> … <0xFF> in a vocabulary.
func byteFallbackIDs(vocab map[string]int32) (ids [256]int32, n int) {
	for b := range 256 {
		ids[b] = -1
		if id, ok := vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			ids[b] = id
			n++
		}
	}
	return ids, n
}
