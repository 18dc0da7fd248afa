package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KindSentencePiece is the Kind of a Tokenizer loaded from a SentencePiece
// .model file.
const KindSentencePiece = "sentencepiece"

// A SentencePiece .model file encodes exactly as SentencePiece 0.1.97's
// SentencePieceProcessor.EncodeAsIds (no bos/eos, no sampling):
//
//  1. The normalizer (normalizer.cc): USER_DEFINED pieces pass through
//     unchanged; elsewhere the precompiled charsmap (nmt_nfkc, nfkc,
//     nfkc_cf, ...; identity when empty) rewrites the text, longest rule
//     first; leading, trailing and repeated spaces are dropped
//     (remove_extra_whitespaces); a space is prepended (add_dummy_prefix,
//     appended with treat_whitespace_as_suffix); spaces become U+2581
//     (escape_whitespaces).
//  2. The model: Unigram (unigram.go), BPE (spbpe.go), CHAR or WORD.
//  3. Unknown pieces become <0xNN> byte pieces (byte_fallback), or one unk
//     id per run of them.
//
// The split_by_* and other trainer options only shape training; SentencePiece
// does not read them when encoding, and neither does glmkit.
//
// Special ids (decisions.md §2): the file's ids are kept. GLM's command
// tokens are looked up among its CONTROL, UNKNOWN and USER_DEFINED pieces by
// name ("</s>" is eos and sep, "<s>" is [CLS], "<unk>" is unk, "[MASK]",
// "[gMASK]", "[sMASK]", "<|startofpiece|>", "<|endofpiece|>"; the
// trainer_spec's eos_id, bos_id and unk_id stand for "</s>", "<s>" and
// "<unk>" whatever their pieces are called); the missing ones are appended
// in GLM's order. A USER_DEFINED piece adopted that way is
// kept out of encoding altogether (as if the file did not have it), so a
// literal "[MASK]" in a document stays text: the one place where glmkit
// departs from EncodeAsIds on purpose. A text that SentencePiece cannot
// encode (a BPE, CHAR or WORD symbol spelling a CONTROL piece such as "<s>";
// EncodeAsIds returns a truncated result) is an error for that document.
//
// GLM's own Chinese tokenizer file (cog-pretrain.model, recognized by its
// SHA-256) gets the ids GLM's ChineseSPTokenizer gives it, so shards work
// with the released GLM-Large-Chinese and GLM-10B-Chinese checkpoints: pad
// and eos <|endoftext|> 50000, [SEP] 50001, [CLS] 50002, [MASK] 50003,
// [UNK] 50004, 50005 unused, sop 50006, eop 50007, [sMASK] 50008, [gMASK]
// 50009 (GLM with --fix-command-token: without it gMASK took 50007, eop's
// id), model vocabulary 50048. GLM encodes text with sp.EncodeAsIds and
// nothing else: it does not map "\n" to the "<n>" piece (that piece is
// only produced by a literal "<n>" in the text; nmt_nfkc turns a newline
// into a space), and neither does glmkit.
type sentencePiece struct {
	norm  spNormalizer
	model int32
	uni   *unigram
	bpe   *spBPE // BPE, CHAR and WORD models
	word  bool   // WORD model: whole words

	pieces     []spPiece
	unkSurface string
	denorm     *spNormalizer // denormalizer_spec with a charsmap: applied after decoding
}

// spmState is an Encoder's scratch for a SentencePiece model.
type spmState struct {
	norm []byte
	uni  unigramState
	bpe  spBPEState
}

// cogPretrainSHA256 is the SHA-256 of GLM's chinese_sentencepiece/cog-pretrain.model.
const cogPretrainSHA256 = "6ea6f4164152bc58d23e24e48f7bf4187aad72a32e97ec4b3acc832fe183cbc2"

// fromSentencePiece loads a serialized ModelProto.
func fromSentencePiece(path string, data []byte) (*Tokenizer, error) {
	m, err := parseModelProto(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: not a SentencePiece model: %w", path, err)
	}
	t := &Tokenizer{name: path, kind: KindSentencePiece, sha: sha256Hex(data)}
	sp, err := t.initSentencePiece(m)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	t.sp = sp
	for i, s := range m.selfTest {
		if err := sp.selfTest(s); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: self_test_data.samples[%d]: %w", path, i, err)
		}
	}
	return t, nil
}

