package tokenizer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Hugging Face tokenizer.json, read natively. Every component the common
// files use is implemented; anything else is an error that names the
// component, before any text is read. A WordPiece file with BERT's
// normalizer and pre-tokenizer, and a byte-level BPE file with GPT-2's,
// Llama-3's, cl100k's, o200k's or Qwen2's pattern (or any other regex) take
// the fast encoders; every other file runs the general pipeline
// (pipeline.go). Both are exact.

// tjErr is a tokenizer.json error at a field.
type tjErr struct {
	field, msg string
}

func (e *tjErr) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func fieldErr(field, format string, a ...any) error {
	return &tjErr{field: field, msg: fmt.Sprintf(format, a...)}
}

func unsupported(field, typ string) error {
	return &tjErr{msg: fmt.Sprintf("%s.type %q is not supported", field, typ)}
}

// jobj is a decoded JSON object with its field path.
type jobj struct {
	field string
	m     map[string]json.RawMessage
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func parseObj(field string, raw json.RawMessage) (jobj, error) {
	o := jobj{field: field}
	if err := json.Unmarshal(raw, &o.m); err != nil || o.m == nil {
		return o, fieldErr(field, "want a JSON object")
	}
	return o, nil
}

func (o jobj) sub(key string) string { return o.field + "." + key }

// keys fails on a key that is not one of known: an option glmkit does not
// know could change the ids.
func (o jobj) keys(known ...string) error {
	for k := range o.m {
		if k != "type" && !slices.Contains(known, k) {
			return fieldErr(o.sub(k), "unknown option (not supported)")
		}
	}
	return nil
}

func (o jobj) typ() (string, error) {
	raw, ok := o.m["type"]
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(o.sub("type"), "want a string")
	}
	return s, nil
}

// only is keys and required together: o has these options and no other,
// and every one of them, since Hugging Face has no default for any.
func (o jobj) only(known ...string) error {
	if err := o.keys(known...); err != nil {
		return err
	}
	return o.required(known...)
}

func (o jobj) has(key string) bool { raw, ok := o.m[key]; return ok && !isNull(raw) }

// required is an error naming the first of keys that o lacks or gives as
// null: options Hugging Face has no default for, so it refuses the file
// without them (glmkit would otherwise guess their value).
func (o jobj) required(keys ...string) error {
	for _, k := range keys {
		if raw, ok := o.m[k]; !ok || isNull(raw) {
			return fieldErr(o.sub(k), "missing or null (Hugging Face has no default for it and refuses the file)")
		}
	}
	return nil
}

// optional decodes o's key as a T: def when the key is absent, an error
// saying what was wanted when it is null or not a T. Hugging Face refuses a
// null for every option but those it declares optional (see nullable), even
// one it has a default for, so glmkit does not read null as the default.
func optional[T any](o jobj, key string, def T, want string) (T, error) {
	raw, ok := o.m[key]
	if !ok {
		return def, nil
	}
	var zero T
	if isNull(raw) {
		return zero, fieldErr(o.sub(key), "null: %s (Hugging Face refuses the file; leave the option out for its default)", want)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return zero, fieldErr(o.sub(key), "%s", want)
	}
	return v, nil
}

// nullable is o without those of keys that are null: the options Hugging
// Face declares optional, for which null means its default.
func (o jobj) nullable(keys ...string) jobj {
	m := make(map[string]json.RawMessage, len(o.m))
	for k, v := range o.m {
		if !slices.Contains(keys, k) || !isNull(v) {
			m[k] = v
		}
	}
	return jobj{field: o.field, m: m}
}

func (o jobj) str(key, def string) (string, error) { return optional(o, key, def, "want a string") }

func (o jobj) boolean(key string, def bool) (bool, error) {
	return optional(o, key, def, "want true or false")
}

// flags checks that those of keys o has are true or false, for options
// that do not change glmkit's ids (offsets, the post-processor's).
func (o jobj) flags(keys ...string) error {
	for _, k := range keys {
		if _, err := o.boolean(k, false); err != nil {
			return err
		}
	}
	return nil
}

func (o jobj) integer(key string, def int) (int, error) {
	f, err := optional(o, key, float64(def), "want an integer")
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, fieldErr(o.sub(key), "want an integer")
	}
	return int(f), nil
}

// opts reads options of o one after another: the first error sticks and
// every read after it gives its default, so a component reads all its
// options and checks err once.
type opts struct {
	o   jobj
	err error
}

func (o jobj) opts() *opts { return &opts{o: o} }

func (r *opts) str(key, def string) string        { return readOpt(r, r.o.str, key, def) }
func (r *opts) boolean(key string, def bool) bool { return readOpt(r, r.o.boolean, key, def) }
func (r *opts) integer(key string, def int) int   { return readOpt(r, r.o.integer, key, def) }

func readOpt[T any](r *opts, read func(string, T) (T, error), key string, def T) T {
	if r.err != nil {
		return def
	}
	v, err := read(key, def)
	r.err = err
	return v
}

func (o jobj) list(key string) ([]json.RawMessage, error) {
	return optional[[]json.RawMessage](o, key, nil, "want a list")
}

// component reads a tokenizer.json component (a normalizer, pre-tokenizer,
// decoder, …): its object and type, or ok false when it is null.
func component(field string, raw json.RawMessage) (o jobj, typ string, ok bool, err error) {
	if isNull(raw) {
		return jobj{}, "", false, nil
	}
	if o, err = parseObj(field, raw); err != nil {
		return o, "", false, err
	}
	typ, err = o.typ()
	return o, typ, err == nil, err
}

// pattern reads Split's and Replace's {"String": s} or {"Regex": r}.
func (o jobj) pattern(key string) (*regex, string, error) {
	raw, ok := o.m[key]
	if !ok {
		return nil, "", fieldErr(o.sub(key), "missing")
	}
	var p map[string]*string
	if err := json.Unmarshal(raw, &p); err != nil || len(p) != 1 {
		return nil, "", fieldErr(o.sub(key), `want {"String": ...} or {"Regex": ...}`)
	}
	for k, s := range p {
		if s == nil {
			return nil, "", fieldErr(o.sub(key)+"."+k, "null: want a string (Hugging Face refuses the file)")
		}
	}
	if s, ok := p["String"]; ok {
		return literalRegex(*s), "", nil
	}
	if s, ok := p["Regex"]; ok {
		re, err := compileRegex(*s)
		if err != nil {
			return nil, "", fieldErr(o.sub(key)+".Regex", "%v", err)
		}
		return re, *s, nil
	}
	return nil, "", fieldErr(o.sub(key), `want {"String": ...} or {"Regex": ...}`)
}

// tjBuilder turns the parts of a tokenizer.json into encoders.
type tjBuilder struct {
	tab       *charTables
	charsmaps int // Precompiled normalizers seen
}

