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

// Load returns the tokenizer named by spec: a built-in name
// ("bert-base-uncased", "gpt2"), or a path to a tokenizer.json, a WordPiece
// vocab.txt, a BPE vocab.json (with merges.txt beside it), or a directory
// holding one of these (looked for in that order).
//
// A vocab.txt gets Hugging Face's BertNormalizer defaults (clean text, space
// CJK characters, lowercase, strip accents), as BertWordPieceTokenizer does;
// a tokenizer.json's normalizer settings are used as written. tokenizer.json
// kinds other than WordPiece with BertNormalizer/BertPreTokenizer and
// byte-level BPE with GPT-2's pattern are encoded by the sugarme fallback,
// and Warning says so.
func Load(spec string) (*Tokenizer, error) {
	switch spec {
	case BuiltinBERT:
		return fromVocabTxt(spec, []byte(builtinBertVocab))
	case BuiltinGPT2:
		return fromVocabJSON(spec, []byte(builtinGPT2Vocab), []byte(builtinGPT2Merges), "builtin merges")
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (want %q, %q or a tokenizer file)", err, BuiltinBERT, BuiltinGPT2)
	}
	path := spec
	if st.IsDir() {
		path = ""
		for _, f := range []string{"tokenizer.json", "vocab.txt", "vocab.json"} {
			if _, err := os.Stat(filepath.Join(spec, f)); err == nil {
				path = filepath.Join(spec, f)
				break
			}
		}
		if path == "" {
			return nil, fmt.Errorf("tokenizer: %s: directory holds no tokenizer.json, vocab.txt or vocab.json", spec)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var t *Tokenizer
	switch {
	case strings.HasSuffix(path, ".txt"):
		t, err = fromVocabTxt(path, data)
	case strings.HasSuffix(path, ".model"):
		t, err = fromSentencePiece(path, data)
	case strings.HasSuffix(path, ".json"):
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: not valid JSON: %w", path, err)
		}
		// A vocab.json may hold a token "model" (GPT-2's does): a
		// tokenizer.json's model is an object.
		if m, ok := probe["model"]; ok && len(bytes.TrimSpace(m)) > 0 && bytes.TrimSpace(m)[0] == '{' {
			t, err = fromTokenizerJSON(path, data)
			break
		}
		mpath := mergesBeside(path)
		merges, rerr := os.ReadFile(mpath)
		if rerr != nil {
			return nil, fmt.Errorf("tokenizer: %s: a BPE vocab.json needs its merges file: %w", path, rerr)
		}
		t, err = fromVocabJSON(path, data, merges, mpath)
	default:
		return nil, fmt.Errorf("tokenizer: %s: unknown tokenizer file (want tokenizer.json, vocab.txt, vocab.json or a SentencePiece .model)", path)
	}
	if err != nil {
		return nil, err
	}
	t.name = spec
	return t, nil
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

// fromVocabTxt builds a WordPiece tokenizer from a BERT vocab.txt: one token
// per line, id = line index, HF's defaults for everything else.
func fromVocabTxt(name string, data []byte) (*Tokenizer, error) {
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
	t := &Tokenizer{name: name, kind: KindWordPiece, sha: sha256Hex(data), wpCleanup: true}
	if err := t.initWordPiece(vocab, tokens, "[UNK]", "##", 100, defaultBertOptions()); err != nil {
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
	t.initTokens(tokens)
	t.assignSpecials(func(s string) (int32, bool) { id, ok := vocab[s]; return id, ok })
	t.computeSentenceEnds(func(id int) []byte {
		tok := t.tokens[id]
		if prefix != "" {
			tok = strings.TrimPrefix(tok, prefix)
		}
		return []byte(tok)
	})
	return nil
}

func (t *Tokenizer) initTokens(tokens []string) {
	t.baseSize = len(tokens)
	t.tokens = tokens
	if t.isSpecial == nil {
		t.isSpecial = make([]bool, len(tokens))
	}
}

// fromVocabJSON builds a GPT-2 style byte-level BPE tokenizer from a
// vocab.json (token → id, tokens in the byte-level alphabet) and a merges
// file ("#version" line, then "left right" per line in rank order).
func fromVocabJSON(name string, vocabData, mergesData []byte, mergesName string) (*Tokenizer, error) {
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
	if err := t.initBPE(vocab, merges, nil, false, false); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	return t, nil
}

// addedToken is an entry of tokenizer.json's added_tokens.
type addedToken struct {
	ID      int32  `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

func (t *Tokenizer) initBPE(vocab map[string]int32, merges [][2]string, added []addedToken, prefixSpace, ignoreMerges bool) error {
	n := 0
	for _, id := range vocab {
		if id < 0 {
			return fmt.Errorf("negative id %d in the vocabulary", id)
		}
		n = max(n, int(id)+1)
	}
	for _, a := range added {
		n = max(n, int(a.ID)+1)
	}
	tokens := make([]string, n)
	for s, id := range vocab {
		tokens[id] = s
	}
	t.isSpecial = make([]bool, n)
	for _, a := range added {
		tokens[a.ID] = a.Content
		t.isSpecial[a.ID] = true
	}
	m := &bytePair{merges: make(map[uint64]uint64, len(merges)), prefixSpace: prefixSpace, ignoreMerges: ignoreMerges, scan: scanGPT2}
	m.initClasses()
	enc := byteLevelAlphabet()
	t.byteDec = make(map[rune]byte, 256)
	for b, r := range enc {
		t.byteDec[r] = byte(b)
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
		m.merges[pairKey(a, b)] = uint64(rank)<<32 | uint64(uint32(c))
	}
	if ignoreMerges {
		m.whole = make(map[string]int32, len(vocab))
		for s, id := range vocab {
			m.whole[string(byteLevelDecode(s, t.byteDec))] = id
		}
	}
	t.bpe = m
	t.initTokens(tokens)
	t.assignSpecials(func(s string) (int32, bool) {
		for _, a := range added {
			if a.Content == s {
				return a.ID, true
			}
		}
		id, ok := vocab[s]
		return id, ok
	})
	t.computeSentenceEnds(func(id int) []byte { return byteLevelDecode(t.tokens[id], t.byteDec) })
	return nil
}

// tokenizerJSON is the part of a Hugging Face tokenizer.json we read.
type tokenizerJSON struct {
	AddedTokens  []addedToken    `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        *struct {
		Type                    string          `json:"type"`
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		UnkToken                *string         `json:"unk_token"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    *int            `json:"max_input_chars_per_word"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
		Dropout                 *float64        `json:"dropout"`
		ByteFallback            bool            `json:"byte_fallback"`
		IgnoreMerges            bool            `json:"ignore_merges"`
	} `json:"model"`
}

// typed is a JSON object's "type" key.
type typed struct {
	Type string `json:"type"`
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func typeOf(raw json.RawMessage) string {
	var t typed
	if isNull(raw) || json.Unmarshal(raw, &t) != nil {
		return ""
	}
	return t.Type
}

// errFallback marks a tokenizer.json our encoders do not implement.
var errFallback = errors.New("not implemented by glmkit's encoders")

// fromTokenizerJSON reads a Hugging Face tokenizer.json.
func fromTokenizerJSON(path string, data []byte) (*Tokenizer, error) {
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: not a tokenizer.json: %w", path, err)
	}
	if tj.Model == nil {
		return nil, fmt.Errorf("tokenizer: %s: no model", path)
	}
	t, err := ownFromJSON(path, data, &tj)
	if errors.Is(err, errFallback) {
		return newFallback(path, data, &tj)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// ownFromJSON builds one of our encoders from tj, or returns errFallback.
func ownFromJSON(path string, data []byte, tj *tokenizerJSON) (*Tokenizer, error) {
	md := tj.Model
	kind := md.Type
	if kind == "" {
		switch {
		case md.ContinuingSubwordPrefix != nil && md.MaxInputCharsPerWord != nil:
			kind = "WordPiece" // older serializations leave it untagged
		case !isNull(md.Merges):
			kind = "BPE"
		}
	}
	switch kind {
	case "WordPiece":
		return wordPieceFromJSON(path, data, tj)
	case "BPE":
		return bpeFromJSON(path, data, tj)
	}
	return nil, errFallback
}

func wordPieceFromJSON(path string, data []byte, tj *tokenizerJSON) (*Tokenizer, error) {
	md := tj.Model
	opts := bertOptions{} // no normalizer: none of it
	switch typeOf(tj.Normalizer) {
	case "BertNormalizer":
		var n struct {
			CleanText          *bool `json:"clean_text"`
			HandleChineseChars *bool `json:"handle_chinese_chars"`
			StripAccents       *bool `json:"strip_accents"`
			Lowercase          *bool `json:"lowercase"`
		}
		if err := json.Unmarshal(tj.Normalizer, &n); err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
		opts = defaultBertOptions()
		if n.CleanText != nil {
			opts.cleanText = *n.CleanText
		}
		if n.HandleChineseChars != nil {
			opts.chineseChars = *n.HandleChineseChars
		}
		if n.Lowercase != nil {
			opts.lowercase = *n.Lowercase
		}
		opts.stripAccents = opts.lowercase // null follows lowercase
		if n.StripAccents != nil {
			opts.stripAccents = *n.StripAccents
		}
	case "":
		if !isNull(tj.Normalizer) {
			return nil, errFallback
		}
	default:
		return nil, errFallback
	}
	if typeOf(tj.PreTokenizer) != "BertPreTokenizer" {
		return nil, errFallback
	}
	var vocab map[string]int32
	if err := json.Unmarshal(md.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("model vocab: %w", err)
	}
	n := 0
	for _, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("negative id %d in the vocabulary", id)
		}
		n = max(n, int(id)+1)
	}
	for _, a := range tj.AddedTokens {
		n = max(n, int(a.ID)+1)
	}
	tokens := make([]string, n)
	for s, id := range vocab {
		tokens[id] = s
	}
	t := &Tokenizer{kind: KindWordPiece, sha: sha256Hex(data), wpCleanup: true}
	t.isSpecial = make([]bool, n)
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("negative id %d in added_tokens", a.ID)
		}
		tokens[a.ID] = a.Content
		t.isSpecial[a.ID] = true
	}
	if typeOf(tj.Decoder) == "WordPiece" {
		var d struct {
			Cleanup *bool `json:"cleanup"`
		}
		if json.Unmarshal(tj.Decoder, &d) == nil && d.Cleanup != nil {
			t.wpCleanup = *d.Cleanup
		}
	}
	unk, prefix, maxChars := "[UNK]", "##", 100
	if md.UnkToken != nil {
		unk = *md.UnkToken
	}
	if md.ContinuingSubwordPrefix != nil {
		prefix = *md.ContinuingSubwordPrefix
	}
	if md.MaxInputCharsPerWord != nil {
		maxChars = *md.MaxInputCharsPerWord
	}
	if err := t.initWordPiece(vocab, tokens, unk, prefix, maxChars, opts); err != nil {
		return nil, err
	}
	return t, nil
}

func bpeFromJSON(path string, data []byte, tj *tokenizerJSON) (*Tokenizer, error) {
	md := tj.Model
	if !isNull(tj.Normalizer) || (md.Dropout != nil && *md.Dropout != 0) || md.ByteFallback ||
		(md.ContinuingSubwordPrefix != nil && *md.ContinuingSubwordPrefix != "") ||
		(md.EndOfWordSuffix != nil && *md.EndOfWordSuffix != "") {
		return nil, errFallback
	}
	if typeOf(tj.PreTokenizer) != "ByteLevel" {
		return nil, errFallback
	}
	var pre struct {
		AddPrefixSpace *bool `json:"add_prefix_space"`
		UseRegex       *bool `json:"use_regex"`
	}
	if err := json.Unmarshal(tj.PreTokenizer, &pre); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if pre.UseRegex != nil && !*pre.UseRegex {
		return nil, errFallback
	}
	prefixSpace := pre.AddPrefixSpace == nil || *pre.AddPrefixSpace // HF's default is true
	var vocab map[string]int32
	if err := json.Unmarshal(md.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("model vocab: %w", err)
	}
	merges, err := parseJSONMerges(md.Merges)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{kind: KindBPE, sha: sha256Hex(data)}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("negative id %d in added_tokens", a.ID)
		}
	}
	if err := t.initBPE(vocab, merges, tj.AddedTokens, prefixSpace, md.IgnoreMerges); err != nil {
		return nil, err
	}
	return t, nil
}

// parseJSONMerges reads tokenizer.json merges: "left right" strings (older
// files) or [left, right] pairs (newer ones).
func parseJSONMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, s := range strs {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("merge %d: want two tokens separated by a space, got %q", i+1, s)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("model merges: %w", err)
	}
	return pairs, nil
}
