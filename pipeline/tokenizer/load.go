package tokenizer

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The built-in vocabularies, byte-identical to the published files.
var (
	//go:embed builtin/bert-base-uncased-vocab.txt
	builtinBertVocab string
	//go:embed builtin/gpt2-vocab.json
	builtinGPT2Vocab string
	//go:embed builtin/gpt2-merges.txt
	builtinGPT2Merges string
)

// Built-in vocabulary names accepted by Load.
const (
	BuiltinBERT = "bert-base-uncased"
	BuiltinGPT2 = "gpt2"
)

// LoadOptions are the choices a tokenizer file does not make itself.
type LoadOptions struct {
	// Pattern is the pre-tokenization pattern of a .tiktoken file or a
	// vocab.json with merges.txt: a name (gpt2, r50k_base, p50k_base,
	// cl100k_base, llama3, glm4, o200k_base, qwen2) or a regular expression.
	// Empty: recognised from the file, or an error.
	Pattern string
	// Lowercase overrides a vocab.txt's lower-casing (and accent stripping,
	// which follows it unless tokenizer_config.json sets strip_accents):
	// "true", "false", or empty for tokenizer_config.json beside the file,
	// else BERT's uncased default.
	Lowercase string
}

// String returns o as the shards' metadata records it: "" when o is zero,
// else compact JSON ({"pattern":"cl100k_base"}), which ParseLoadOptions
// reads back.
func (o LoadOptions) String() string {
	if o == (LoadOptions{}) {
		return ""
	}
	b, _ := json.Marshal(struct {
		Pattern   string `json:"pattern,omitempty"`
		Lowercase string `json:"lowercase,omitempty"`
	}{o.Pattern, o.Lowercase})
	return string(b)
}