// normalizers reads normalizer (null, one, or a Sequence, flattened).
func (b *tjBuilder) normalizers(field string, raw json.RawMessage, out []normalizer) ([]normalizer, error) {
	return components(field, raw, "normalizers", out, b.normalizerOf)
}

// normalizerOf makes the normalizer of type t; nil for one that does nothing.
func (b *tjBuilder) normalizerOf(o jobj, t string) (normalizer, error) {
	switch t {
	case "BertNormalizer":
		return bertNormOf(o)
	case "Lowercase":
		return lowercaseNorm{}, o.keys()
	case "StripAccents":
		return stripAccentsNorm{}, o.keys()
	case "NFC", "NFD", "NFKC", "NFKD":
		form := map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}[t]
		return unicodeNorm{form}, o.keys()
	case "Strip":
		return stripNormOf(o)
	case "Replace":
		return replaceNormOf(o)
	case "Prepend":
		return prependNormOf(o)
	case "Precompiled":
		return b.precompiledNormOf(o)
	case "ByteLevel":
		return byteLevelNorm{}, o.keys()
	case "Nmt":
		return nmtNorm{}, o.keys()
	}
	return nil, unsupported(o.field, t)
}

// components reads a component of one kind under field (null, one, or a
// Sequence listing more under seqKey, flattened) into out; one makes a
// component of a given type, nil for one that does nothing.
func components[T any](field string, raw json.RawMessage, seqKey string, out []T, one func(o jobj, typ string) (T, error)) ([]T, error) {
	o, t, ok, err := component(field, raw)
	if err != nil {
		return nil, err
	} else if !ok {
		return out, nil
	}
	switch t {
	case "Sequence":
		return sequenceOf(o, seqKey, out, func(field string, raw json.RawMessage, out []T) ([]T, error) {
			return components(field, raw, seqKey, out, one)
		})
	case "":
		return nil, fieldErr(field, "has no type")
	}
	c, err := one(o, t)
	if err != nil {
		return nil, err
	}
	if any(c) != nil {
		out = append(out, c)
	}
	return out, nil
}

