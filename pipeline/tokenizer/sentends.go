package tokenizer

// Sentence ends split across tokens. A byte-level BPE (GPT-2, cl100k, …)
// and SentencePiece's byte fallback may spell one character with several
// tokens: GPT-2 writes "？" (EF BC 9F) as the three tokens "ï" "¼" "Ł", and
// no one of them holds the character, so no per-id bit can say that the
// last of them ends a sentence. SentenceEndsOf walks the bytes of a token
// sequence and marks the token in which such a character ends.

// splitEnds are the sentence-end characters of endsSentence that take more
// than one byte, each of three (endsSentence looks for them too).
const splitEnds = "。？！；…"

// tokenEdge is the first and last (up to) two bytes of a token's text, all
// a sentence-end character of three bytes can share with its neighbours.
type tokenEdge struct {
	head, tail [2]byte
	n          uint8 // bytes of the token's text, up to 3 (3: "3 or more")
}

// computeEdges fills t.edges from decode (for computeSentenceEnds); special
// and appended tokens have none, so they break the byte stream.
func (t *Tokenizer) computeEdges(decode func(id int) []byte) {
	t.edges = make([]tokenEdge, t.modelSize)
	for id := range t.tokens {
		if t.isSpecial[id] {
			continue
		}
		b := decode(id)
		e := &t.edges[id]
		e.n = uint8(min(len(b), 3))
		switch len(b) {
		case 0:
		case 1:
			e.head, e.tail = [2]byte{b[0]}, [2]byte{0, b[0]}
		default:
			e.head, e.tail = [2]byte{b[0], b[1]}, [2]byte{b[len(b)-2], b[len(b)-1]}
		}
	}
}

// SentenceEndsOf sets dst[i] (dst is resized to len(ids)) when token i ends
// a sentence: its own text holds a sentence end (SentenceEnds), or a
// sentence-end character that started in the tokens before it ends in it.
// A special token, or an id outside the vocabulary, breaks the text: no
// character runs across it. It is read-only and safe for concurrent use.
func (t *Tokenizer) SentenceEndsOf(ids []int32, dst []bool) []bool {
	if cap(dst) < len(ids) {
		dst = make([]bool, len(ids))
	}
	dst = dst[:len(ids)]
	var tail [2]byte // the last bytes of the text so far
	nt := 0          // how many of them there are (0..2)
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.edges) || t.edges[id].n == 0 {
			dst[i], nt = id >= 0 && int(id) < len(t.ends) && t.ends[id], 0
			continue
		}
		e := &t.edges[id]
		dst[i] = t.ends[id] || splitEnd(tail, nt, e)
		if e.n >= 2 {
			tail, nt = e.tail, 2
		} else {
			tail, nt = [2]byte{tail[1], e.tail[1]}, min(nt+1, 2)
		}
	}
	return dst
}

// splitEnd reports whether a sentence-end character starts in the text
// before a token (its last nt bytes, tail) and ends in the token's first
// two bytes.
func splitEnd(tail [2]byte, nt int, e *tokenEdge) bool {
	if nt == 0 || e.head[0]&0xC0 != 0x80 { // the character's last byte is a continuation byte
		return false
	}
	for k := 0; k+3 <= len(splitEnds); k += 3 {
		s := splitEnds[k : k+3]
		if nt >= 2 && tail[0] == s[0] && tail[1] == s[1] && e.head[0] == s[2] {
			return true
		}
		if nt >= 1 && e.n >= 2 && tail[1] == s[0] && e.head[0] == s[1] && e.head[1] == s[2] {
			return true
		}
	}
	return false
}

// SentenceEndsOf is the tokenizer's SentenceEndsOf (pipeline.SentenceEncoder).
func (e *Encoder) SentenceEndsOf(ids []int32, dst []bool) []bool { return e.t.SentenceEndsOf(ids, dst) }

// rawTokenBytes returns, for the edges of a tokenizer.json's tokens, the
// bytes a token stands for: its byte-level bytes under a ByteLevel
// decoder, its byte under ByteFallback, else what decode gives. Decoding
// one token alone turns a byte that is part of a character into U+FFFD,
// which would hide the character from SentenceEndsOf.
func (t *Tokenizer) rawTokenBytes(decode func(id int) []byte) func(id int) []byte {
	var byteLevel, fallback bool
	var walk func(d decoder)
	walk = func(d decoder) {
		switch d := d.(type) {
		case decoderSeq:
			for _, p := range d {
				walk(p)
			}
		case byteLevelDec:
			byteLevel = true
		case byteFallbackDec:
			fallback = true
		}
	}
	walk(t.dec.decoder)
	return func(id int) []byte {
		tok := t.tokens[id]
		if b, ok := pieceByte(tok); ok && fallback {
			return []byte{b}
		}
		if byteLevel {
			return byteLevelDecode(tok, t.byteDec)
		}
		return decode(id)
	}
}