func (t *Tokenizer) initSentencePiece(m *modelProto) (*sentencePiece, error) {
	if len(m.pieces) == 0 {
		return nil, errors.New("pieces: the model has no pieces")
	}
	tr := &m.trainer
	switch tr.modelType {
	case spModelUnigram, spModelBPE, spModelWord, spModelChar:
	default:
		return nil, fmt.Errorf("trainer_spec.model_type: %d is not UNIGRAM (1), BPE (2), WORD (3) or CHAR (4)", tr.modelType)
	}
	n := len(m.pieces)
	vocab := make([]vocabPiece, n)
	for i, p := range m.pieces {
		vocab[i] = vocabPiece{piece: p.piece, score: float64(p.score), typ: p.typ}
	}
	if err := checkSPPieces(vocab); err != nil {
		return nil, err
	}
	t.initSPTokens(m)
	// GLM tokens adopted from USER_DEFINED pieces are kept out of encoding.
	sp0 := t.special
	for _, id := range []int32{sp0.EOS, sp0.CLS, sp0.Mask, sp0.Sep, sp0.Unk, sp0.SOP, sp0.EOP, sp0.GMask, sp0.SMask} {
		if int(id) < n && vocab[id].typ == spUserDefined {
			vocab[id].typ = spHidden
			t.isSpecial[id] = true
		}
	}

	sp := &sentencePiece{model: tr.modelType, pieces: m.pieces, unkSurface: tr.unkSurface}
	if err := sp.initNormalizers(m, vocab); err != nil {
		return nil, err
	}
	if err := sp.initModel(tr, vocab, m.normalizer.escapeWhitespaces); err != nil {
		return nil, err
	}
	t.computeSentenceEnds(func(id int) []byte { return sp.pieceText(int32(id)) }, nil)
	return sp, nil
}

// initSPTokens sets the tokens (the pieces) and the special ids: GLM's
// ChineseSPTokenizer's for cog-pretrain.model, else GLM's command tokens
// found among the CONTROL, UNKNOWN and USER_DEFINED pieces by name.
func (t *Tokenizer) initSPTokens(m *modelProto) {
	n := len(m.pieces)
	tokens := make([]string, n)
	byName := make(map[string]int32)
	t.isSpecial = make([]bool, n)
	for i, p := range m.pieces {
		tokens[i] = p.piece
		switch p.typ {
		case spControl, spUnknown:
			t.isSpecial[i] = true
			fallthrough
		case spUserDefined:
			if _, dup := byName[p.piece]; !dup {
				byName[p.piece] = int32(i)
			}
		}
	}
	// The trainer's declared ids name the standard pieces even when the
	// file calls them otherwise (--eos_piece=[EOS]).
	tr := &m.trainer
	for _, a := range []struct {
		name string
		id   int32
	}{{"</s>", tr.eosID}, {"<s>", tr.bosID}, {"<unk>", tr.unkID}} {
		if a.id >= 0 && int(a.id) < n {
			if typ := m.pieces[a.id].typ; typ == spControl || typ == spUnknown {
				byName[a.name] = a.id
			}
		}
	}
	t.initTokens(tokens)
	if t.sha == cogPretrainSHA256 && n == 50000 {
		t.glmChineseSpecials()
	} else {
		t.assignSpecials(func(s string) (int32, bool) { id, ok := byName[s]; return id, ok })
	}
}

