package tokenizer

import (
	"errors"
	"fmt"
	"math"
)

// unigram is a Unigram language-model tokenizer: the best segmentation of a
// normalized string into pieces by Viterbi over a trie of the pieces, as
// SentencePiece's unigram_model.cc (Model::EncodeOptimized) and Hugging
// Face's models/unigram (Unigram::encode_optimized) compute it.
//
// API (read-only after newUnigram; safe for concurrent use):
//
//	u, err := newUnigram(pieces, unigramOptions{...})
//	var st unigramState                    // per goroutine, reused
//	dst, err = u.encode(&st, dst, text)    // appends the ids of text
//
// text is the normalized string (for SentencePiece: after the normalizer,
// with U+2581 for spaces; for Hugging Face: one pre-token). It must be valid
// UTF-8 for the HF semantics; SentencePiece steps over bytes with its own
// OneCharLen rule, which this follows. encode allocates nothing once st
// has grown to the longest text.
//
// The two references differ, and unigramOptions.hf picks one:
//
//	                    SentencePiece (hf false)             Hugging Face (hf true)
//	scores              float32; a candidate's total is      float64 throughout
//	                    computed in double and stored as
//	                    float32, as the C++ does (an unknown
//	                    piece's total is a float32 sum)
//	unknown score       min score of NORMAL pieces − 10      min score of all pieces − 10
//	                    (float32)                            (float64)
//	which pieces match  NORMAL, USER_DEFINED (bonus score    every piece of the vocabulary
//	                    length·max_score − 0.1, so they      (control pieces such as "<s>"
//	                    always win); UNUSED pieces never;    included: HF's trie holds them)
//	                    CONTROL, UNKNOWN and BYTE never
//	unknown runs        byte_fallback: each byte of each     fuse_unk: consecutive unknown
//	                    unknown piece as its BYTE piece      pieces become one token; a token
//	                    <0xNN>; otherwise consecutive        not in the vocabulary becomes
//	                    unknown pieces become one unk id     its <0xNN> pieces when
//	                                                         byte_fallback and every byte has
//	                                                         its piece, else unk
//	unk id              the UNKNOWN piece (required)         unkID (-1: an unknown character
//	                                                         is an error, as in HF)
//	duplicate pieces    an error at load (SentencePiece)     the last id of the string wins
//
// Ties: both keep the first candidate that reaches a position (strictly
// greater replaces), visiting start positions left to right and, from one
// start, shorter pieces first, then the unknown candidate. The float
// rounding differs (float32 vs float64 totals), which is why a .model file
// and its tokenizer.json conversion can segment a long text differently.
// glmkit encodes .model files with the SentencePiece semantics and
// tokenizer.json files with the Hugging Face semantics: each file kind
// exactly as its own reference. (On the test corpora with whole documents as
// one string, the two semantics give different ids for about a third of the
// documents; with Metaspace pre-tokens they rarely differ.)
//
// Wiring a tokenizer.json "Unigram" model: pieces from model.vocab in order
// ([piece, score] pairs; typ is ignored), unigramOptions{hf: true, unkID:
// model.unk_id or -1, byteFallback: model.byte_fallback, fuseUnk: true}
// (HF's Unigram always fuses unknown runs; the file has no such field), and
// call encode once per pre-token.
type unigram struct {
	hf      bool
	trie    *daTrie
	score32 []float32 // SP: piece scores by id
	scoreSP []float64 // SP: a candidate's score by id, as the C++ computes it in double
	score64 []float64 // HF: piece scores by id
	unkID   int32
	unk32   float32 // SP: min_score − kUnkPenalty
	unk64   float64 // HF
	max32   float32 // SP: max_score
	byteFB  bool
	byteID  [256]int32 // <0xNN> ids (byte fallback), -1 where absent
	fuseUnk bool
	hfVocab *daTrie // HF: string → id (last wins), for fused unknown tokens
}

// vocabPiece is one entry of a SentencePiece or Unigram vocabulary, in id
// order (the input of newUnigram and newSPBPE).
type vocabPiece struct {
	piece string
	score float64 // SentencePiece: the float32 score, exactly
	typ   int32   // SentencePiece piece type (spNormal ...); HF: ignored
}

