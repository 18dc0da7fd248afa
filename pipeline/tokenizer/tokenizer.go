// Package tokenizer turns text into GLM token ids, exactly as each
// tokenizer's own reference would, and fast.
//
// Every encoder is glmkit's own: WordPiece (BERT: BertNormalizer,
// BertPreTokenizer, greedy longest match), byte-level BPE with a
// hand-written scanner for the GPT-2, cl100k/Llama-3, o200k and Qwen2
// patterns (or a regex engine with Oniguruma's semantics for any other),
// SentencePiece .model files (Unigram and BPE), tiktoken rank files, and a
// general Hugging Face pipeline (normalizers, pre-tokenizers, BPE, WordPiece,
// WordLevel and Unigram models, added tokens) for every other tokenizer.json.
// Each is checked token for token against its reference (Hugging Face
// tokenizers, SentencePiece, tiktoken's JavaScript ports) on real corpora
// and a multilingual stress set, and allocates nothing per document once
// warm. A component glmkit does not implement is an error at Load, never a
// silent approximation.
//
// A Tokenizer is read-only after Load and may be shared by any number of
// goroutines; each goroutine encodes with its own Encoder from NewEncoder.
//
// Special tokens are GLM's (decisions.md §2): ids a vocabulary already has
// are kept, the rest are appended after it in GLM's order, and the model
// vocabulary is padded to a multiple of 128. The encoders never produce
// them from text: a literal "[MASK]" or "<|endoftext|>" in a document is
// encoded as ordinary text.
package tokenizer

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/glmkit/glmkit/masking"
)

// Names of GLM's command tokens (glm-reference.md §1).
const (
	nameSOP   = "<|startofpiece|>"
	nameEOP   = "<|endofpiece|>"
	nameCLS   = "[CLS]"
	nameMask  = "[MASK]"
	nameSep   = "[SEP]"
	nameUnk   = "[UNK]"
	nameGMask = "[gMASK]"
	nameSMask = "[sMASK]"
	nameEOS   = "<|endoftext|>"
)

// Kinds of Tokenizer: the model family.
const (
	KindWordPiece = "wordpiece" // BERT's WordPiece
	KindBPE       = "bpe"       // byte-level BPE (GPT-2, Llama-3, cl100k, o200k, Qwen2, tiktoken files)
	KindCharBPE   = "char-bpe"  // BPE over characters, with byte fallback (Llama-2 style tokenizer.json)
	KindUnigram   = "unigram"   // a Unigram tokenizer.json
	KindWordLevel = "wordlevel" // a WordLevel tokenizer.json
)

// Tokenizer is a loaded vocabulary with its encoder configuration and GLM's
// special ids. It is read-only after Load and safe for concurrent use.
type Tokenizer struct {
	name, kind, sha string
	warning         string

	special   masking.SpecialIDs
	baseSize  int
	modelSize int
	tokens    []string    // id → token string, len VocabSize(); appended tokens by name
	isSpecial []bool      // len VocabSize(): special or added tokens, and GLM's appended ones
	ends      []bool      // len ModelVocabSize()
	edges     []tokenEdge // len ModelVocabSize(): the bytes at each end of a token's text (SentenceEndsOf)

	// The encoder: gen when set, else wp, bpe or sp.
	wp  *wordPiece
	bpe *bytePair
	sp  *sentencePiece
	gen *genPipeline

	pattern string      // the pre-tokenization pattern's name (gpt2, cl100k, o200k, qwen2, regex), if any
	variant string      // a vocab.txt's normalizer where it is not BERT's uncased default (see Family)
	notes   []string    // how the file was read, for the build summary
	opts    LoadOptions // what LoadWith was given

	// Decoding.
	dec       decoderOf     // all but sp
	wpCleanup bool          // WordPiece decoder cleanup
	byteDec   map[rune]byte // byte-level alphabet, inverse
}

// Name returns "bert-base-uncased" or "gpt2" for the built-in vocabularies,
// otherwise the path given to Load.
func (t *Tokenizer) Name() string { return t.name }

// Kind returns the model family: KindWordPiece, KindBPE, KindCharBPE,
// KindUnigram, KindWordLevel or KindSentencePiece.
func (t *Tokenizer) Kind() string { return t.kind }

