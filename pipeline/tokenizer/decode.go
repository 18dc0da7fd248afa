package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Decoding, for display (glmprep inspect) and sentence ends: Hugging Face's
// decoders, each token list → token list, then joined. An unknown decoder
// type is not an error (decoding never changes ids): the model's usual
// decoder is used instead.

type decoder interface {
	chain(tokens []string, t *Tokenizer) []string
}

// decoderFunc joins a decoder chain's output.
type decoderSeq []decoder

func (d decoderSeq) chain(tokens []string, t *Tokenizer) []string {
	for _, x := range d {
		tokens = x.chain(tokens, t)
	}
	return tokens
}

// decodeWith runs d and joins the result.
func decodeWith(d decoder, tokens []string, t *Tokenizer) string {
	return strings.Join(d.chain(tokens, t), "")
}

// The decode method on any decoder.
type decoderOf struct{ decoder }

func (d decoderOf) decode(tokens []string, t *Tokenizer) string {
	return decodeWith(d.decoder, tokens, t)
}

type byteLevelDec struct{}

func (byteLevelDec) chain(tokens []string, t *Tokenizer) []string {
	var raw []byte
	for _, tok := range tokens {
		raw = append(raw, byteLevelDecode(tok, t.byteDec)...)
	}
	return []string{lossyUTF8(raw)}
}

type wordPieceDecoder struct {
	prefix  string
	cleanup bool
}

func (d *wordPieceDecoder) chain(tokens []string, _ *Tokenizer) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		if i > 0 {
			if d.prefix != "" && strings.HasPrefix(tok, d.prefix) {
				tok = tok[len(d.prefix):]
			} else {
				tok = " " + tok
			}
		}
		if d.cleanup {
			tok = wordPieceCleanup(tok)
		}
		out[i] = tok
	}
	return out
}

type metaspaceDec struct {
	repl    string
	prepend bool // the first token's replacement characters are dropped
}

func (d *metaspaceDec) chain(tokens []string, _ *Tokenizer) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		if i == 0 && d.prepend {
			out[i] = strings.ReplaceAll(tok, d.repl, "")
		} else {
			out[i] = strings.ReplaceAll(tok, d.repl, " ")
		}
	}
	return out
}

type replaceDec struct {
	re      *regex
	content string
}

func (d *replaceDec) chain(tokens []string, _ *Tokenizer) []string {
	out := make([]string, len(tokens))
	var m reMatcher
	for i, tok := range tokens {
		var sb strings.Builder
		prev := 0
		_ = m.findAll(d.re, []byte(tok), func(s, e int) {
			sb.WriteString(tok[prev:s])
			sb.WriteString(d.content)
			prev = e
		})
		sb.WriteString(tok[prev:])
		out[i] = sb.String()
	}
	return out
}

type byteFallbackDec struct{}

func (byteFallbackDec) chain(tokens []string, _ *Tokenizer) []string {
	var out []string
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, tok := range tokens {
		if b, ok := pieceByte(tok); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, tok)
	}
	flush()
	return out
}

type fuseDec struct{}

func (fuseDec) chain(tokens []string, _ *Tokenizer) []string {
	return []string{strings.Join(tokens, "")}
}

type stripDec struct {
	content     string
	start, stop int
}

func (d *stripDec) chain(tokens []string, _ *Tokenizer) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		for k := 0; k < d.start && strings.HasPrefix(tok, d.content); k++ {
			tok = tok[len(d.content):]
		}
		for k := 0; k < d.stop && strings.HasSuffix(tok, d.content); k++ {
			tok = tok[:len(tok)-len(d.content)]
		}
		out[i] = tok
	}
	return out
}

type bpeSuffixDec struct{ suffix string }

func (d *bpeSuffixDec) chain(tokens []string, _ *Tokenizer) []string {
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		rep := " "
		if i == len(tokens)-1 {
			rep = ""
		}
		out[i] = strings.ReplaceAll(tok, d.suffix, rep)
	}
	return out
}

// plainDec joins the tokens with spaces, as HF does without a decoder.
type plainDec struct{}

func (plainDec) chain(tokens []string, _ *Tokenizer) []string {
	return []string{strings.Join(tokens, " ")}
}