// initNormalizers sets up the normalizer (its charsmap, and the
// USER_DEFINED pieces that pass through it) and the denormalizer.
func (sp *sentencePiece) initNormalizers(m *modelProto, vocab []vocabPiece) error {
	tr, ns := &m.trainer, &m.normalizer
	sp.norm = spNormalizer{addDummyPrefix: ns.addDummyPrefix, removeExtra: ns.removeExtraWhitespaces,
		escape: ns.escapeWhitespaces, suffix: tr.treatWhitespaceAsSuffix}
	if len(ns.precompiledCharsmap) > 0 {
		cm, err := newCharsmap(ns.precompiledCharsmap)
		if err != nil {
			return fmt.Errorf("normalizer_spec.%w", err)
		}
		sp.norm.cm = cm
	} else if ns.hasRuleTSV {
		return errors.New("normalizer_spec: normalization_rule_tsv without precompiled_charsmap (SentencePiece ignores the TSV when encoding; refusing to guess)")
	}
	var ukeys []string
	var uvals []int32
	for i, p := range vocab {
		if p.typ == spUserDefined {
			ukeys, uvals = append(ukeys, p.piece), append(uvals, int32(i))
		}
	}
	if len(ukeys) > 0 {
		u, err := buildDATrie(ukeys, uvals)
		if err != nil {
			return err
		}
		sp.norm.user = u
		for _, k := range ukeys {
			sp.norm.userFirst[k[0]] = true
		}
	}
	sp.norm.init()
	if d := m.denormalizer; d != nil && len(d.precompiledCharsmap) > 0 {
		cm, err := newCharsmap(d.precompiledCharsmap)
		if err != nil {
			return fmt.Errorf("denormalizer_spec.%w", err)
		}
		sp.denorm = &spNormalizer{cm: cm, addDummyPrefix: d.addDummyPrefix, removeExtra: d.removeExtraWhitespaces, escape: d.escapeWhitespaces}
		sp.denorm.init()
	}
	return nil
}

// initModel builds the model of the trainer's model_type from vocab;
// escape is whether the normalized text spells whitespace as U+2581.
func (sp *sentencePiece) initModel(tr *spTrainerSpec, vocab []vocabPiece, escape bool) error {
	ws := "\u2581"
	if !escape {
		ws = " "
	}
	var err error
	switch tr.modelType {
	case spModelUnigram:
		sp.uni, err = newUnigram(vocab, unigramOptions{byteFallback: tr.byteFallback})
	case spModelBPE:
		sp.bpe, err = newSPBPE(vocab, spBPEOptions{byteFallback: tr.byteFallback, ws: ws})
	case spModelChar:
		sp.bpe, err = newSPBPE(vocab, spBPEOptions{byteFallback: tr.byteFallback})
		if err == nil {
			sp.bpe.noMerge = true
		}
	case spModelWord:
		sp.bpe, err = newSPBPE(vocab, spBPEOptions{byteFallback: tr.byteFallback})
		sp.word = true
	}
	return err
}

// glmChineseSpecials gives GLM's cog-pretrain.model the command-token ids of
// GLM's ChineseSPTokenizer (with --fix-command-token).
func (t *Tokenizer) glmChineseSpecials() {
	base := int32(len(t.tokens))
	for _, name := range []string{nameEOS, nameSep, nameCLS, nameMask, nameUnk, "", nameSOP, nameEOP, nameSMask, nameGMask} {
		if name == "" {
			name = "<pad:" + strconv.Itoa(len(t.tokens)) + ">" // skipped by GLM
		}
		t.tokens = append(t.tokens, name)
		t.isSpecial = append(t.isSpecial, true)
	}
	s := &t.special
	s.EOS, s.Sep, s.CLS, s.Mask, s.Unk = base, base+1, base+2, base+3, base+4
	s.SOP, s.EOP, s.SMask, s.GMask = base+6, base+7, base+8, base+9
	s.Pad = s.EOS
	t.modelSize = (len(t.tokens) + 127) / 128 * 128
}

// pieceText returns the text a base-vocabulary piece stands for: U+2581 as
// a space, a byte piece as its byte, nothing for control and unknown pieces.
func (sp *sentencePiece) pieceText(id int32) []byte {
	p := sp.pieces[id]
	switch p.typ {
	case spControl, spUnknown:
		return nil
	case spByte:
		b, _ := pieceByte(p.piece)
		return []byte{b}
	}
	return []byte(strings.ReplaceAll(p.piece, "\u2581", " "))
}