// Family returns the model family and, for byte-level BPE, the
// pre-tokenization pattern ("bpe/cl100k"), as the manifest records it. A
// SentencePiece model adds its type ("sentencepiece/unigram"), and a
// WordPiece vocab.txt whose normalizer is not BERT's uncased default (as
// tokenizer_config.json or --lowercase set it, which the file's SHA256 does
// not cover) its settings ("wordpiece/lowercase=false,strip_accents=false,
// tokenize_chinese_chars=true"): the same Family and SHA256 are the same
// tokenization.
func (t *Tokenizer) Family() string {
	if t.variant != "" {
		return t.kind + "/" + t.variant
	}
	if t.sp != nil {
		name := map[int32]string{spModelUnigram: "unigram", spModelBPE: "bpe", spModelWord: "word", spModelChar: "char"}[t.sp.model]
		return KindSentencePiece + "/" + name
	}
	if t.pattern != "" {
		return t.kind + "/" + t.pattern
	}
	return t.kind
}

// Options returns the options the tokenizer was loaded with: loading the
// same Name with them gives the same tokenizer.
func (t *Tokenizer) Options() LoadOptions { return t.opts }

// Notes returns how the file was read where that is a choice (lower-casing
// of a vocab.txt and where it came from, the pattern of a .tiktoken), for
// the build summary.
func (t *Tokenizer) Notes() []string { return t.notes }

// SHA256 returns the hex SHA-256 of the defining file bytes: tokenizer.json
// or vocab.txt alone, or vocab.json followed by merges.txt. The built-in
// vocabularies hash the same as the files they were copied from.
func (t *Tokenizer) SHA256() string { return t.sha }

// Special returns GLM's command-token ids for this vocabulary.
func (t *Tokenizer) Special() masking.SpecialIDs { return t.special }

// BaseVocabSize returns the number of ids the vocabulary file defines.
func (t *Tokenizer) BaseVocabSize() int { return t.baseSize }

// VocabSize returns BaseVocabSize plus the GLM tokens appended after it.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// ModelVocabSize returns VocabSize rounded up to a multiple of 128: the
// embedding size. Ids in [VocabSize, ModelVocabSize) are never produced.
func (t *Tokenizer) ModelVocabSize() int { return t.modelSize }

// SentenceEnds returns, per id, whether the token ends a sentence for GLM's
// sentence objective: its text contains one of . ? ! ; : 。 ？ ！ ； … or a
// newline. Special, added and padding ids never end a sentence.
//
// The text tested is the token's decoded bytes, so byte-level BPE tokens
// are judged by what they spell: GPT-2's "ãĢĤ" is 。 and ends a sentence
// (GLM tested the byte-level string, in which no non-ASCII mark or newline
// ever occurs). A token that is only whitespace ("\n", "\n\n") does not
// end one: it follows the punctuation of the sentence before it, and
// counting it would make one-token "sentences" of bare newlines, so
// newlines end sentences only inside tokens with other text, as GLM's
// GPT-2 models had it.
//
// The slice has ModelVocabSize() entries and is shared: do not modify it.
func (t *Tokenizer) SentenceEnds() []bool { return t.ends }

// Warning returns a message for the caller to show, or "". glmkit's
// encoders are exact, so it is empty for every tokenizer Load accepts
// today; it stays for callers that print it.
func (t *Tokenizer) Warning() string { return t.warning }

// Token returns a display string for id: the vocabulary entry (byte-level
// form for BPE, as Hugging Face's id_to_token gives it), GLM's tokens by
// name ("[gMASK]", "<|startofpiece|>"), "<pad:N>" for padding ids and
// "<invalid:N>" for ids outside the model vocabulary.
func (t *Tokenizer) Token(id int32) string {
	switch {
	case id >= 0 && int(id) < len(t.tokens):
		if t.tokens[id] == "" {
			return "<unused:" + strconv.Itoa(int(id)) + ">" // a gap in the file's ids
		}
		return t.tokens[id]
	case id >= 0 && int(id) < t.modelSize:
		return "<pad:" + strconv.Itoa(int(id)) + ">"
	}
	return "<invalid:" + strconv.Itoa(int(id)) + ">"
}

// Decode returns the text of ids as the tokenizer's decoder gives it:
// WordPiece tokens are joined with spaces, continuation pieces glued to
// their word, and Hugging Face's WordPiece cleanup applied (" ." → ".");
// byte-level tokens are concatenated as bytes (invalid UTF-8 becomes U+FFFD);
// SentencePiece pieces as SentencePiece decodes them; a tokenizer.json's
// decoder (Metaspace, ByteFallback, Replace, ...) as Hugging Face's. Special
// and appended tokens appear by name; padding ids as "<pad:N>".
func (t *Tokenizer) Decode(ids []int32) string {
	if t.sp != nil {
		return t.sp.decodeIDs(t, ids)
	}
	tokens := make([]string, len(ids))
	for i, id := range ids {
		tokens[i] = t.Token(id)
	}
	return t.dec.decode(tokens, t)
}

