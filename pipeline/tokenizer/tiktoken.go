package tokenizer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// tiktoken rank files: one "base64-token rank" per line, the rank being the
// token's id and its merge priority. Encoding is tiktoken's: the pattern's
// pieces, each looked up whole first, else byte-pair merged by the rank of
// the merged bytes (lowest first, leftmost among equals), which is
// byte-level BPE with merges derived from the ranks (bpe.go).

// tiktokenEncoding is one of OpenAI's published encodings.
type tiktokenEncoding struct {
	name    string
	sha256  string // of the published .tiktoken file
	scan    scanKind
	special map[string]int32
}

// tiktokenEncodings are the encodings recognised by hash or name.
func tiktokenEncodings() []tiktokenEncoding {
	return []tiktokenEncoding{
		{"r50k_base", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", scanGPT2, map[string]int32{"<|endoftext|>": 50256}},
		{"p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069", scanGPT2, map[string]int32{"<|endoftext|>": 50256}},
		{"cl100k_base", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", scanCL100K, map[string]int32{
			"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}},
		{"o200k_base", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", scanO200K, map[string]int32{
			"<|endoftext|>": 199999, "<|endofprompt|>": 200018}},
		// Meta's Llama-3 (3.1 names) tokenizer.model, a tiktoken file.
		{"llama3", "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55", scanCL100K, llama3Specials()},
	}
}

// llama3Specials returns Llama-3.1's 256 special tokens.
func llama3Specials() map[string]int32 {
	m := map[string]int32{}
	for i, s := range []string{"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
		"<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
		"<|eot_id|>", "<|python_tag|>"} {
		m[s] = int32(128000 + i)
	}
	for i := 3; i <= 247; i++ {
		m["<|reserved_special_token_"+strconv.Itoa(i)+"|>"] = int32(128011 + i - 3)
	}
	return m
}

// looksLikeTiktoken reports whether data starts with a "base64 rank" line.
func looksLikeTiktoken(data []byte) bool {
	line, _, _ := bytes.Cut(data[:min(len(data), 4096)], []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	tok, rank, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(tok) == 0 || len(rank) == 0 {
		return false
	}
	for _, c := range tok {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	for _, c := range rank {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseTiktoken reads the ranks: token bytes by rank (nil for gaps).
func parseTiktoken(data []byte) ([][]byte, error) {
	var byRank [][]byte
	seen := make(map[string]int, 1024)
	lineNo := 0
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"base64-token rank\", got %q", lineNo, truncateForError(line))
		}
		tok, err := base64.StdEncoding.DecodeString(string(f[0]))
		if err != nil || len(tok) == 0 {
			return nil, fmt.Errorf("line %d: token %q is not base64", lineNo, truncateForError(f[0]))
		}
		rank, err := strconv.Atoi(string(f[1]))
		if err != nil || rank < 0 || rank >= 1<<24 {
			return nil, fmt.Errorf("line %d: rank %q is not an integer in [0, 2^24)", lineNo, truncateForError(f[1]))
		}
		if prev, dup := seen[string(tok)]; dup {
			return nil, fmt.Errorf("line %d: token %q was already given rank %d", lineNo, tok, prev)
		}
		seen[string(tok)] = rank
		for len(byRank) <= rank {
			byRank = append(byRank, nil)
		}
		if byRank[rank] != nil {
			return nil, fmt.Errorf("line %d: rank %d is given twice", lineNo, rank)
		}
		byRank[rank] = tok
	}
	if len(byRank) == 0 {
		return nil, fmt.Errorf("no ranks")
	}
	return byRank, nil
}

func truncateForError(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// fromTiktoken builds a byte-level BPE tokenizer from a tiktoken rank file.
// The encoding (its pattern and special tokens) is recognised by the file's
// SHA-256 or its name (cl100k_base.tiktoken, ...); --tokenizer-pattern
// gives the pattern of any other file, and overrides.
func fromTiktoken(path string, data []byte, o LoadOptions) (*Tokenizer, error) {
	byRank, err := parseTiktoken(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	sha := sha256Hex(data)
	enc, how := recogniseTiktoken(path, sha)
	t := &Tokenizer{kind: KindBPE, sha: sha}
	var scan scanKind
	var re *regex
	switch {
	case o.Pattern != "":
		if scan, re, err = patternOption(o.Pattern); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
		}
		t.notes = append(t.notes, "pattern "+o.Pattern+" (--tokenizer-pattern)")
	case enc != nil:
		scan = enc.scan
		t.notes = append(t.notes, fmt.Sprintf("tiktoken %s (recognised by %s)", enc.name, how))
	default:
		return nil, fmt.Errorf("tokenizer: %s: a tiktoken file that is not cl100k_base, o200k_base, r50k_base, p50k_base or Llama-3's (by SHA-256 or name) does not say its pre-tokenization pattern: pass --tokenizer-pattern NAME|REGEX (GLM-4's is cl100k_base)", path)
	}
	tab := tables()
	t.byteDec = byteLevelDecoder(tab)
	m, err := tiktokenBPE(byRank, scan, re, tab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	if err := t.initTiktokenTokens(byRank, enc, tab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	t.bpe = m
	t.pattern = scanName(scan)
	t.dec = decoderOf{byteLevelDec{}}
	t.assignSpecials(func(s string) (int32, bool) {
		if enc != nil {
			if id, ok := enc.special[s]; ok {
				return id, true
			}
		}
		return 0, false
	})
	t.computeSentenceEnds(func(id int) []byte { return byteLevelDecode(t.tokens[id], t.byteDec) }, nil)
	return t, nil
}

// recogniseTiktoken returns the published encoding a file is, by its
// SHA-256 or else its name, and which of the two told; nil when neither.
func recogniseTiktoken(path, sha string) (*tiktokenEncoding, string) {
	encs := tiktokenEncodings()
	for i := range encs {
		if encs[i].sha256 == sha {
			return &encs[i], "its SHA-256"
		}
	}
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	for i := range encs {
		if encs[i].name == stem {
			return &encs[i], "its file name"
		}
	}
	return nil, ""
}

// tiktokenBPE builds the byte-level BPE of the ranks: every token looked up
// whole, and a pair of tokens merging when their concatenation has a rank,
// with that rank.
func tiktokenBPE(byRank [][]byte, scan scanKind, re *regex, tab *charTables) (*bytePair, error) {
	m := &bytePair{scan: scan, re: re, tab: tab, ignoreMerges: true,
		merges: newPairTable(2 * len(byRank)), whole: make(map[string]int32, len(byRank))}
	for rank, tok := range byRank {
		if tok != nil {
			m.whole[string(tok)] = int32(rank)
			m.wholeMax = max(m.wholeMax, len(tok))
		}
	}
	m.wholeFilter = newStringFilter(m.whole)
	for b := range 256 {
		id, ok := m.whole[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("no rank for the single byte 0x%02x (tiktoken cannot encode text with it)", b)
		}
		m.byteID[b] = id
	}
	for rank, tok := range byRank {
		for k := 1; k < len(tok); k++ {
			a, ok := m.whole[string(tok[:k])]
			if !ok {
				continue
			}
			if b, ok := m.whole[string(tok[k:])]; ok {
				m.merges.set(pairKey(a, b), uint64(rank)<<32|uint64(uint32(rank)))
			}
		}
	}
	return m, nil
}

// initTiktokenTokens sets the tokens, the ranks in their byte-level form
// (as a tokenizer.json of the same vocabulary spells them) then the
// encoding's special tokens.
func (t *Tokenizer) initTiktokenTokens(byRank [][]byte, enc *tiktokenEncoding, tab *charTables) error {
	n := len(byRank)
	if enc != nil {
		for _, id := range enc.special {
			n = max(n, int(id)+1)
		}
	}
	tokens := make([]string, n)
	for rank, tok := range byRank {
		if tok == nil {
			continue
		}
		var sb strings.Builder
		for _, c := range tok {
			sb.WriteRune(tab.byteRune[c])
		}
		tokens[rank] = sb.String()
	}
	t.isSpecial = make([]bool, n)
	if enc != nil {
		for s, id := range enc.special {
			if int(id) < len(byRank) && byRank[id] != nil {
				return fmt.Errorf("rank %d is %s's special token %s, but the file gives it to a token", id, enc.name, s)
			}
			tokens[id] = s
			t.isSpecial[id] = true
		}
	}
	t.initTokens(tokens)
	return nil
}
