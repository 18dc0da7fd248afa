// Package tokenizer turns text into GLM token ids, exactly as Hugging Face
// tokenizers would, and fast.
//
// Two encoders are our own: WordPiece (BERT: BertNormalizer, BertPreTokenizer
// and greedy longest-match WordPiece) and byte-level BPE (GPT-2's
// pre-tokenization pattern, bytes_to_unicode, ranked merges). Both are
// checked token for token against Hugging Face tokenizers on real corpora
// and a multilingual stress set, take an ASCII fast path with an exact
// general path behind it, and allocate nothing per document once warm.
// Other tokenizer.json kinds fall back to github.com/sugarme/tokenizer, with
// a Warning.
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

// Kinds of Tokenizer.
const (
	KindWordPiece = "wordpiece"
	KindBPE       = "bpe"
	KindFallback  = "fallback"
)

// FallbackWarning is the Warning of a Tokenizer that encodes with
// github.com/sugarme/tokenizer.
const FallbackWarning = "tokenizer kind not implemented by glmkit: encoding with github.com/sugarme/tokenizer, whose output can differ from Hugging Face tokenizers on non-ASCII text"

// Tokenizer is a loaded vocabulary with its encoder configuration and GLM's
// special ids. It is read-only after Load and safe for concurrent use.
type Tokenizer struct {
	name, kind, sha string
	warning         string

	special   masking.SpecialIDs
	baseSize  int
	modelSize int
	tokens    []string // id → token string, len VocabSize(); appended tokens by name
	isSpecial []bool   // len VocabSize(): special or added tokens, and GLM's appended ones
	ends      []bool   // len ModelVocabSize()

	wp  *wordPiece
	bpe *bytePair
	fb  *fallback
	sp  *sentencePiece

	// Decoding.
	wpCleanup bool          // WordPiece decoder cleanup
	byteDec   map[rune]byte // byte-level alphabet, inverse
}

// Name returns "bert-base-uncased" or "gpt2" for the built-in vocabularies,
// otherwise the path given to Load.
func (t *Tokenizer) Name() string { return t.name }

// Kind returns KindWordPiece, KindBPE, KindSentencePiece or KindFallback.
func (t *Tokenizer) Kind() string { return t.kind }

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

// Warning returns a non-empty message when the output can differ from
// Hugging Face tokenizers (the sugarme fallback), for the caller to show.
func (t *Tokenizer) Warning() string { return t.warning }

// Token returns a display string for id: the vocabulary entry (byte-level
// form for BPE, as Hugging Face's id_to_token gives it), GLM's tokens by
// name ("[gMASK]", "<|startofpiece|>"), "<pad:N>" for padding ids and
// "<invalid:N>" for ids outside the model vocabulary.
func (t *Tokenizer) Token(id int32) string {
	switch {
	case id >= 0 && int(id) < len(t.tokens):
		return t.tokens[id]
	case id >= 0 && int(id) < t.modelSize:
		return "<pad:" + strconv.Itoa(int(id)) + ">"
	}
	return "<invalid:" + strconv.Itoa(int(id)) + ">"
}

// Decode returns the text of ids. WordPiece tokens are joined with spaces,
// continuation pieces glued to their word, and Hugging Face's WordPiece
// decoder cleanup applied (" ." → ".", " n't" → "n't", ...); byte-level BPE
// tokens are concatenated as bytes and invalid UTF-8 becomes U+FFFD, as
// Hugging Face's ByteLevel decoder does. Special and appended tokens appear
// by name; padding ids as "<pad:N>".
func (t *Tokenizer) Decode(ids []int32) string {
	var sb strings.Builder
	switch t.kind {
	case KindWordPiece:
		for i, id := range ids {
			tok := t.Token(id)
			if i > 0 {
				if p := t.wp.prefix; p != "" && strings.HasPrefix(tok, p) {
					tok = tok[len(p):]
				} else {
					tok = " " + tok
				}
			}
			if t.wpCleanup {
				tok = wordPieceCleanup(tok)
			}
			sb.WriteString(tok)
		}
		return sb.String()
	case KindBPE:
		var raw []byte
		for _, id := range ids {
			if id >= 0 && int(id) < len(t.tokens) {
				raw = append(raw, byteLevelDecode(t.tokens[id], t.byteDec)...)
			} else {
				raw = append(raw, t.Token(id)...)
			}
		}
		return lossyUTF8(raw)
	case KindSentencePiece:
		return t.sp.decodeIDs(t, ids)
	}
	return t.fb.decode(t, ids)
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
func RepairUTF8(dst, text []byte) ([]byte, int) {
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
		i += invalidRun(text[i:])
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
// The error is always nil except from the sugarme fallback and for the
// rare text a SentencePiece model cannot encode (see KindSentencePiece).
func (e *Encoder) Encode(dst []int32, text []byte) ([]int32, error) {
	if !utf8.Valid(text) {
		e.fixed = appendRepaired(e.fixed[:0], text)
		text = e.fixed
	}
	t := e.t
	switch t.kind {
	case KindWordPiece:
		return t.wp.encode(&e.wp, dst, text, e.general), nil
	case KindBPE:
		return t.bpe.encode(&e.bpe, dst, text, e.general, e.noCache)
	case KindSentencePiece:
		return t.sp.encode(&e.sp, dst, text)
	}
	return t.fb.encode(dst, text)
}

// assignSpecials looks up GLM's command tokens in the base vocabulary
// tokens[:base] (by name, in the order given for each) and appends the
// missing ones in GLM's order: eos/pad if absent, then sop, eop, ENC, MASK,
// sep, unk, gMASK, sMASK. Names looked up: eos and pad "</s>",
// "<|endoftext|>", "[PAD]"; ENC "[CLS]", "<s>"; MASK "[MASK]", "<mask>";
// sep "[SEP]", "</s>"; unk "[UNK]", "<unk>"; the others by GLM's names.
func (t *Tokenizer) assignSpecials(lookup func(string) (int32, bool)) {
	find := func(names ...string) int32 {
		for _, n := range names {
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
	s.SOP, s.EOP, s.GMask, s.SMask = find(nameSOP), find(nameEOP), find(nameGMask), find(nameSMask)
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

// computeSentenceEnds fills t.ends from the tokens' text (decode gives the
// bytes of a base-vocabulary token).
func (t *Tokenizer) computeSentenceEnds(decode func(id int) []byte) {
	t.ends = make([]bool, t.modelSize)
	for id := range t.tokens {
		if t.isSpecial[id] {
			continue
		}
		t.ends[id] = endsSentence(decode(id))
	}
}

// endsSentence reports whether b contains a sentence end (decisions.md §4).
func endsSentence(b []byte) bool {
	if len(bytes.TrimSpace(b)) == 0 {
		return false
	}
	if bytes.ContainsAny(b, ".?!;:\n") {
		return true
	}
	for _, s := range [...]string{"。", "？", "！", "；", "…"} {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// String returns a one-line summary for logs.
func (t *Tokenizer) String() string {
	return fmt.Sprintf("%s (%s, %d base + %d GLM ids, model vocabulary %d)", t.name, t.kind, t.baseSize, len(t.tokens)-t.baseSize, t.modelSize)
}