// encode appends the ids of text (valid UTF-8) to dst. The error is not
// nil only for a text that SentencePiece itself cannot encode: a BPE, CHAR
// or WORD symbol that spells a CONTROL piece (EncodeAsIds then returns a
// truncated result; glmkit refuses the document instead).
func (sp *sentencePiece) encode(st *spmState, dst []int32, text []byte) ([]int32, error) {
	st.norm = sp.norm.normalize(st.norm[:0], text)
	norm := st.norm
	if len(norm) == 0 {
		return dst, nil
	}
	if sp.uni != nil {
		return sp.uni.encode(&st.uni, dst, norm) // SentencePiece semantics never fail
	}
	st.bpe.err = nil
	if sp.word {
		dst = sp.bpe.encodeWords(&st.bpe, dst, norm)
	} else {
		dst = sp.bpe.encode(&st.bpe, dst, norm)
	}
	return dst, st.bpe.err
}

// selfTest checks one of the file's own test samples: expected is the
// pieces SentencePiece produced at training time, joined by spaces.
func (sp *sentencePiece) selfTest(s spSample) error {
	var st spmState
	got, err := sp.encode(&st, nil, []byte(s.input))
	if err != nil {
		return err
	}
	var want []int32
	for _, w := range strings.Split(s.expected, " ") {
		if w == "" {
			continue
		}
		want = append(want, sp.pieceToID(w))
	}
	if !equalIDs(got, want) {
		return fmt.Errorf("%q encodes as %v, the model file expects %v (%q)", s.input, got, want, s.expected)
	}
	return nil
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pieceToID is SentencePiece's PieceToId: CONTROL, UNKNOWN and BYTE pieces
// first, then the others, else the unk id.
func (sp *sentencePiece) pieceToID(w string) int32 {
	unk := int32(0)
	found := int32(-1)
	for i, p := range sp.pieces {
		if p.typ == spUnknown {
			unk = int32(i)
		}
		if p.piece != w {
			continue
		}
		reserved := p.typ == spControl || p.typ == spUnknown || p.typ == spByte
		if reserved {
			return int32(i)
		}
		if found < 0 {
			found = int32(i)
		}
	}
	if found >= 0 {
		return found
	}
	return unk
}

// decode appends the text of base-vocabulary ids, as SentencePiece's
// DecodeIds does: U+2581 as spaces, the first one dropped (add_dummy_prefix),
// byte pieces joined into UTF-8 (an invalid byte as U+FFFD), control pieces
// as nothing, the unk piece as trainer_spec.unk_surface (" ⁇ "), then the
// denormalizer_spec's rules when the model has them.
func (sp *sentencePiece) decode(out []byte, ids []int32) []byte {
	if sp.denorm != nil {
		raw := sp.decodeRaw(nil, ids)
		return sp.denorm.normalize(out, raw)
	}
	return sp.decodeRaw(out, ids)
}

func (sp *sentencePiece) decodeRaw(out []byte, ids []int32) []byte {
	start := len(out)
	isBosWS, bosWSSeen := true, false
	var run []byte
	flush := func() {
		for len(run) > 0 {
			r, n := utf8.DecodeRune(run)
			if r == utf8.RuneError && n <= 1 {
				out = append(out, replacementChar...)
				n = 1
			} else {
				out = append(out, run[:n]...)
			}
			run = run[n:]
		}
	}
	for _, id := range ids {
		p := sp.pieces[id]
		if p.typ == spByte {
			b, _ := pieceByte(p.piece)
			run = append(run, b)
			continue
		}
		flush()
		if bosWSSeen || len(out) > start {
			isBosWS = false
		}
		bosWSSeen = false
		switch p.typ {
		case spControl:
			continue
		case spUnknown:
			out = append(out, sp.unkSurface...)
			continue
		}
		piece := p.piece
		if isBosWS && (sp.norm.addDummyPrefix || sp.norm.removeExtra) {
			var cut bool
			piece, cut = strings.CutPrefix(piece, "\u2581")
			bosWSSeen = cut && !sp.norm.removeExtra
		}
		out = append(out, strings.ReplaceAll(piece, "\u2581", " ")...)
	}
	flush()
	return out
}

// decodeIDs is Tokenizer.Decode for SentencePiece: runs of base ids are
// decoded as SentencePiece does, GLM's appended tokens appear by name and
// padding ids as "<pad:N>".
func (sp *sentencePiece) decodeIDs(t *Tokenizer, ids []int32) string {
	var out []byte
	last := 0
	for i, id := range ids {
		if id >= 0 && int(id) < t.baseSize {
			continue
		}
		out = sp.decode(out, ids[last:i])
		out = append(out, t.Token(id)...)
		last = i + 1
	}
	out = sp.decode(out, ids[last:])
	return string(out)
}

// spNormalizer is SentencePiece's Normalizer::Normalize for one model.
type spNormalizer struct {
	cm        *charsmap // nil: identity
	user      *daTrie   // USER_DEFINED pieces, copied unnormalized; nil when none
	userFirst [256]bool
	addDummyPrefix,
	removeExtra,
	escape,
	suffix bool
	// fast[b]: ASCII byte b is copied as itself (no rule or user piece
	// starts with it); fastASCII[b]: so it is when an ASCII byte follows.
	fast, fastASCII [128]bool
}

func (n *spNormalizer) init() {
	for b := range n.fast {
		n.fast[b] = !n.userFirst[b] && (n.cm == nil || n.cm.pass[b])
		n.fastASCII[b] = !n.userFirst[b] && (n.cm == nil || n.cm.passASCII[b])
	}
}

// isFast reports whether input[0], an ASCII byte, is copied as itself.
func (n *spNormalizer) isFast(input []byte) bool {
	b := input[0]
	return n.fast[b] || (n.fastASCII[b] && (len(input) == 1 || input[1] < utf8.RuneSelf))
}

// prefix returns the normalized form of the first unit of input and the
// number of input bytes it consumes (Normalizer::NormalizePrefix).
func (n *spNormalizer) prefix(input []byte) ([]byte, int) {
	if n.user != nil && n.userFirst[input[0]] {
		if l := longestPrefix(n.user, input, 64); l > 0 {
			return input[:l], l
		}
	}
	if n.cm != nil {
		if rep, l := n.cm.match(input); l > 0 {
			return rep, l
		}
	}
	_, l := utf8.DecodeRune(input)
	if l == 1 && input[0] >= utf8.RuneSelf {
		return []byte(replacementChar), 1
	}
	return input[:l], l
}

// wsSymbol is U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space.
var wsSymbol = []byte("\u2581")

// normalize appends the normalized form of input to dst.
func (n *spNormalizer) normalize(dst, input []byte) []byte {
	if n.removeExtra {
		for len(input) > 0 {
			if b := input[0]; b < utf8.RuneSelf && n.isFast(input) {
				if b != ' ' {
					break
				}
				input = input[1:]
				continue
			}
			rep, l := n.prefix(input)
			if len(rep) != 1 || rep[0] != ' ' {
				break
			}
			input = input[l:]
		}
	}
	if len(input) == 0 {
		return dst
	}
	start := len(dst)
	space := wsSymbol
	if !n.escape {
		space = []byte{' '}
	}
	if !n.suffix && n.addDummyPrefix {
		dst = append(dst, space...)
	}
	prevSpace := n.removeExtra
	for len(input) > 0 {
		var rep []byte
		var l int
		if b := input[0]; b < utf8.RuneSelf && n.isFast(input) {
			l = 1
			if b == ' ' {
				if !prevSpace {
					dst = append(dst, space...)
					prevSpace = true
				}
			} else {
				dst = append(dst, b)
				prevSpace = false
			}
			input = input[1:]
			if !n.removeExtra {
				prevSpace = false
			}
			continue
		}
		rep, l = n.prefix(input)
		for prevSpace && len(rep) > 0 && rep[0] == ' ' {
			rep = rep[1:]
		}
		if len(rep) > 0 {
			for _, c := range rep {
				if c == ' ' && n.escape {
					dst = append(dst, wsSymbol...)
				} else {
					dst = append(dst, c)
				}
			}
			prevSpace = rep[len(rep)-1] == ' '
		}
		input = input[l:]
		if !n.removeExtra {
			prevSpace = false
		}
	}
	if n.removeExtra {
		for bytes.HasSuffix(dst[start:], space) {
			dst = dst[:len(dst)-len(space)]
		}
	}
	if n.suffix && n.addDummyPrefix {
		dst = append(dst, space...)
	}
	return dst
}
