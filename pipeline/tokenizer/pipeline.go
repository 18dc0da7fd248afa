package tokenizer

import (
	"golang.org/x/text/unicode/norm"
)

// The general encoder: Hugging Face's pipeline, step by step. Added tokens
// are split off the raw text first (those matched on normalized text after
// normalizing each remaining segment), then each segment is normalized,
// pre-tokenized into pieces, and each piece is encoded by the model. Only
// ids are computed: no offsets, no alignments, no token strings. All text
// lives in one arena per document, so once an Encoder is warm nothing is
// allocated.

// span is a piece of text in the arena.
type span struct {
	start, end int32
	first      bool // starts at offset 0 of the document (Metaspace's prepend_scheme "first")
	raw        bool // ByteLevel applied: the model sees each byte as its byte-level character
}

// normalizer is one normalization step.
type normalizer interface {
	// normalize appends the normalized form of src (valid UTF-8) to dst.
	// leadKept is false when the first characters of src produced no output
	// (HF then moves the segment's original offset past them).
	normalize(st *genState, dst, src []byte) (out []byte, leadKept bool, err error)
}

// preTokenizer is one pre-tokenization step: it splits (and may rewrite)
// the pieces in, appending the results to out. Rewritten text goes to the
// end of st.arena.
type preTokenizer interface {
	preTokenize(st *genState, in, out []span) ([]span, error)
}

// model encodes one piece.
type model interface {
	encodePiece(st *genState, dst []int32, piece []byte, raw bool) ([]int32, error)
}

// genPipeline is a read-only general encoder.
type genPipeline struct {
	added *addedVocab    // nil: no added token is matched in text
	norms []normalizer   // applied in order
	pres  []preTokenizer // applied in order; none: the whole segment is one piece
	model model
}

// genState is an Encoder's scratch space for the general pipeline.
type genState struct {
	arena     []byte
	spans     [2][]span
	spans2    []span
	bert      [2][]byte
	scratch   [2][]byte
	segs      []addedSeg
	nsegs     []addedSeg
	re        reMatcher
	iter      norm.Iter
	matches   []span
	events    []splitEvent
	bpe       bpeState
	wordChars []int32
	uni       any // the Unigram model's scratch (unigram.go)
	tab       *charTables
}

// encode appends the ids of text (valid UTF-8) to dst: the added tokens
// matched on the raw text, then each stretch between them normalized and
// encoded.
func (g *genPipeline) encode(st *genState, dst []int32, text []byte) ([]int32, error) {
	st.arena = st.arena[:0]
	var err error
	if st.segs, err = g.segments(st.segs[:0], text, false, 0); err != nil {
		return dst, err
	}
	for _, s := range st.segs {
		if s.id >= 0 {
			dst = append(dst, s.id)
			continue
		}
		seg, first, err := g.normalize(st, text[s.start:s.end], s.start == 0)
		if err == nil {
			dst, err = g.encodeNormalized(st, dst, seg, first)
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// normalize runs the normalizers over seg; first (seg starts the text)
// stays set while every normalizer keeps the segment's start.
func (g *genPipeline) normalize(st *genState, seg []byte, first bool) ([]byte, bool, error) {
	if len(g.norms) == 0 {
		return seg, first, nil
	}
	buf := append(st.scratch[0][:0], seg...)
	for _, n := range g.norms {
		out, kept, err := n.normalize(st, st.scratch[1][:0], buf)
		if err != nil {
			return nil, false, err
		}
		first = first && kept
		st.scratch[0], st.scratch[1] = out, buf
		buf = out
	}
	return buf, first, nil
}

// encodeNormalized appends the ids of a normalized segment: the added
// tokens matched on the normalized text, and the text between them
// pre-tokenized and encoded. The segment is kept in st.arena, where the
// matches' offsets point.
func (g *genPipeline) encodeNormalized(st *genState, dst []int32, seg []byte, first bool) ([]int32, error) {
	base := int32(len(st.arena))
	st.arena = append(st.arena, seg...)
	var err error
	if st.nsegs, err = g.segments(st.nsegs[:0], st.arena[base:], true, base); err != nil {
		return dst, err
	}
	for _, ns := range st.nsegs {
		switch {
		case ns.id >= 0:
			dst = append(dst, ns.id)
		case ns.start < ns.end:
			if dst, err = g.encodeSegment(st, dst, span{start: ns.start, end: ns.end, first: first && ns.start == base}); err != nil {
				return dst, err
			}
		}
	}
	return dst, nil
}

// segments appends to segs the segments of text, whose bytes start at
// offset base: the added tokens in it (the normalized ones when normalized
// is set) and the text between them, or all of text as one when there are
// none to match.
func (g *genPipeline) segments(segs []addedSeg, text []byte, normalized bool, base int32) ([]addedSeg, error) {
	if g.added != nil && (!normalized || g.added.hasNormalized) {
		return g.added.split(segs, text, normalized, base)
	}
	return append(segs, addedSeg{start: base, end: base + int32(len(text)), id: -1}), nil
}

// encodeSegment pre-tokenizes one normalized segment and encodes its pieces.
func (g *genPipeline) encodeSegment(st *genState, dst []int32, seg span) ([]int32, error) {
	in := append(st.spans[0][:0], seg)
	var err error
	for i, p := range g.pres {
		if i > 0 {
			in = materializeRaw(st, in)
		}
		out := st.spans[1][:0]
		if out, err = p.preTokenize(st, in, out); err != nil {
			return dst, err
		}
		st.spans[0], st.spans[1] = out, in
		in = out
	}
	st.spans[0] = in
	for _, sp := range in {
		if sp.start == sp.end {
			continue
		}
		if dst, err = g.model.encodePiece(st, dst, st.arena[sp.start:sp.end], sp.raw); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// materializeRaw writes the byte-level form of raw pieces into the arena,
// for a pre-tokenizer that runs after ByteLevel.
func materializeRaw(st *genState, in []span) []span {
	for i, sp := range in {
		if !sp.raw {
			continue
		}
		start := int32(len(st.arena))
		st.arena = st.tab.appendByteLevel(st.arena, st.arena[sp.start:sp.end])
		in[i] = span{start: start, end: int32(len(st.arena)), first: sp.first}
	}
	return in
}