// wordPieceCleanup is Hugging Face's WordPiece decoder cleanup of one
// token, the same replacements in the same order.
func wordPieceCleanup(s string) string {
	for _, r := range [...][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
		{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// lossyUTF8 converts b to a string, replacing each maximal invalid
// subsequence with one U+FFFD as Rust's String::from_utf8_lossy does.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			sb.Write(b[i : i+n])
			i += n
			continue
		}
		// Skip the longest prefix of a valid sequence, then one U+FFFD.
		i += invalidRun(b[i:])
		sb.WriteString("\uFFFD")
	}
	return sb.String()
}

// RepairUTF8 appends text to dst with every ill-formed sequence replaced by
// U+FFFD, one per maximal subpart (the Unicode recommendation that Python's
// errors="replace" and Rust's from_utf8_lossy follow), and reports how many
// replacements it made. glmprep repairs every document this way, and
// counts it, before encoding it.
func RepairUTF8(dst, text []byte) ([]byte, int) { return repairUTF8(dst, text, invalidRun) }

// repairUTF8 appends text to dst with each ill-formed sequence replaced by
// U+FFFD, and reports how many replacements it made; run(b) gives the
// length (at least 1) of the ill-formed sequence each U+FFFD stands for at
// the start of b.
func repairUTF8(dst, text []byte, run func([]byte) int) ([]byte, int) {
	n := 0
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if r, size := utf8.DecodeRune(text[i:]); r != utf8.RuneError || size > 1 {
			dst = append(dst, text[i:i+size]...)
			i += size
			continue
		}
		i += run(text[i:])
		dst = append(dst, "\uFFFD"...)
		n++
	}
	return dst, n
}

// invalidRun returns the length of the maximal subpart of an ill-formed
// sequence at the start of b (at least 1), per Unicode's "U+FFFD
// substitution of maximal subparts".
func invalidRun(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}

// Encoder encodes documents for one goroutine. It holds scratch buffers and,
// for BPE, a bounded word cache (about 1 MiB), so it is cheap to create but
// worth keeping. An Encoder is not safe for concurrent use.
type Encoder struct {
	t     *Tokenizer
	fixed []byte // text repaired to valid UTF-8
	wp    wpState
	bpe   bpeState
	sp    spmState
	gen   genState

	general bool // tests: send ASCII through the general path too
	noCache bool // tests: bypass the BPE word cache
}

// NewEncoder returns a new Encoder for t. It allocates nothing until used.
func (t *Tokenizer) NewEncoder() *Encoder { return &Encoder{t: t} }

// Encode appends the ids of text to dst and returns the extended slice, like
// append: dst may be nil, and reusing it across documents makes encoding
// allocation-free once warm. No special tokens are added, and literal
// special-token strings in text are encoded as plain text. Bytes that are not
// valid UTF-8 are read as U+FFFD, one per byte (what Hugging Face sees after
// encoding/json's repair). text is not retained or modified.
//
// The error is nil but for text the reference itself cannot encode (a
// SentencePiece BPE symbol spelling a control piece, a Unigram character
// without an unknown id) and for a regular expression that backtracks past
// its budget on this text.
func (e *Encoder) Encode(dst []int32, text []byte) ([]int32, error) {
	if !utf8.Valid(text) {
		e.fixed = appendRepaired(e.fixed[:0], text)
		text = e.fixed
	}
	t := e.t
	switch {
	case t.gen != nil:
		if e.gen.tab == nil {
			e.gen.tab = tables()
		}
		return t.gen.encode(&e.gen, dst, text)
	case t.wp != nil:
		return t.wp.encode(&e.wp, dst, text, e.general), nil
	case t.bpe != nil:
		return t.bpe.encode(&e.bpe, dst, text, e.general, e.noCache)
	}
	return t.sp.encode(&e.sp, dst, text)
}

// assignSpecials looks up GLM's command tokens in the base vocabulary
// tokens[:base] (by name, in the order given for each) and appends the
// missing ones in GLM's order: eos/pad if absent, then sop, eop, ENC, MASK,
// sep, unk, gMASK, sMASK. Names looked up: eos and pad "</s>",
// "<|endoftext|>", "[PAD]"; ENC "[CLS]", "<s>"; MASK "[MASK]", "<mask>";
// sep "[SEP]", "</s>"; unk "[UNK]", "<unk>"; the others by GLM's names.
func (t *Tokenizer) assignSpecials(lookup func(string) (int32, bool)) {
	t.assignSpecialsWith(lookup, nil)
}