// sequenceOf reads the components listed under key, the one option of a
// Sequence, each through read, into out.
func sequenceOf[T any](o jobj, key string, out []T, read func(field string, raw json.RawMessage, out []T) ([]T, error)) ([]T, error) {
	if err := o.only(key); err != nil {
		return nil, err
	}
	l, err := o.list(key)
	if err != nil {
		return nil, err
	}
	for i, r := range l {
		if out, err = read(fmt.Sprintf("%s.%s[%d]", o.field, key, i), r, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func bertNormOf(o jobj) (normalizer, error) {
	if err := o.keys("clean_text", "handle_chinese_chars", "strip_accents", "lowercase"); err != nil {
		return nil, err
	}
	if err := o.required("clean_text", "handle_chinese_chars", "lowercase"); err != nil {
		return nil, err
	}
	r := o.nullable("strip_accents").opts()
	b := bertOptions{cleanText: r.boolean("clean_text", true), chineseChars: r.boolean("handle_chinese_chars", true),
		lowercase: r.boolean("lowercase", true)}
	b.stripAccents = r.boolean("strip_accents", b.lowercase) // absent or null: lowercase
	return bertNorm{b}, r.err
}

func stripNormOf(o jobj) (normalizer, error) {
	if err := o.only("strip_left", "strip_right"); err != nil {
		return nil, err
	}
	r := o.opts()
	return stripNorm{left: r.boolean("strip_left", true), right: r.boolean("strip_right", true)}, r.err
}

func replaceNormOf(o jobj) (normalizer, error) {
	if err := o.only("pattern", "content"); err != nil {
		return nil, err
	}
	re, _, err := o.pattern("pattern")
	if err != nil {
		return nil, err
	}
	content, err := o.str("content", "")
	if err != nil {
		return nil, err
	}
	return replaceNorm{re: re, content: content}, nil
}

func prependNormOf(o jobj) (normalizer, error) {
	if err := o.only("prepend"); err != nil {
		return nil, err
	}
	p, err := o.str("prepend", "")
	if err != nil {
		return nil, err
	}
	return prependNorm{p}, nil
}

// precompiledNormOf reads Precompiled, whose charsmap Hugging Face requires
// (it cannot parse an empty one).
func (b *tjBuilder) precompiledNormOf(o jobj) (normalizer, error) {
	if err := o.only("precompiled_charsmap"); err != nil {
		return nil, err
	}
	s, err := o.str("precompiled_charsmap", "")
	if err != nil {
		return nil, err
	}
	if s == "" {
		return nil, fieldErr(o.sub("precompiled_charsmap"), "empty (Hugging Face cannot parse it and refuses the file)")
	}
	blob, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fieldErr(o.sub("precompiled_charsmap"), "not base64: %v", err)
	}
	cm, err := newCharsmap(blob)
	if err != nil {
		return nil, fieldErr(o.sub("precompiled_charsmap"), "%v", err)
	}
	b.charsmaps++
	return precompiledNorm{cm}, nil
}

// precompiledNorm is Precompiled: SentencePiece's charsmap with Hugging
// Face's grapheme rule (charsmap.go). HF keeps the segment's start offset
// even when the first characters map to nothing.
type precompiledNorm struct{ cm *charsmap }

func (n precompiledNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	return n.cm.normalizeHF(dst, src), true, nil
}

// preTokenizers reads pre_tokenizer (null, one, or a Sequence, flattened).
func (b *tjBuilder) preTokenizers(field string, raw json.RawMessage, out []preTokenizer) ([]preTokenizer, error) {
	return components(field, raw, "pretokenizers", out, b.preTokenizerOf)
}

// preTokenizerOf makes the pre-tokenizer of type t.
func (b *tjBuilder) preTokenizerOf(o jobj, t string) (preTokenizer, error) {
	switch t {
	case "ByteLevel":
		return b.byteLevelPreOf(o)
	case "Split":
		return splitPreOf(o)
	case "Metaspace":
		return metaspacePreOf(o)
	case "Whitespace":
		return whitespacePre{}, o.keys()
	case "WhitespaceSplit":
		return &classPre{in: isRustSpace, behavior: behRemoved}, o.keys()
	case "BertPreTokenizer":
		return bertPre{}, o.keys()
	case "Punctuation":
		return punctuationPreOf(o)
	case "Digits":
		return digitsPreOf(o)
	case "FixedLength":
		return fixedLengthPreOf(o)
	case "CharDelimiterSplit":
		return charDelimiterPreOf(o)
	}
	return nil, unsupported(o.field, t)
}

// behavior reads a split delimiter behaviour (def when the key is absent).
func (o jobj) behavior(key, def string) (int, error) {
	s, err := o.str(key, def)
	if err != nil {
		return 0, err
	}
	beh, ok := behaviorNames[s]
	if !ok {
		return 0, fieldErr(o.sub(key), "%q is not Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", s)
	}
	return beh, nil
}

func (b *tjBuilder) byteLevelPreOf(o jobj) (preTokenizer, error) {
	if err := o.keys("add_prefix_space", "trim_offsets", "use_regex"); err != nil {
		return nil, err
	}
	p := &byteLevelPre{gpt2: &bytePair{tab: b.tab, scan: scanGPT2}}
	for _, k := range []string{"add_prefix_space", "trim_offsets"} {
		if !o.has(k) {
			return nil, fieldErr(o.sub(k), "missing (Hugging Face requires it)")
		}
	}
	r := o.opts()
	p.prefixSpace, p.useRegex = r.boolean("add_prefix_space", true), r.boolean("use_regex", true)
	r.boolean("trim_offsets", true) // offsets only
	return p, r.err
}

func splitPreOf(o jobj) (preTokenizer, error) {
	if err := o.only("pattern", "behavior", "invert"); err != nil {
		return nil, err
	}
	p := &splitPre{}
	var src string
	var err error
	if p.re, src, err = o.pattern("pattern"); err != nil {
		return nil, err
	}
	if src != "" {
		p.scan = scannerFor(src)
		if p.scan == scanGPT2 {
			p.scan = scanRegex // the regex engine serves the general path
		}
	}
	if p.behavior, err = o.behavior("behavior", ""); err != nil {
		return nil, err
	}
	if p.invert, err = o.boolean("invert", false); err != nil {
		return nil, err
	}
	return p, nil
}

func metaspacePreOf(o jobj) (preTokenizer, error) {
	if err := o.keys("replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"); err != nil {
		return nil, err
	}
	o = o.nullable("split")
	if err := o.required("replacement"); err != nil {
		return nil, err
	}
	p := &metaspacePre{}
	var err error
	if p.repl, err = o.str("replacement", "\u2581"); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(p.repl) != 1 {
		return nil, fieldErr(o.sub("replacement"), "want one character")
	}
	scheme, err := o.str("prepend_scheme", "always")
	if err != nil {
		return nil, err
	}
	switch scheme {
	case "always":
		p.scheme = prependAlways
	case "first":
		p.scheme = prependFirst
	case "never":
		p.scheme = prependNever
	default:
		return nil, fieldErr(o.sub("prepend_scheme"), "%q is not always, first or never", scheme)
	}
	// add_prefix_space (older files): false needs prepend_scheme
	// "never", as HF requires (it refuses the file otherwise); true
	// leaves prepend_scheme in charge.
	if aps, err := o.boolean("add_prefix_space", true); err != nil {
		return nil, err
	} else if !aps && p.scheme != prependNever {
		return nil, fieldErr(o.sub("add_prefix_space"), "false does not match prepend_scheme %q (Hugging Face refuses this file too)", scheme)
	}
	if p.split, err = o.boolean("split", true); err != nil {
		return nil, err
	}
	return p, nil
}

func punctuationPreOf(o jobj) (preTokenizer, error) {
	if err := o.keys("behavior"); err != nil {
		return nil, err
	}
	beh, err := o.behavior("behavior", "Isolated")
	if err != nil {
		return nil, err
	}
	return &classPre{in: isHFPunct, behavior: beh}, nil
}

func digitsPreOf(o jobj) (preTokenizer, error) {
	if err := o.only("individual_digits"); err != nil {
		return nil, err
	}
	ind, err := o.boolean("individual_digits", false)
	if err != nil {
		return nil, err
	}
	beh := behContiguous
	if ind {
		beh = behIsolated
	}
	return &classPre{in: isRustNumeric, behavior: beh}, nil
}

// fixedLengthPreOf reads FixedLength: pieces of length characters (5 when
// absent, as in HF; 0 is refused, HF panics on it).
func fixedLengthPreOf(o jobj) (preTokenizer, error) {
	if err := o.keys("length"); err != nil {
		return nil, err
	}
	n, err := o.integer("length", 5)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fieldErr(o.sub("length"), "%d: want a length ≥ 1", n)
	}
	return fixedLengthPre{n: n}, nil
}

func charDelimiterPreOf(o jobj) (preTokenizer, error) {
	if err := o.keys("delimiter"); err != nil {
		return nil, err
	}
	d, err := o.str("delimiter", "")
	if err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(d) != 1 {
		return nil, fieldErr(o.sub("delimiter"), "want one character")
	}
	r, _ := utf8.DecodeRuneInString(d)
	return &classPre{in: func(c rune, _ uint16) bool { return c == r }, behavior: behRemoved}, nil
}

// tjAdded is one entry of added_tokens.
type tjAdded struct {
	id                              int32
	content                         string
	special, single, lstrip, rstrip bool
	normalized                      bool
}

func parseAdded(raw json.RawMessage) ([]tjAdded, error) {
	if raw == nil {
		return nil, nil // absent: none
	}
	var l []json.RawMessage
	if err := json.Unmarshal(raw, &l); err != nil || l == nil {
		return nil, fieldErr("added_tokens", "want a list")
	}
	out := make([]tjAdded, 0, len(l))
	for i, r := range l {
		o, err := parseObj(fmt.Sprintf("added_tokens[%d]", i), r)
		if err != nil {
			return nil, err
		}
		if err := o.only("id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"); err != nil {
			return nil, err
		}
		var a tjAdded
		id, err := o.integer("id", -1)
		if err != nil {
			return nil, err
		}
		if id < 0 {
			return nil, fieldErr(o.sub("id"), "want an id ≥ 0")
		}
		a.id = int32(id)
		if a.content, err = o.str("content", ""); err != nil {
			return nil, err
		}
		for _, f := range []struct {
			key string
			dst *bool
			def bool
		}{{"special", &a.special, false}, {"single_word", &a.single, false}, {"lstrip", &a.lstrip, false}, {"rstrip", &a.rstrip, false}} {
			if *f.dst, err = o.boolean(f.key, f.def); err != nil {
				return nil, err
			}
		}
		if a.normalized, err = o.boolean("normalized", !a.special); err != nil {
			return nil, err
		}
		if a.content == "" {
			continue // HF ignores empty added tokens
		}
		out = append(out, a)
	}
	return out, nil
}

// tjModel is a parsed model section.
type tjModel struct {
	kind   string // BPE, WordPiece, WordLevel, Unigram
	vocab  map[string]int32
	pieces []vocabPiece // Unigram
	n      int          // ids 0..n-1 defined by the model

	merges                [][2]string
	unk                   string // "" none
	hasUnk                bool
	prefix, suffix        string
	byteFallback, fuseUnk bool
	ignoreMerges          bool
	maxChars              int
	unkID                 int // Unigram, -1 none
}

// parseModel reads the model section (its vocabulary and merges already
// decoded by splitTokenizerJSON): BPE, WordPiece, WordLevel or Unigram, by
// its type, or by its fields when it has none.
func parseModel(mp *fastModelParts) (*tjModel, error) {
	if mp == nil {
		return nil, fieldErr("model", "missing, or not an object")
	}
	o := jobj{field: "model", m: mp.fields}
	var err error
	m := &tjModel{}
	if m.kind, err = o.typ(); err != nil {
		return nil, err
	}
	if m.kind == "" {
		// Older serializations leave the model untagged.
		switch {
		case o.has("continuing_subword_prefix") && o.has("max_input_chars_per_word"):
			m.kind = "WordPiece"
		case o.has("merges"):
			m.kind = "BPE"
		case mp.listKind:
			m.kind = "Unigram"
		default:
			return nil, fieldErr("model", "has no type, and is not recognisably BPE, WordPiece or Unigram")
		}
	}
	switch m.kind {
	case "BPE":
		err = m.parseBPE(o, mp)
	case "WordPiece":
		err = m.parseWordPiece(o, mp)
	case "WordLevel":
		err = m.parseWordLevel(o, mp)
	case "Unigram":
		err = m.parseUnigram(o, mp)
	default:
		return nil, unsupported("model", m.kind)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// objVocab takes an object vocabulary (token → id): ids ≥ 0, each given
// once.
func (m *tjModel) objVocab(mp *fastModelParts) error {
	if mp.vocab == nil {
		return fieldErr("model.vocab", "want an object of token → id")
	}
	m.vocab = mp.vocab
	seen := make(map[int32]string, len(m.vocab))
	for s, id := range m.vocab {
		if id < 0 {
			return fieldErr("model.vocab", "negative id %d for %q", id, s)
		}
		if prev, dup := seen[id]; dup {
			return fieldErr("model.vocab", "id %d is given to both %q and %q", id, prev, s)
		}
		seen[id] = s
		m.n = max(m.n, int(id)+1)
	}
	return nil
}

// parseBPE reads BPE's options; dropout must be null or 0 (random merges
// would give other ids).
func (m *tjModel) parseBPE(o jobj, mp *fastModelParts) error {
	if err := o.keys("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
		"byte_fallback", "ignore_merges", "vocab", "merges"); err != nil {
		return err
	}
	o = o.nullable("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges")
	if !o.has("merges") {
		return fieldErr(o.sub("merges"), "missing or null (Hugging Face refuses the file)")
	}
	if raw, ok := o.m["dropout"]; ok {
		var d float64
		if err := json.Unmarshal(raw, &d); err != nil || d != 0 {
			return fieldErr("model.dropout", "BPE dropout %s is random: want null or 0", bytes.TrimSpace(raw))
		}
	}
	if err := m.objVocab(mp); err != nil {
		return err
	}
	m.merges = mp.merges
	m.hasUnk = o.has("unk_token")
	r := o.opts()
	m.unk, m.prefix, m.suffix = r.str("unk_token", ""), r.str("continuing_subword_prefix", ""), r.str("end_of_word_suffix", "")
	m.fuseUnk, m.byteFallback = r.boolean("fuse_unk", false), r.boolean("byte_fallback", false)
	m.ignoreMerges = r.boolean("ignore_merges", false)
	return r.err
}

// parseWordPiece reads WordPiece's options, every one of which Hugging
// Face requires.
func (m *tjModel) parseWordPiece(o jobj, mp *fastModelParts) error {
	if err := o.keys("unk_token", "continuing_subword_prefix", "max_input_chars_per_word", "vocab"); err != nil {
		return err
	}
	if err := o.required("continuing_subword_prefix", "max_input_chars_per_word"); err != nil {
		return err
	}
	if err := m.vocabAndUnk(o, mp); err != nil {
		return err
	}
	r := o.opts()
	if m.prefix, m.maxChars = r.str("continuing_subword_prefix", "##"), r.integer("max_input_chars_per_word", 100); r.err != nil {
		return r.err
	}
	if m.maxChars < 0 {
		return fieldErr(o.sub("max_input_chars_per_word"), "%d: want a count ≥ 0 (Hugging Face refuses the file)", m.maxChars)
	}
	return nil
}

// parseWordLevel reads WordLevel's options (its vocab and unk_token, both
// required).
func (m *tjModel) parseWordLevel(o jobj, mp *fastModelParts) error {
	if err := o.keys("unk_token", "vocab"); err != nil {
		return err
	}
	return m.vocabAndUnk(o, mp)
}

// vocabAndUnk reads the object vocab and the unk_token of WordPiece and
// WordLevel, which Hugging Face requires, null refused (glmkit once guessed
// [UNK]).
func (m *tjModel) vocabAndUnk(o jobj, mp *fastModelParts) error {
	if err := m.objVocab(mp); err != nil {
		return err
	}
	if err := o.required("unk_token"); err != nil {
		return err
	}
	m.hasUnk = true
	var err error
	m.unk, err = o.str("unk_token", "")
	return err
}

// parseUnigram reads Unigram's list of [piece, score] and options.
func (m *tjModel) parseUnigram(o jobj, mp *fastModelParts) error {
	if err := o.keys("unk_id", "vocab", "byte_fallback"); err != nil {
		return err
	}
	o = o.nullable("unk_id")
	if !mp.listKind {
		return fieldErr("model.vocab", "want a list of [piece, score]")
	}
	m.vocab = make(map[string]int32, len(mp.pieces))
	for i, p := range mp.pieces {
		if math.IsNaN(p.score) || math.IsInf(p.score, 0) {
			return fieldErr(fmt.Sprintf("model.vocab[%d]", i), "want [piece, score]")
		}
		m.vocab[p.piece] = int32(i) // the last id of a string wins, as in HF
	}
	m.pieces = mp.pieces
	m.n = len(mp.pieces)
	r := o.opts()
	if m.unkID = r.integer("unk_id", -1); r.err == nil && m.unkID >= m.n {
		return fieldErr("model.unk_id", "%d is not a piece (the vocabulary has %d)", m.unkID, m.n)
	}
	m.byteFallback = r.boolean("byte_fallback", false)
	return r.err
}

// buildMerges maps each merge to (rank, merged id), as HF's BPE builder: the
// merged token is left + right without the continuing_subword_prefix; a
// later duplicate replaces an earlier one.
func buildMerges(vocab map[string]int32, merges [][2]string, prefix string) (*pairTable, error) {
	out := newPairTable(len(merges))
	var buf []byte
	for rank, mg := range merges {
		a, okA := vocab[mg[0]]
		b, okB := vocab[mg[1]]
		if !okA || !okB {
			return nil, fieldErr(fmt.Sprintf("model.merges[%d]", rank), "%q %q: a token that is not in the vocabulary", mg[0], mg[1])
		}
		right := mg[1]
		if len(prefix) > 0 {
			if len(right) < len(prefix) || !utf8.ValidString(right[len(prefix):]) {
				return nil, fieldErr(fmt.Sprintf("model.merges[%d]", rank), "%q does not start with the continuing_subword_prefix", right)
			}
			right = right[len(prefix):]
		}
		buf = append(append(buf[:0], mg[0]...), right...)
		c, okC := vocab[string(buf)]
		if !okC {
			return nil, fieldErr(fmt.Sprintf("model.merges[%d]", rank), "%q %q: the merged token %q is not in the vocabulary", mg[0], mg[1], mg[0]+right)
		}
		out.set(pairKey(a, b), uint64(rank)<<32|uint64(uint32(c)))
	}
	return out, nil
}

// fromTokenizerJSON reads a Hugging Face tokenizer.json.
func fromTokenizerJSON(path string, data []byte) (*Tokenizer, error) {
	t, err := buildTokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

func buildTokenizerJSON(data []byte) (*Tokenizer, error) { return buildTokenizerJSONWith(data, false) }

// buildTokenizerJSONWith is buildTokenizerJSON; general forces the general
// pipeline (tests compare it with the fast paths).
//
// A token of the model's vocabulary that the text itself encodes to (an
// InternLM2 document that starts with "<s>" gets id 1, in Hugging Face as
// here) is not made one of GLM's command tokens, which no text may produce:
// it stays text, and the command token is the next of its names or a new
// id. Each such token found rebuilds the tokenizer without it.
func buildTokenizerJSONWith(data []byte, general bool) (*Tokenizer, error) {
	textIDs := map[int32]bool{}
	for {
		t, err := buildTokenizerJSONFrom(data, general, textIDs)
		if err != nil {
			return nil, err
		}
		found := t.commandTokensFromText()
		if len(found) == 0 {
			return t, nil
		}
		for _, id := range found {
			if textIDs[id] {
				return nil, fmt.Errorf("model: GLM's command token %q (id %d) is produced by text even after it was set aside", t.tokens[id], id)
			}
			textIDs[id] = true
		}
	}
}

// buildTokenizerJSONFrom builds the tokenizer, none of GLM's command tokens
// taken from textIDs.
func buildTokenizerJSONFrom(data []byte, general bool, textIDs map[int32]bool) (*Tokenizer, error) {
	sections, mp, err := splitTokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	b := &tjBuilder{tab: tables()}
	p, err := b.parseParts(sections, mp)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{sha: sha256Hex(data), dec: p.dec}
	if err := t.initTJTokens(p.md, p.added, textIDs); err != nil {
		return nil, err
	}
	av, err := b.addedInText(p.added, t.glmIDs(), p.norms)
	if err != nil {
		return nil, err
	}
	g := &genPipeline{added: av, norms: p.norms, pres: p.pres}
	switch p.md.kind {
	case "BPE":
		err = b.buildBPE(t, g, p, general)
	case "WordPiece":
		err = buildWordPiece(t, g, p, general)
	case "WordLevel":
		unk, ok := p.md.vocab[p.md.unk]
		if !ok {
			return nil, fieldErr("model.unk_token", "%q is not in the vocabulary", p.md.unk)
		}
		g.model = &wordLevelModel{vocab: p.md.vocab, unk: unk}
		t.kind = KindWordLevel
	case "Unigram":
		u, err := newUnigram(p.md.pieces, unigramOptions{hf: true, unkID: int32(p.md.unkID), byteFallback: p.md.byteFallback, fuseUnk: true})
		if err != nil {
			return nil, fieldErr("model", "%v", err)
		}
		g.model = &unigramModel{u: u}
		t.kind = KindUnigram
	}
	if err != nil {
		return nil, err
	}
	if t.wp == nil && t.bpe == nil {
		t.gen = g
	}
	if t.dec.decoder == nil {
		t.dec = defaultDecoder(t.kind, p.md)
	}
	t.byteDec = byteLevelDecoder(b.tab)
	decode := func(id int) []byte { return []byte(t.dec.decode([]string{t.tokens[id]}, t)) }
	t.computeSentenceEnds(decode, t.rawTokenBytes(decode))
	return t, nil
}

// tjParts are the parsed sections of a tokenizer.json.
type tjParts struct {
	md    *tjModel
	added []tjAdded
	norms []normalizer
	pres  []preTokenizer
	dec   decoderOf
}

// checkVersion refuses a tokenizer.json of a version other than 1.0, the
// one Hugging Face reads ("Unknown tokenizer version"); none is 1.0.
func checkVersion(raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil || v != "1.0" {
		return fieldErr("version", "%s; Hugging Face reads tokenizer.json version \"1.0\" only", raw)
	}
	return nil
}

// checkPostProcessor checks that the post-processor is one Hugging Face
// has, with the options it has no default for. glmkit does not apply it
// (GLM adds its own [CLS], eos and blanks), but a file Hugging Face refuses
// is refused here too. Types are checked before options, so an unknown
// type is the error wherever it is in a Sequence.
func checkPostProcessor(field string, raw json.RawMessage) error {
	if err := walkPostProcessor(field, raw, false); err != nil {
		return err
	}
	return walkPostProcessor(field, raw, true)
}

// walkPostProcessor checks the post-processor's types, or (options) the
// options each type requires.
func walkPostProcessor(field string, raw json.RawMessage, options bool) error {
	o, t, ok, err := component(field, raw)
	if err != nil || !ok {
		return err
	}
	var need []string
	switch t {
	case "TemplateProcessing":
		need = []string{"single", "pair", "special_tokens"}
	case "BertProcessing", "RobertaProcessing":
		need = []string{"sep", "cls"}
	case "ByteLevel":
		need = []string{"add_prefix_space", "trim_offsets"}
	case "Sequence":
		if err := o.required("processors"); err != nil {
			return err
		}
		l, err := o.list("processors")
		if err != nil {
			return err
		}
		for i, r := range l {
			if err := walkPostProcessor(fmt.Sprintf("%s.processors[%d]", field, i), r, options); err != nil {
				return err
			}
		}
		return nil
	default:
		return fieldErr(field+".type", "%q is not a Hugging Face post-processor (Hugging Face refuses the file)", t)
	}
	if !options {
		return nil
	}
	if err := o.required(need...); err != nil {
		return err
	}
	return checkPostOptions(o, t)
}

// checkPostOptions checks the types of a post-processor's options as
// Hugging Face does when it loads the file. glmkit does not apply a
// post-processor (GLM's samples have their own layout), but a file HF
// refuses is refused.
func checkPostOptions(o jobj, t string) error {
	refused := "want %s (Hugging Face refuses the file)"
	switch t {
	case "BertProcessing", "RobertaProcessing":
		for _, k := range []string{"sep", "cls"} {
			if !tokenIDPair(o.m[k]) {
				return fieldErr(o.sub(k), refused, "[token, id]")
			}
		}
		if t == "RobertaProcessing" {
			return o.nullable("trim_offsets", "add_prefix_space").flags("trim_offsets", "add_prefix_space")
		}
	case "ByteLevel":
		return o.flags("add_prefix_space", "trim_offsets", "use_regex")
	case "TemplateProcessing":
		for _, k := range []string{"single", "pair"} {
			if err := templatePieces(o.sub(k), o.m[k]); err != nil {
				return err
			}
		}
		return templateSpecials(o.sub("special_tokens"), o.m["special_tokens"])
	}
	return nil
}

// templatePieces checks a TemplateProcessing template: a list of
// {"Sequence": {"id": "A" or "B", "type_id": n}} and
// {"SpecialToken": {"id": token, "type_id": n}}.
func templatePieces(field string, raw json.RawMessage) error {
	var l []map[string]*struct {
		ID     *string `json:"id"`
		TypeID *uint32 `json:"type_id"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return fieldErr(field, "want a list of {\"Sequence\": ...} or {\"SpecialToken\": ...} (Hugging Face refuses the file)")
	}
	for i, m := range l {
		f := fmt.Sprintf("%s[%d]", field, i)
		if len(m) != 1 {
			return fieldErr(f, "want one of Sequence or SpecialToken (Hugging Face refuses the file)")
		}
		for kind, p := range m {
			switch {
			case kind != "Sequence" && kind != "SpecialToken":
				return fieldErr(f, "%q is not Sequence or SpecialToken (Hugging Face refuses the file)", kind)
			case p == nil || p.ID == nil || p.TypeID == nil:
				return fieldErr(f+"."+kind, "want an id and a type_id ≥ 0 (Hugging Face refuses the file)")
			case kind == "Sequence" && *p.ID != "A" && *p.ID != "B":
				return fieldErr(f+".Sequence.id", "%q is not A or B (Hugging Face refuses the file)", *p.ID)
			}
		}
	}
	return nil
}

// templateSpecials checks TemplateProcessing's special_tokens: an object
// of {"id": token, "ids": [id, ...], "tokens": [token, ...]}.
func templateSpecials(field string, raw json.RawMessage) error {
	var m map[string]*struct {
		ID     *string    `json:"id"`
		IDs    *[]*uint32 `json:"ids"`
		Tokens *[]*string `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fieldErr(field, "want an object of special tokens (Hugging Face refuses the file)")
	}
	for name, st := range m {
		ok := st != nil && st.ID != nil && st.IDs != nil && st.Tokens != nil
		for i := 0; ok && i < len(*st.IDs); i++ {
			ok = (*st.IDs)[i] != nil
		}
		for i := 0; ok && i < len(*st.Tokens); i++ {
			ok = (*st.Tokens)[i] != nil
		}
		if !ok {
			return fieldErr(field+"."+name, "want an id, ids ≥ 0 and tokens (Hugging Face refuses the file)")
		}
	}
	return nil
}

// tokenIDPair reports whether raw is a [token, id] pair: a list of a string
// and a non-negative integer.
func tokenIDPair(raw json.RawMessage) bool {
	var l []json.RawMessage
	var tok string
	var id uint32
	return json.Unmarshal(raw, &l) == nil && len(l) == 2 && json.Unmarshal(l[0], &tok) == nil && json.Unmarshal(l[1], &id) == nil
}

// parseParts parses the sections of a tokenizer.json.
func (b *tjBuilder) parseParts(sections map[string]json.RawMessage, mp *fastModelParts) (*tjParts, error) {
	for k := range sections {
		switch k {
		case "version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model":
		default:
			return nil, fieldErr(k, "unknown section (not supported)")
		}
	}
	if err := checkVersion(sections["version"]); err != nil {
		return nil, err
	}
	if err := checkPostProcessor("post_processor", sections["post_processor"]); err != nil {
		return nil, err
	}
	p := &tjParts{}
	var err error
	if p.md, err = parseModel(mp); err != nil {
		return nil, err
	}
	if p.added, err = parseAdded(sections["added_tokens"]); err != nil {
		return nil, err
	}
	if p.norms, err = b.normalizers("normalizer", sections["normalizer"], nil); err != nil {
		return nil, err
	}
	if p.pres, err = b.preTokenizers("pre_tokenizer", sections["pre_tokenizer"], nil); err != nil {
		return nil, err
	}
	if p.dec, err = parseDecoder("decoder", sections["decoder"]); err != nil {
		return nil, err
	}
	if err := checkMetaspaceFirst(p.norms, p.pres); err != nil {
		return nil, err
	}
	if err := checkEmptyPrepend(p.norms); err != nil {
		return nil, err
	}
	markEmptyReplace(p.norms, p.pres)
	return p, nil
}

// checkMetaspaceFirst refuses Metaspace with prepend_scheme "first" after
// another pre-tokenizer where glmkit cannot tell which pieces Hugging Face
// prepends to. HF prepends to every piece whose original offset is 0, and
// that is more than the first piece when the text at the start was
// inserted or expanded before the split: by a normalizer (Prepend,
// BertNormalizer's spaces around CJK, a decomposition, a multi-character
// Replace, ...), by ByteLevel (add_prefix_space, and a character's bytes),
// or by a Metaspace that prepends. glmkit tracks only "starts the
// segment", which is exact when the earlier pre-tokenizers only split the
// original text and there is no normalizer.
//
// Where it is the first pre-tokenizer, "first" is the segment's: at offset
// 0, and its first normalized character still aligned with the original
// first one. glmkit follows the normalizers that drop leading characters,
// but not text one inserted at the start (Prepend, BertNormalizer's space
// before a CJK character) and a later one dropped: HF still prepends then,
// so that combination is refused.
func checkMetaspaceFirst(norms []normalizer, pres []preTokenizer) error {
	for i, pt := range pres {
		if ms, ok := pt.(*metaspacePre); !ok || ms.scheme != prependFirst {
			continue
		}
		if i == 0 {
			if insertThenDrop(norms) {
				return fieldErr("normalizer", "a normalizer that may drop leading text after one that inserts it (Prepend, BertNormalizer's CJK spaces), with Metaspace's prepend_scheme \"first\", is not supported")
			}
			continue
		}
		if len(norms) > 0 {
			return fieldErr("pre_tokenizer", "Metaspace with prepend_scheme \"first\" after another pre-tokenizer, with a normalizer, is not supported (which pieces Hugging Face prepends to depends on the normalizer's alignments)")
		}
		for _, prev := range pres[:i] {
			_, bl := prev.(*byteLevelPre)
			ms, _ := prev.(*metaspacePre)
			if bl || (ms != nil && ms.scheme != prependNever) {
				return fieldErr("pre_tokenizer", "Metaspace with prepend_scheme \"first\" after ByteLevel or a prepending Metaspace is not supported (which pieces Hugging Face prepends to depends on the inserted characters' alignments)")
			}
		}
	}
	return nil
}

// checkEmptyPrepend refuses Prepend "": Hugging Face's empty prepend
// leaves the alignments broken, and what it encodes then depends on the
// later steps: with ByteLevel after it "a" is not "a" (the unknown id),
// with Lowercase, a Unicode form or StripAccents after it HF panics on
// every non-empty text.
func checkEmptyPrepend(norms []normalizer) error {
	for _, n := range norms {
		if p, ok := n.(prependNorm); ok && p.s == "" {
			return fieldErr("normalizer", "Prepend \"\" is not supported: Hugging Face's empty prepend breaks its alignments (it then encodes \"a\" as unknown after ByteLevel, and panics after Lowercase or NFC)")
		}
	}
	return nil
}

// markEmptyReplace makes an empty match of a Replace an encoding error
// where Hugging Face panics on it: text inserted at an empty match leaves
// HF's alignments broken, and a later Lowercase, Unicode form, ByteLevel
// (normalizer or pre-tokenizer) and the like panic on them (checked:
// Lowercase, NFC, ByteLevel; Strip, Replace, WhitespaceSplit, Split and
// Metaspace after it work).
func markEmptyReplace(norms []normalizer, pres []preTokenizer) {
	transforms := false
	for _, pt := range pres {
		if _, ok := pt.(*byteLevelPre); ok {
			transforms = true
		}
	}
	for i := len(norms) - 1; i >= 0; i-- {
		switch n := norms[i].(type) {
		case replaceNorm:
			n.noEmpty = transforms
			norms[i] = n
		case stripNorm:
		default:
			transforms = true
		}
	}
}

// insertThenDrop reports a normalizer that inserts text at the start
// (ByteLevel's extra characters of a multi-byte one count) followed by one
// that may drop leading characters.
func insertThenDrop(norms []normalizer) bool {
	inserted := false
	for _, n := range norms {
		switch n := n.(type) {
		case prependNorm, byteLevelNorm:
			inserted = true
		case bertNorm:
			if inserted && (n.opts.cleanText || n.opts.stripAccents) {
				return true
			}
			inserted = inserted || n.opts.chineseChars
		case stripNorm:
			if inserted && n.left {
				return true
			}
		case replaceNorm:
			if inserted && n.content == "" {
				return true
			}
		case stripAccentsNorm, precompiledNorm, nmtNorm:
			if inserted {
				return true
			}
		}
	}
	return false
}

// initTJTokens sets up the id space, the model's ids then the added
// tokens, and the special ids (none of textIDs).
func (t *Tokenizer) initTJTokens(md *tjModel, added []tjAdded, textIDs map[int32]bool) error {
	n := md.n
	for _, a := range added {
		n = max(n, int(a.id)+1)
	}
	if n > 1<<24 {
		return fieldErr("model.vocab", "%d ids: more than glmkit's limit of 16M", n)
	}
	tokens := make([]string, n)
	for s, id := range md.vocab {
		if md.kind == "Unigram" {
			continue
		}
		tokens[id] = s
	}
	for i, p := range md.pieces {
		tokens[i] = p.piece
	}
	t.isSpecial = make([]bool, n)
	addedByContent := make(map[string]tjAdded, len(added))
	if err := checkAddedIDs(md, added); err != nil {
		return err
	}
	for _, a := range added {
		if _, dup := addedByContent[a.content]; !dup {
			addedByContent[a.content] = a
		}
		tokens[a.id] = a.content
		if a.special {
			t.isSpecial[a.id] = true
		}
	}
	t.initTokens(tokens)
	t.assignSpecialsWith(func(s string) (int32, bool) {
		if a, ok := addedByContent[s]; ok {
			return a.id, !textIDs[a.id]
		}
		id, ok := md.vocab[s]
		return id, ok && !textIDs[id]
	}, func(s string) (int32, bool) {
		if a, ok := addedByContent[s]; ok && a.special {
			return a.id, true
		}
		return 0, false
	})
	return nil
}

// addedInText returns the added tokens matched in text (not special, not
// GLM's), or nil when there are none.
//
// A token listed more than once (the same string with other flags) is
// matched wherever any of its entries would be, with the flags of its last
// entry: Hugging Face keeps one token per id, the last one added, and reads
// single_word, lstrip and rstrip from it.
func (b *tjBuilder) addedInText(added []tjAdded, glm map[int32]bool, norms []normalizer) (*addedVocab, error) {
	var av *addedVocab
	entryOf := make(map[int32]int32)
	for _, a := range added {
		var pattern []byte
		if a.normalized {
			var err error
			if pattern, err = b.normalizedContent(norms, a.content); err != nil {
				return nil, err
			}
			if len(pattern) == 0 {
				return nil, fieldErr("added_tokens", "%q normalizes to nothing: Hugging Face then splits the text at every byte and panics on any non-ASCII character (not supported)", a.content)
			}
		}
		if a.special || glm[a.id] {
			continue
		}
		if av == nil {
			av = &addedVocab{tab: b.tab}
		}
		flags := addedEntry{id: a.id, singleWord: a.single, lstrip: a.lstrip, rstrip: a.rstrip}
		e, seen := entryOf[a.id]
		if seen {
			av.entries[e] = flags
		} else {
			e = int32(len(av.entries))
			entryOf[a.id] = e
			av.entries = append(av.entries, flags)
		}
		if !a.normalized {
			av.raw.insert(a.content, e)
			continue
		}
		// Matched on normalized text: the pattern is the normalized content.
		av.norm.insert(string(pattern), e)
		av.hasNormalized = true
	}
	return av, nil
}

// normalizedContent returns an added token's content normalized, the
// pattern Hugging Face matches it by.
func (b *tjBuilder) normalizedContent(norms []normalizer, content string) ([]byte, error) {
	st := &genState{tab: b.tab}
	buf := []byte(content)
	for _, nz := range norms {
		out, _, err := nz.normalize(st, nil, buf)
		if err != nil {
			return nil, err
		}
		buf = out
	}
	return buf, nil
}

// buildBPE sets up a BPE model: the fast byte-level encoder where the file
// fits it (and general is false), else g's model.
func (b *tjBuilder) buildBPE(t *Tokenizer, g *genPipeline, p *tjParts, general bool) error {
	md := p.md
	merges, err := buildMerges(md.vocab, md.merges, md.prefix)
	if err != nil {
		return err
	}
	unk := int32(-1)
	if md.unk != "" {
		id, ok := md.vocab[md.unk]
		if !ok {
			return fieldErr("model.unk_token", "%q is not in the vocabulary", md.unk)
		}
		unk = id
	}
	byteLevel := false
	for _, pt := range p.pres {
		if _, ok := pt.(*byteLevelPre); ok {
			byteLevel = true
		}
	}
	t.kind = KindCharBPE
	if byteLevel {
		t.kind = KindBPE
		t.pattern = "regex"
		if fast := fastByteLevel(b, md, merges, p.norms, p.pres, g.added); fast != nil && !general {
			t.bpe = fast
			t.pattern = scanName(fast.scan)
			return nil
		}
	}
	m := &bpeModel{vocab: md.vocab, merges: merges, unk: unk, fuseUnk: md.fuseUnk, byteFallback: md.byteFallback,
		ignoreMerges: md.ignoreMerges, prefix: md.prefix, suffix: md.suffix, tab: b.tab}
	m.fallbackID, _ = byteFallbackIDs(md.vocab)
	if md.ignoreMerges && byteLevel {
		m.rawWhole = wholeByteLevel(md.vocab, b.tab)
	}
	m.metaCut, m.noCutAfter = metaCuts(m)
	if m.prefix == "" && m.suffix == "" {
		m.charIDs = newCharIDs(md.vocab)
	}
	g.model = m
	return nil
}

// buildWordPiece sets up a WordPiece model: BERT's own normalizer and
// pre-tokenizer take the fast path (unless general), others g's model.
func buildWordPiece(t *Tokenizer, g *genPipeline, p *tjParts, general bool) error {
	md := p.md
	unk, ok := md.vocab[md.unk]
	if !ok {
		return fieldErr("model.unk_token", "%q is not in the vocabulary", md.unk)
	}
	t.kind = KindWordPiece
	wpCleanup := true
	if d, ok := p.dec.decoder.(*wordPieceDecoder); ok {
		wpCleanup = d.cleanup
	}
	t.wpCleanup = wpCleanup
	var opts bertOptions
	fast := g.added == nil && len(p.pres) == 1 && len(p.norms) <= 1 && !general
	if fast {
		_, fast = p.pres[0].(bertPre)
	}
	if fast && len(p.norms) == 1 {
		bn, ok := p.norms[0].(bertNorm)
		fast, opts = ok, bn.opts
	}
	t.wp = newWordPiece(md.vocab, unk, md.prefix, md.maxChars, opts)
	if !fast {
		t.wp = nil
		g.model = &wordPieceModel{wp: newWordPiece(md.vocab, unk, md.prefix, md.maxChars, bertOptions{})}
	}
	return nil
}

// checkAddedIDs requires each added token's id to be the one Hugging Face
// gives it when it loads the file: the vocabulary's id for a string the
// model has, else the next free id (HF ignores the id the file writes, so a
// file whose ids disagree would be encoded with other ids than it says).
func checkAddedIDs(md *tjModel, added []tjAdded) error {
	vocabSize := int32(len(md.vocab))
	if md.kind == "Unigram" {
		vocabSize = int32(len(md.pieces))
	}
	ids := make(map[string]int32, len(added))
	seen := make(map[tjAdded]bool, len(added))
	maxID := int32(-1)
	for i, a := range added {
		key := a
		key.id = 0
		if seen[key] {
			continue // HF ignores an identical token
		}
		seen[key] = true
		id, ok := ids[a.content]
		if !ok {
			if vid, inVocab := md.vocab[a.content]; inVocab {
				id = vid
			} else if maxID < 0 || (maxID < vocabSize && vocabSize > 0) {
				id = vocabSize
			} else {
				id = maxID + 1
			}
		}
		ids[a.content] = id
		maxID = max(maxID, id)
		if _, inVocab := md.vocab[a.content]; !inVocab && int(id) < md.n && md.kind != "Unigram" {
			for s, vid := range md.vocab {
				if vid == id {
					return fieldErr(fmt.Sprintf("added_tokens[%d]", i), "%q gets id %d from Hugging Face, which the vocabulary gives to %q", a.content, id, s)
				}
			}
		}
		if a.id != id {
			return fieldErr(fmt.Sprintf("added_tokens[%d]", i), "%q has id %d, but Hugging Face gives it %d when it loads this file (the vocabulary's id, or the next free one)", a.content, a.id, id)
		}
	}
	return nil
}

// unigramModel is tokenizer.json's Unigram (HF semantics, unigram.go).
type unigramModel struct{ u *unigram }

func (m *unigramModel) encodePiece(st *genState, dst []int32, piece []byte, raw bool) ([]int32, error) {
	if raw {
		piece = rawToByteLevel(st, piece)
	}
	us, _ := st.uni.(*unigramState)
	if us == nil {
		us = new(unigramState)
		st.uni = us
	}
	return m.u.encode(us, dst, piece)
}

// fastByteLevel returns the fast byte-level encoder for a byte-level BPE
// file that fits it, or nil.
func fastByteLevel(b *tjBuilder, md *tjModel, merges *pairTable, norms []normalizer, pres []preTokenizer, av *addedVocab) *bytePair {
	if len(norms) > 0 || av != nil || md.prefix != "" || md.suffix != "" {
		return nil
	}
	m := &bytePair{merges: merges, ignoreMerges: md.ignoreMerges, tab: b.tab}
	switch {
	case len(pres) == 1:
		bl, _ := pres[0].(*byteLevelPre)
		if bl == nil || !bl.useRegex {
			return nil
		}
		m.scan, m.prefixSpace = scanGPT2, bl.prefixSpace
	case len(pres) == 2:
		sp, _ := pres[0].(*splitPre)
		bl, _ := pres[1].(*byteLevelPre)
		if sp == nil || bl == nil || bl.useRegex || bl.prefixSpace || sp.behavior != behIsolated || sp.invert {
			return nil
		}
		m.scan, m.re = sp.scan, sp.re
		if m.scan == scanRegex && sp.re != nil {
			if k := scannerFor(sp.re.src); k == scanGPT2 {
				m.scan = scanGPT2
			}
		}
	default:
		return nil
	}
	for c := range 256 {
		id, ok := md.vocab[string(b.tab.byteRune[c])]
		if !ok {
			return nil // a byte without its token: HF's unknown-token rules apply (general path)
		}
		m.byteID[c] = id
	}
	if m.ignoreMerges {
		m.whole = wholeByteLevel(md.vocab, b.tab)
		m.wholeMax, m.wholeFilter = maxKeyLen(m.whole), newStringFilter(m.whole)
	}
	return m
}

// wholeByteLevel maps the bytes of every byte-level token to its id.
func wholeByteLevel(vocab map[string]int32, tab *charTables) map[string]int32 {
	dec := byteLevelDecoder(tab)
	out := make(map[string]int32, len(vocab))
	var buf []byte
	for s, id := range vocab {
		buf = buf[:0]
		ok := true
		for _, r := range s {
			b, in := dec[r]
			if !in {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if ok {
			out[string(buf)] = id
		}
	}
	return out
}

// byteLevelDecoder returns the inverse of bytes_to_unicode.
func byteLevelDecoder(tab *charTables) map[rune]byte {
	dec := make(map[rune]byte, 256)
	for b, r := range tab.byteRune {
		dec[r] = byte(b)
	}
	return dec
}

func scanName(k scanKind) string {
	switch k {
	case scanGPT2:
		return "gpt2"
	case scanCL100K:
		return "cl100k"
	case scanQwen2:
		return "qwen2"
	case scanO200K:
		return "o200k"
	}
	return "regex"
}