// unigramOptions selects the semantics (see unigram's doc).
type unigramOptions struct {
	hf           bool
	unkID        int32 // HF: the unk id, or -1; SP: ignored (the UNKNOWN piece)
	byteFallback bool
	fuseUnk      bool // HF only; SentencePiece always fuses without byte fallback
}

// unigramState is an Encoder's scratch for unigram.encode.
type unigramState struct {
	best32 []bestPath[float32]
	best64 []bestPath[float64]
	out    []int32 // reversed path: piece ends
}

// bestPath is the best path ending at a position: its score, the start of
// its last piece plus one (0: none yet) and that piece's id. SentencePiece
// keeps the score as a float, Hugging Face as a double.
type bestPath[F float32 | float64] struct {
	score     F
	from1, id int32
}

// kUnkPenalty is SentencePiece's and Hugging Face's unknown-piece penalty.
const kUnkPenalty = 10.0

// errNoUnk is encode's error for an unknown character without an unk id
// (Hugging Face's UnigramError::MissingUnkId).
var errNoUnk = errors.New("unigram: a character is not in the vocabulary and the model has no unk_id")

// newUnigram builds a model from pieces in id order.
func newUnigram(pieces []vocabPiece, opt unigramOptions) (*unigram, error) {
	if len(pieces) == 0 {
		return nil, errors.New("unigram: no pieces")
	}
	if len(pieces) > math.MaxInt32 {
		return nil, errors.New("unigram: too many pieces")
	}
	u := &unigram{hf: opt.hf, byteFB: opt.byteFallback, fuseUnk: opt.fuseUnk, unkID: -1}
	for i := range u.byteID {
		u.byteID[i] = -1
	}
	var err error
	if opt.hf {
		err = u.initHF(pieces, opt.unkID)
	} else {
		err = u.initSP(pieces)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// initHF sets up Hugging Face's semantics: every piece is in the trie, the
// unknown score is the lowest score minus kUnkPenalty, and byte fallback
// uses the <0xNN> pieces when all 256 are there.
func (u *unigram) initHF(pieces []vocabPiece, unkID int32) error {
	var keys []string
	var vals []int32
	u.score64 = make([]float64, len(pieces))
	minScore := math.Inf(1)
	for i, p := range pieces {
		if p.piece == "" {
			return fmt.Errorf("unigram: vocab entry %d is empty", i)
		}
		u.score64[i] = p.score
		minScore = min(minScore, p.score)
		keys = append(keys, p.piece)
		vals = append(vals, int32(i))
	}
	u.unk64 = minScore - kUnkPenalty
	if unkID >= int32(len(pieces)) {
		return fmt.Errorf("unigram: unk_id %d is outside the vocabulary (%d entries)", unkID, len(pieces))
	}
	u.unkID = max(unkID, -1)
	t, err := buildDATrie(keys, vals)
	if err != nil {
		return err
	}
	u.trie, u.hfVocab = t, t
	for b := range 256 {
		u.byteID[b] = t.lookup([]byte(fmt.Sprintf("<0x%02X>", b)))
	}
	return nil
}

// initSP sets up SentencePiece's semantics (unigram_model.cc): NORMAL and
// USER_DEFINED pieces in the trie, one UNKNOWN piece, BYTE pieces only
// with byte fallback, float32 scores.
func (u *unigram) initSP(pieces []vocabPiece) error {
	u.score32 = make([]float32, len(pieces))
	u.scoreSP = make([]float64, len(pieces))
	if err := checkSPPieces(pieces); err != nil {
		return err
	}
	keys, vals, userDef, maxScore, err := u.spPieces(pieces)
	if err != nil {
		return err
	}
	if u.unkID < 0 {
		return errors.New("unk is not defined (no piece of type UNKNOWN)")
	}
	if u.byteFB {
		for b, id := range u.byteID {
			if id < 0 {
				return fmt.Errorf("there are not 256 byte pieces although byte_fallback is true (<0x%02X> is missing)", b)
			}
		}
	}
	if len(keys) == 0 {
		return errors.New("no entry is found in the trie (no NORMAL or USER_DEFINED piece)")
	}
	u.max32 = maxScore
	for i, p := range pieces {
		// The C++ ternary (user-defined ? length·max_score − 0.1 : score)
		// is a double: length·max_score a float product, then − 0.1 in
		// double; a piece's score widened to double.
		if userDef[i] {
			u.scoreSP[i] = float64(float32(float32(len(p.piece))*maxScore)) - 0.1
		} else {
			u.scoreSP[i] = float64(u.score32[i])
		}
	}
	t, err := buildDATrie(keys, vals)
	if err != nil {
		return err
	}
	u.trie = t
	return nil
}

// spPieces reads the pieces' scores and types for initSP: the trie's keys
// and values, which pieces are USER_DEFINED, and the highest NORMAL score;
// it sets the unknown id and score and the byte pieces.
func (u *unigram) spPieces(pieces []vocabPiece) (keys []string, vals []int32, userDef []bool, maxScore float32, err error) {
	userDef = make([]bool, len(pieces))
	// SentencePiece starts from FLT_MAX and FLT_MIN (the smallest normal
	// float, 0x1p-126: with only negative scores max_score stays there).
	minScore := float32(math.MaxFloat32)
	maxScore = float32(0x1p-126)
	for i, p := range pieces {
		s := float32(p.score)
		u.score32[i] = s
		switch p.typ {
		case spNormal:
			minScore, maxScore = min(minScore, s), max(maxScore, s)
			keys, vals = append(keys, p.piece), append(vals, int32(i))
		case spUserDefined:
			userDef[i] = true
			keys, vals = append(keys, p.piece), append(vals, int32(i))
		case spUnknown:
			if u.unkID >= 0 {
				return nil, nil, nil, 0, fmt.Errorf("pieces[%d]: unk is already defined (pieces[%d])", i, u.unkID)
			}
			u.unkID = int32(i)
		case spByte:
			b, ok := pieceByte(p.piece)
			if !ok {
				return nil, nil, nil, 0, fmt.Errorf("pieces[%d]: byte piece %q is invalid", i, p.piece)
			}
			if !u.byteFB {
				return nil, nil, nil, 0, fmt.Errorf("pieces[%d]: byte piece %q is found although byte_fallback is false", i, p.piece)
			}
			u.byteID[b] = int32(i)
		}
	}
	u.unk32 = minScore - float32(kUnkPenalty)
	return keys, vals, userDef, maxScore, nil
}

// checkSPPieces applies SentencePiece's InitializePieces checks: pieces are
// not empty, and no string is defined twice among the NORMAL,
// USER_DEFINED and UNUSED pieces, nor twice among the others (the two
// groups are separate dictionaries, so one string may be in both).
func checkSPPieces(pieces []vocabPiece) error {
	seen := [2]map[string]int{make(map[string]int, len(pieces)), make(map[string]int)}
	for i, p := range pieces {
		if p.piece == "" {
			return fmt.Errorf("pieces[%d]: piece must not be empty", i)
		}
		if math.IsNaN(p.score) {
			return fmt.Errorf("pieces[%d]: score is NaN", i)
		}
		g := 1
		if p.typ == spNormal || p.typ == spUserDefined || p.typ == spUnused || p.typ == spHidden {
			g = 0
		}
		if j, dup := seen[g][p.piece]; dup {
			return fmt.Errorf("pieces[%d]: %q is already defined (pieces[%d])", i, p.piece, j)
		}
		seen[g][p.piece] = i
	}
	return nil
}

// pieceByte parses SentencePiece's byte piece name "<0xNN>" (upper-case hex).
func pieceByte(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			b = b<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			b = b<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return b, true
}

// oneCharLen is SentencePiece's string_util::OneCharLen: the length of the
// UTF-8 sequence a lead byte announces (1 for ASCII and stray continuation
// bytes).
func oneCharLen(b byte) int {
	return int("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x02\x02\x03\x04"[b>>4])
}

// grow returns s with length n, reusing its storage.
func growSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// encode appends the ids of the best segmentation of text to dst.
func (u *unigram) encode(st *unigramState, dst []int32, text []byte) ([]int32, error) {
	n := len(text)
	if n == 0 {
		return dst, nil
	}
	if u.hf {
		return u.encodeHF(st, dst, text)
	}
	best, out, err := viterbi(u.trie.nodes, u.scoreSP, u.unk32, u.unkID, text, &st.best32, &st.out)
	if err != nil {
		return dst, err
	}
	prevUnk := false
	for k := len(out) - 1; k >= 0; k-- {
		b := &best[out[k]]
		if b.id != u.unkID {
			dst = append(dst, b.id)
			prevUnk = false
			continue
		}
		if u.byteFB {
			for _, c := range text[b.from1-1 : out[k]] {
				dst = append(dst, u.byteID[c])
			}
		} else if !prevUnk {
			dst = append(dst, b.id)
		}
		prevUnk = true
	}
	return dst, nil
}

// viterbi finds the best segmentation of text into the trie's pieces
// (scores by id) and an unknown piece (score unk, id unkID: -1 for none,
// then a character no piece starts with is errNoUnk). It fills best[0:n+1]
// and returns the best path at each position (*bestp grown to n+1) and the
// piece ends, the last first (in *outp). A candidate's score is computed in
// double and stored as F, as SentencePiece's best_path_score is; the
// unknown piece's is F + F, as in the C++.
func viterbi[F float32 | float64](nodes []daNode, scores []float64, unk F, unkID int32, text []byte, bestp *[]bestPath[F], outp *[]int32) ([]bestPath[F], []int32, error) {
	n := len(text)
	*bestp = growSlice(*bestp, n+1)
	best := *bestp
	clear(best)
	for start := 0; start < n; {
		here := float64(best[start].score)
		mblen := min(oneCharLen(text[start]), n-start)
		single := false
		s := int32(daRoot)
		for end := start; end < n; {
			c := nodes[s].base + int32(text[end])
			if uint32(c) >= uint32(len(nodes)) || nodes[c].check != s {
				break
			}
			s = c
			end++
			id := nodes[c].val
			if id < 0 {
				continue
			}
			cand := scores[id] + here
			if b := &best[end]; b.from1 == 0 || cand > float64(b.score) {
				*b = bestPath[F]{F(cand), int32(start) + 1, id}
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			if unkID < 0 {
				return nil, nil, errNoUnk
			}
			cand := unk + best[start].score
			if b := &best[start+mblen]; b.from1 == 0 || cand > b.score {
				*b = bestPath[F]{cand, int32(start) + 1, unkID}
			}
		}
		start += mblen
	}
	out := (*outp)[:0]
	for end := n; end > 0; end = int(best[end].from1 - 1) {
		out = append(out, int32(end))
	}
	*outp = out
	return best, out, nil
}

// encodeHF is encode with Hugging Face's semantics.
func (u *unigram) encodeHF(st *unigramState, dst []int32, text []byte) ([]int32, error) {
	best, out, err := viterbi(u.trie.nodes, u.score64, u.unk64, u.unkID, text, &st.best64, &st.out)
	if err != nil {
		return dst, err
	}
	// Tokens: runs of unknown pieces fused (fuse_unk), every token looked
	// up by its string (Unigram::tokenize).
	for k := len(out) - 1; k >= 0; {
		end := out[k]
		begin := best[end].from1 - 1
		if id := best[end].id; id != u.unkID || u.unkID < 0 {
			dst = append(dst, id) // the string of a matched piece maps to its id (last wins)
			k--
			continue
		}
		k--
		if u.fuseUnk {
			for k >= 0 && best[out[k]].id == u.unkID {
				end = out[k]
				k--
			}
		}
		tok := text[begin:end]
		if id := u.hfVocab.lookup(tok); id >= 0 {
			dst = append(dst, id)
			continue
		}
		var ok bool
		if dst, ok = appendByteTokens(dst, u.byteFB, &u.byteID, tok); ok {
			continue
		}
		dst = append(dst, u.unkID)
	}
	return dst, nil
}