// assignSpecialsWith is assignSpecials with names that count only as added
// or special tokens of the file (special reports those): "sop" and "eop",
// which GLM's released tokenizers use, are ordinary words in other
// vocabularies. "<sop>" and "<eop>" (GLM-130B, ChatGLM, GLM-4) are looked
// up everywhere.
func (t *Tokenizer) assignSpecialsWith(lookup, special func(string) (int32, bool)) {
	find := func(names ...string) int32 {
		for _, n := range names {
			if n == "sop" || n == "eop" {
				if special != nil {
					if id, ok := special(n); ok {
						return id
					}
				}
				continue
			}
			if id, ok := lookup(n); ok {
				return id
			}
		}
		return -1
	}
	add := func(id *int32, name string) {
		if *id < 0 {
			*id = int32(len(t.tokens))
			t.tokens = append(t.tokens, name)
			t.isSpecial = append(t.isSpecial, true)
		} else {
			t.isSpecial[*id] = true
		}
	}
	s := &t.special
	// "</s>" first: RoBERTa's vocabulary also holds "<|endoftext|>", and
	// GLM-RoBERTa ends documents with "</s>" (glm-reference.md §1).
	s.EOS = find("</s>", nameEOS, "[PAD]")
	s.CLS = find(nameCLS, "<s>")
	s.Mask = find(nameMask, "<mask>")
	s.Sep = find(nameSep, "</s>")
	s.Unk = find(nameUnk, "<unk>")
	s.SOP, s.EOP = find(nameSOP, "<sop>", "sop"), find(nameEOP, "<eop>", "eop")
	s.GMask, s.SMask = find(nameGMask), find(nameSMask)
	add(&s.EOS, nameEOS)
	s.Pad = s.EOS
	add(&s.SOP, nameSOP)
	add(&s.EOP, nameEOP)
	add(&s.CLS, nameCLS)
	add(&s.Mask, nameMask)
	add(&s.Sep, nameSep)
	add(&s.Unk, nameUnk)
	add(&s.GMask, nameGMask)
	add(&s.SMask, nameSMask)
	t.modelSize = (len(t.tokens) + 127) / 128 * 128
}

// commandTokensFromText returns the ids of GLM's command tokens that text
// encodes to: each token's own string alone, after a space, inside a word,
// on a line of its own and twice. glmkit never matches a command token in
// text, but a model may hold one as an ordinary token of its vocabulary.
// The unknown token is not one of them: text gives it by design.
func (t *Tokenizer) commandTokensFromText() []int32 {
	s := t.special
	cmd := []int32{s.Pad, s.EOS, s.CLS, s.Mask, s.Sep, s.SOP, s.EOP, s.GMask, s.SMask}
	slices.Sort(cmd)
	e := t.NewEncoder()
	var found []int32
	var ids []int32
	for _, id := range slices.Compact(cmd) {
		tok := t.tokens[id]
		for _, text := range []string{tok, " " + tok, "x" + tok + "x", "\n" + tok + "\n", tok + " " + tok} {
			var err error
			if ids, err = e.Encode(ids[:0], []byte(text)); err == nil && slices.Contains(ids, id) {
				found = append(found, id)
				break
			}
		}
	}
	return found
}

// glmIDs returns the set of GLM's command-token ids.
func (t *Tokenizer) glmIDs() map[int32]bool {
	s := t.special
	m := make(map[int32]bool)
	for _, id := range []int32{s.Pad, s.EOS, s.CLS, s.Mask, s.Sep, s.Unk, s.SOP, s.EOP, s.GMask, s.SMask} {
		m[id] = true
	}
	return m
}

// computeSentenceEnds fills t.ends from the tokens' text (decode gives the
// bytes of a base-vocabulary token) and t.edges from the bytes each token
// stands for (raw; decode where nil).
func (t *Tokenizer) computeSentenceEnds(decode, raw func(id int) []byte) {
	t.ends = make([]bool, t.modelSize)
	for id := range t.tokens {
		if t.isSpecial[id] {
			continue
		}
		t.ends[id] = endsSentence(decode(id))
	}
	if raw == nil {
		raw = decode
	}
	t.computeEdges(raw)
}

// endsSentence reports whether b contains a sentence end (decisions.md §4).
func endsSentence(b []byte) bool {
	if len(bytes.TrimSpace(b)) == 0 {
		return false
	}
	if bytes.ContainsAny(b, ".?!;:\n") {
		return true
	}
	for _, r := range splitEnds {
		if bytes.ContainsRune(b, r) {
			return true
		}
	}
	return false
}

// String returns a one-line summary for logs.
func (t *Tokenizer) String() string {
	return fmt.Sprintf("%s (%s, %d base + %d GLM ids, model vocabulary %d)", t.name, t.kind, t.baseSize, len(t.tokens)-t.baseSize, t.modelSize)
}