// parseDecoder reads tokenizer.json's decoder; nil when it is null or of a
// type glmkit does not decode.
func parseDecoder(field string, raw json.RawMessage) (decoderOf, error) {
	d, err := parseDecoderPart(field, raw)
	if err != nil || d == nil {
		return decoderOf{}, err
	}
	return decoderOf{d}, nil
}

// decoderRequired are the options of a decoder type that Hugging Face has
// no default for: it refuses a file without them, or with a null.
func decoderRequired(typ string) []string {
	switch typ {
	case "Sequence":
		return []string{"decoders"}
	case "ByteLevel":
		return []string{"add_prefix_space", "trim_offsets"}
	case "WordPiece":
		return []string{"prefix", "cleanup"}
	case "Metaspace":
		return []string{"replacement"}
	case "Replace":
		return []string{"pattern", "content"}
	case "Strip":
		return []string{"content", "start", "stop"}
	case "BPEDecoder":
		return []string{"suffix"}
	case "CTC":
		return []string{"pad_token", "word_delimiter_token", "cleanup"}
	}
	return nil
}

func parseDecoderPart(field string, raw json.RawMessage) (decoder, error) {
	o, t, ok, err := component(field, raw)
	if err != nil || !ok {
		return nil, err
	}
	if err := o.required(decoderRequired(t)...); err != nil {
		return nil, err
	}
	switch t {
	case "Sequence":
		return decoderSeqOf(o)
	case "ByteLevel":
		return byteLevelDec{}, o.flags("add_prefix_space", "trim_offsets", "use_regex")
	case "WordPiece":
		return wordPieceDecOf(o)
	case "Metaspace":
		return metaspaceDecOf(o)
	case "Replace":
		return replaceDecOf(o)
	case "ByteFallback":
		return byteFallbackDec{}, nil
	case "Fuse":
		return fuseDec{}, nil
	case "Strip":
		return stripDecOf(o)
	case "BPEDecoder":
		r := o.opts()
		return &bpeSuffixDec{suffix: r.str("suffix", "</w>")}, r.err
	case "CTC":
		return nil, nil // speech models' decoder: the default decoding serves
	}
	return nil, fieldErr(field+".type", "%q is not a Hugging Face decoder (Hugging Face refuses the file)", t)
}

// decoderSeqOf reads a Sequence of decoders; nil when one of them is nil
// (a type glmkit does not decode).
func decoderSeqOf(o jobj) (decoder, error) {
	l, err := o.list("decoders")
	if err != nil {
		return nil, err
	}
	var seq decoderSeq
	for i, r := range l {
		d, err := parseDecoderPart(fmt.Sprintf("%s.decoders[%d]", o.field, i), r)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return nil, nil
		}
		seq = append(seq, d)
	}
	return seq, nil
}

func wordPieceDecOf(o jobj) (decoder, error) {
	r := o.opts()
	return &wordPieceDecoder{prefix: r.str("prefix", "##"), cleanup: r.boolean("cleanup", true)}, r.err
}

func metaspaceDecOf(o jobj) (decoder, error) {
	r := o.opts()
	d := &metaspaceDec{repl: r.str("replacement", "\u2581")}
	scheme, aps := r.str("prepend_scheme", "always"), r.boolean("add_prefix_space", true)
	d.prepend = scheme != "never" && aps
	return d, r.err
}

func replaceDecOf(o jobj) (decoder, error) {
	re, _, err := o.pattern("pattern")
	if err != nil {
		return nil, err
	}
	r := o.opts()
	return &replaceDec{re: re, content: r.str("content", "")}, r.err
}

func stripDecOf(o jobj) (decoder, error) {
	r := o.opts()
	return &stripDec{content: r.str("content", " "), start: r.integer("start", 0), stop: r.integer("stop", 0)}, r.err
}

// defaultDecoder is the decoder of a tokenizer.json without a usable one.
func defaultDecoder(kind string, md *tjModel) decoderOf {
	switch kind {
	case KindBPE:
		return decoderOf{byteLevelDec{}}
	case KindWordPiece:
		return decoderOf{&wordPieceDecoder{prefix: md.prefix, cleanup: true}}
	case KindUnigram, KindCharBPE:
		return decoderOf{decoderSeq{&metaspaceDec{repl: "\u2581", prepend: true}, byteFallbackDec{}}}
	}
	return decoderOf{plainDec{}}
}