// ParseLoadOptions reads LoadOptions.String's form ("" is no options).
func ParseLoadOptions(s string) (LoadOptions, error) {
	var o LoadOptions
	if s == "" {
		return o, nil
	}
	var v struct {
		Pattern   string `json:"pattern"`
		Lowercase string `json:"lowercase"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return o, fmt.Errorf("tokenizer options %q: %w", s, err)
	}
	return LoadOptions{Pattern: v.Pattern, Lowercase: v.Lowercase}, nil
}

// Load is LoadWith with no options.
func Load(spec string) (*Tokenizer, error) { return LoadWith(spec, LoadOptions{}) }

// LoadWith returns the tokenizer named by spec: a built-in name
// ("bert-base-uncased", "gpt2"), or a path to a Hugging Face tokenizer.json,
// a SentencePiece .model, a tiktoken rank file (.tiktoken, or a .model in
// that format as GLM-4 ships it), a WordPiece vocab.txt, a BPE vocab.json
// (with merges.txt beside it), or a directory holding one of these (looked
// for in that order).
//
// Every component of the file is implemented by glmkit and exact to the
// file's own reference; anything else is an error naming the file and the
// component, and nothing is guessed.
func LoadWith(spec string, o LoadOptions) (*Tokenizer, error) {
	if o.Lowercase != "" && o.Lowercase != "true" && o.Lowercase != "false" {
		return nil, fmt.Errorf("tokenizer: --lowercase %q: want true or false", o.Lowercase)
	}
	var t *Tokenizer
	var err error
	switch spec {
	case BuiltinBERT:
		t, err = fromVocabTxt(spec, []byte(builtinBertVocab), o, nil)
	case BuiltinGPT2:
		t, err = fromVocabJSON(spec, []byte(builtinGPT2Vocab), []byte(builtinGPT2Merges), "builtin merges", o, "")
	default:
		t, err = loadFile(spec, o)
	}
	if err != nil {
		return nil, err
	}
	// A tokenizer.json sets such tokens aside (buildTokenizerJSONWith); no
	// other file has been seen to hold one.
	if found := t.commandTokensFromText(); len(found) > 0 {
		return nil, fmt.Errorf("tokenizer: %s: %q (id %d), which glmkit would use as one of GLM's command tokens, is an ordinary token that text encodes to: documents could not be told from command tokens", spec, t.tokens[found[0]], found[0])
	}
	t.name = spec
	t.opts = o
	return t, nil
}

func loadFile(spec string, o LoadOptions) (*Tokenizer, error) {
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (want %q, %q or a tokenizer file)", err, BuiltinBERT, BuiltinGPT2)
	}
	path := spec
	if st.IsDir() {
		if path, err = findInDir(spec); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	base := filepath.Base(path)
	noPattern := func(kind string) error {
		if o.Pattern != "" {
			return fmt.Errorf("tokenizer: %s: --tokenizer-pattern applies to .tiktoken files and vocab.json+merges.txt, not to a %s (its pattern is its own)", path, kind)
		}
		return nil
	}
	noLower := func(kind string) error {
		if o.Lowercase != "" {
			return fmt.Errorf("tokenizer: %s: --lowercase applies to a WordPiece vocab.txt, not to a %s (its normalizer is its own)", path, kind)
		}
		return nil
	}
	switch {
	case looksLikeTiktoken(data):
		if err := noLower("tiktoken file"); err != nil {
			return nil, err
		}
		return fromTiktoken(path, data, o)
	case strings.HasSuffix(base, ".txt"):
		if err := noPattern("vocab.txt"); err != nil {
			return nil, err
		}
		return fromVocabTxt(path, data, o, readConfigBeside(path))
	case strings.HasSuffix(base, ".model"):
		if err := errors.Join(noPattern("SentencePiece model"), noLower("SentencePiece model")); err != nil {
			return nil, err
		}
		return fromSentencePiece(path, data)
	case strings.HasSuffix(base, ".tiktoken"):
		return nil, fmt.Errorf("tokenizer: %s: not a tiktoken rank file (want one \"base64-token rank\" per line)", path)
	case strings.HasSuffix(base, ".json"):
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: not valid JSON: %w", path, err)
		}
		// A vocab.json may hold a token "model" (GPT-2's does): a
		// tokenizer.json's model is an object.
		if m, ok := probe["model"]; ok && len(bytes.TrimSpace(m)) > 0 && bytes.TrimSpace(m)[0] == '{' {
			if err := errors.Join(noPattern("tokenizer.json"), noLower("tokenizer.json")); err != nil {
				return nil, err
			}
			return fromTokenizerJSON(path, data)
		}
		if notVocab(base, probe) {
			return nil, fmt.Errorf("tokenizer: %s: a tokenizer.json without a model (its \"model\" is missing or not an object; Hugging Face says \"Model missing\"), and not a vocab.json either (token → id)", path)
		}
		if err := noLower("BPE vocab.json"); err != nil {
			return nil, err
		}
		mpath := mergesBeside(path)
		merges, rerr := os.ReadFile(mpath)
		if rerr != nil {
			return nil, fmt.Errorf("tokenizer: %s: a BPE vocab.json needs its merges file: %w", path, rerr)
		}
		return fromVocabJSON(path, data, merges, mpath, o, filepath.Dir(path))
	}
	return nil, fmt.Errorf("tokenizer: %s: unknown tokenizer file (want tokenizer.json, a SentencePiece .model, a .tiktoken, vocab.txt or vocab.json)", path)
}

// findInDir picks the tokenizer file of a directory.
func findInDir(dir string) (string, error) {
	for _, f := range []string{"tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return filepath.Join(dir, f), nil
		}
	}
	for _, ext := range []string{"*.model", "*.tiktoken"} {
		m, _ := filepath.Glob(filepath.Join(dir, ext))
		if len(m) == 1 {
			return m[0], nil
		}
		if len(m) > 1 {
			return "", fmt.Errorf("tokenizer: %s: several %s files: name one", dir, ext[1:])
		}
	}
	return "", fmt.Errorf("tokenizer: %s: directory holds no tokenizer.json, vocab.txt, vocab.json, .model or .tiktoken file", dir)
}

// notVocab reports whether a .json file (its name base, its top-level
// keys) cannot be a BPE vocab.json: one named tokenizer.json, or one with a
// value that is not an id (a tokenizer.json's sections are objects, lists
// and strings).
func notVocab(base string, probe map[string]json.RawMessage) bool {
	if strings.HasSuffix(base, "tokenizer.json") {
		return true
	}
	for _, v := range probe {
		var id int64
		if json.Unmarshal(v, &id) != nil {
			return true
		}
	}
	return false
}

// mergesBeside returns the merges file for a BPE vocabulary: X-merges.txt
// for X-vocab.json (GLM's naming) when it exists, otherwise merges.txt in
// the same directory.
func mergesBeside(vocabPath string) string {
	dir, base := filepath.Split(vocabPath)
	if p, ok := strings.CutSuffix(base, "vocab.json"); ok && p != "" {
		if _, err := os.Stat(filepath.Join(dir, p+"merges.txt")); err == nil {
			return filepath.Join(dir, p+"merges.txt")
		}
	}
	return filepath.Join(dir, "merges.txt")
}

func sha256Hex(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// splitLines splits data as Rust's BufRead::lines does: on "\n", dropping a
// "\r" before it, with no empty last line after a final newline.
func splitLines(data []byte) []string {
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// tokenizerConfig is the part of a tokenizer_config.json glmkit reads.
type tokenizerConfig struct {
	path                 string
	DoLowerCase          *bool  `json:"do_lower_case"`
	StripAccents         *bool  `json:"strip_accents"`
	TokenizeChineseChars *bool  `json:"tokenize_chinese_chars"`
	TokenizerClass       string `json:"tokenizer_class"`
	err                  error
}

// readConfigBeside reads tokenizer_config.json in the directory of path;
// nil when there is none.
func readConfigBeside(path string) *tokenizerConfig {
	p := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	c := &tokenizerConfig{path: p}
	if err := json.Unmarshal(data, c); err != nil {
		c.err = fmt.Errorf("tokenizer: %s: %w", p, err)
	}
	return c
}

// fromVocabTxt builds a WordPiece tokenizer from a BERT vocab.txt: one token
// per line, id = line index. Its normalizer is BertNormalizer with
// tokenizer_config.json's do_lower_case, strip_accents and
// tokenize_chinese_chars when the file has one beside it, --lowercase over
// those, and BERT's uncased defaults (lower case, strip accents) for a bare
// file, as HF's BertTokenizer does.
func fromVocabTxt(name string, data []byte, o LoadOptions, cfg *tokenizerConfig) (*Tokenizer, error) {
	if cfg != nil && cfg.err != nil {
		return nil, cfg.err
	}
	lines := splitLines(data)
	if len(lines) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: empty vocabulary", name)
	}
	vocab := make(map[string]int32, len(lines))
	tokens := make([]string, len(lines))
	for i, l := range lines {
		l = strings.TrimRightFunc(l, isRustWhitespace) // HF: line.trim_end()
		tokens[i] = l
		vocab[l] = int32(i)
	}
	opts := defaultBertOptions()
	source := "bare vocab.txt: BERT's uncased default"
	if name == BuiltinBERT {
		source = "built in"
	}
	var strip *bool
	if cfg != nil {
		source = filepath.Base(cfg.path)
		if cfg.DoLowerCase != nil {
			opts.lowercase = *cfg.DoLowerCase
		}
		if cfg.TokenizeChineseChars != nil {
			opts.chineseChars = *cfg.TokenizeChineseChars
		}
		strip = cfg.StripAccents
	}
	if o.Lowercase != "" {
		opts.lowercase = o.Lowercase == "true"
		source = "--lowercase=" + o.Lowercase
	}
	opts.stripAccents = opts.lowercase
	if strip != nil {
		opts.stripAccents = *strip
	}
	t := &Tokenizer{name: name, kind: KindWordPiece, sha: sha256Hex(data), wpCleanup: true}
	t.notes = append(t.notes, fmt.Sprintf("lowercase=%v strip_accents=%v tokenize_chinese_chars=%v (%s)", opts.lowercase, opts.stripAccents, opts.chineseChars, source))
	if opts != defaultBertOptions() {
		t.variant = fmt.Sprintf("lowercase=%v,strip_accents=%v,tokenize_chinese_chars=%v", opts.lowercase, opts.stripAccents, opts.chineseChars)
	}
	if err := t.initWordPiece(vocab, tokens, "[UNK]", "##", 100, opts); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	return t, nil
}

func isRustWhitespace(r rune) bool { return tables().class(r)&cWhite != 0 }

func (t *Tokenizer) initWordPiece(vocab map[string]int32, tokens []string, unkTok, prefix string, maxChars int, opts bertOptions) error {
	unk, ok := vocab[unkTok]
	if !ok {
		return fmt.Errorf("unknown token %q is not in the vocabulary", unkTok)
	}
	t.wp = newWordPiece(vocab, unk, prefix, maxChars, opts)
	t.dec = decoderOf{&wordPieceDecoder{prefix: prefix, cleanup: t.wpCleanup}}
	t.initTokens(tokens)
	t.assignSpecials(func(s string) (int32, bool) { id, ok := vocab[s]; return id, ok })
	t.computeSentenceEnds(func(id int) []byte {
		tok := t.tokens[id]
		if prefix != "" {
			tok = strings.TrimPrefix(tok, prefix)
		}
		return []byte(tok)
	}, nil)
	return nil
}

func (t *Tokenizer) initTokens(tokens []string) {
	t.baseSize = len(tokens)
	t.tokens = tokens
	if t.isSpecial == nil {
		t.isSpecial = make([]bool, len(tokens))
	}
}

// Known GPT-2-family vocab.json files, whose pattern is GPT-2's.
var gpt2FamilyVocabs = []string{
	"196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783", // gpt2 (OpenAI encoder.json)
	"9e7f63c2d15d666b52e21d250d2e513b87c9b713cfa6987a82ed89e5e6e50655", // roberta (fairseq, GLM-RoBERTa)
}

// fromVocabJSON builds a byte-level BPE tokenizer from a vocab.json (token
// → id, tokens in the byte-level alphabet) and a merges file ("#version"
// line, then "left right" per line in rank order).
//
// The pre-tokenization pattern is not in these files. It is --tokenizer-
// pattern when given; otherwise tokenizer_config.json's tokenizer_class
// (GPT2Tokenizer, RobertaTokenizer and their kin: GPT-2's pattern;
// Qwen2Tokenizer: Qwen2's); otherwise GPT-2's for the GPT-2 and RoBERTa
// vocabularies themselves. Anything else is refused: GPT-2's regex on a
// cl100k-style vocabulary changes the ids of about a fifth of documents,
// and a warning scrolls by.
func fromVocabJSON(name string, vocabData, mergesData []byte, mergesName string, o LoadOptions, dir string) (*Tokenizer, error) {
	var vocab map[string]int32
	if err := json.Unmarshal(vocabData, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: bad vocab.json: %w", name, err)
	}
	var merges [][2]string
	for i, l := range splitLines(mergesData) {
		if strings.HasPrefix(l, "#version") || l == "" {
			continue
		}
		a, b, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: %s: line %d: want two tokens separated by a space, got %q", mergesName, i+1, l)
		}
		merges = append(merges, [2]string{a, b})
	}
	t := &Tokenizer{name: name, kind: KindBPE, sha: sha256Hex(vocabData, mergesData)}
	scan, re, note, err := vocabJSONPattern(name, sha256Hex(vocabData), o, dir)
	if err != nil {
		return nil, err
	}
	if note != "" {
		t.notes = append(t.notes, note)
	}
	if err := t.initBPE(vocab, merges, false, false, scan, re); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	return t, nil
}

// vocabJSONPattern decides the pattern of a vocab.json (see fromVocabJSON).
func vocabJSONPattern(name, vocabSHA string, o LoadOptions, dir string) (scanKind, *regex, string, error) {
	if o.Pattern != "" {
		k, re, err := patternOption(o.Pattern)
		if err != nil {
			return 0, nil, "", fmt.Errorf("tokenizer: %s: %w", name, err)
		}
		return k, re, "pattern " + o.Pattern + " (--tokenizer-pattern)", nil
	}
	if dir != "" {
		if cfg := readConfigBeside(filepath.Join(dir, "vocab.json")); cfg != nil && cfg.TokenizerClass != "" {
			if cfg.err != nil {
				return 0, nil, "", cfg.err
			}
			class := strings.TrimSuffix(cfg.TokenizerClass, "Fast")
			switch class {
			case "GPT2Tokenizer", "RobertaTokenizer", "BartTokenizer", "LongformerTokenizer", "BlenderbotTokenizer",
				"DebertaTokenizer", "CodeGenTokenizer", "GPTNeoXTokenizer", "LEDTokenizer", "MvpTokenizer":
				return scanGPT2, nil, "pattern gpt2 (" + cfg.TokenizerClass + " in tokenizer_config.json)", nil
			case "Qwen2Tokenizer":
				return scanQwen2, nil, "pattern qwen2 (" + cfg.TokenizerClass + " in tokenizer_config.json)", nil
			}
			return 0, nil, "", fmt.Errorf("tokenizer: %s: tokenizer_config.json names %s, whose pre-tokenization pattern glmkit does not know: pass --tokenizer-pattern NAME|REGEX, or load its tokenizer.json", name, cfg.TokenizerClass)
		}
	}
	if name == BuiltinGPT2 || slices.Contains(gpt2FamilyVocabs, vocabSHA) {
		return scanGPT2, nil, "", nil
	}
	return 0, nil, "", fmt.Errorf("tokenizer: %s: a vocab.json with merges.txt does not say its pre-tokenization pattern, and this is not the GPT-2 or RoBERTa vocabulary: pass --tokenizer-pattern gpt2 if it is a GPT-2-style BPE (or cl100k_base, o200k_base, qwen2, a regex), or load its tokenizer.json", name)
}

// patternOption reads --tokenizer-pattern: a name or a regex.
func patternOption(p string) (scanKind, *regex, error) {
	switch p {
	case "gpt2", "r50k_base", "p50k_base":
		return scanGPT2, nil, nil
	case "cl100k_base", "cl100k", "llama3", "glm4":
		return scanCL100K, nil, nil
	case "o200k_base", "o200k":
		return scanO200K, nil, nil
	case "qwen2":
		return scanQwen2, nil, nil
	}
	if k := scannerFor(p); k != scanRegex {
		return k, nil, nil
	}
	re, err := compileRegex(p)
	if err != nil {
		return 0, nil, fmt.Errorf("--tokenizer-pattern: %w (names: gpt2, r50k_base, p50k_base, cl100k_base, llama3, glm4, o200k_base, qwen2)", err)
	}
	return scanRegex, re, nil
}

// initBPE sets t up as a byte-level BPE tokenizer: vocab (byte-level
// strings → id) and merges in rank order.
func (t *Tokenizer) initBPE(vocab map[string]int32, merges [][2]string, prefixSpace, ignoreMerges bool, scan scanKind, re *regex) error {
	n := 0
	for _, id := range vocab {
		if id < 0 {
			return fmt.Errorf("negative id %d in the vocabulary", id)
		}
		n = max(n, int(id)+1)
	}
	tokens := make([]string, n)
	for s, id := range vocab {
		tokens[id] = s
	}
	tab := tables()
	m := &bytePair{merges: newPairTable(len(merges)), prefixSpace: prefixSpace, ignoreMerges: ignoreMerges,
		scan: scan, re: re, tab: tab}
	t.byteDec = byteLevelDecoder(tab)
	for b, r := range tab.byteRune {
		id, ok := vocab[string(r)]
		if !ok {
			return fmt.Errorf("byte-level vocabulary lacks byte 0x%02x (%q)", b, string(r))
		}
		m.byteID[b] = id
	}
	for rank, mg := range merges {
		a, okA := vocab[mg[0]]
		b, okB := vocab[mg[1]]
		c, okC := vocab[mg[0]+mg[1]]
		if !okA || !okB || !okC {
			return fmt.Errorf("merge %d (%q %q) uses a token that is not in the vocabulary", rank+1, mg[0], mg[1])
		}
		m.merges.set(pairKey(a, b), uint64(rank)<<32|uint64(uint32(c)))
	}
	if ignoreMerges {
		m.whole = wholeByteLevel(vocab, tab)
		m.wholeMax, m.wholeFilter = maxKeyLen(m.whole), newStringFilter(m.whole)
	}
	t.bpe = m
	t.pattern = scanName(scan)
	t.dec = decoderOf{byteLevelDec{}}
	t.initTokens(tokens)
	t.assignSpecials(func(s string) (int32, bool) { id, ok := vocab[s]; return id, ok })
	t.computeSentenceEnds(func(id int) []byte { return byteLevelDecode(t.tokens[id], t.byteDec) }, nil)
	return nil
}
