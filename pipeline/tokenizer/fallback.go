package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	sugar "github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"
)

// fallback encodes tokenizer.json kinds we do not implement (Unigram,
// Split-regex pre-tokenizers, ...) with github.com/sugarme/tokenizer. Its
// panics become errors. It is slow and can differ from Hugging Face on
// non-ASCII text; Tokenizer.Warning says so.
type fallback struct {
	path string
	tk   *sugar.Tokenizer // sugarme guards its own caches
}

// newFallback loads path with sugarme, with added_tokens removed so that
// literal special-token strings stay plain text.
func newFallback(path string, data []byte, tj *tokenizerJSON) (t *Tokenizer, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: not a tokenizer.json: %w", path, err)
	}
	top["added_tokens"] = json.RawMessage("[]")
	stripped, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("tokenizer: %s: sugarme/tokenizer panicked while loading: %v", path, r)
		}
	}()
	tk, err := pretrained.FromReader(bytes.NewReader(stripped))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: sugarme/tokenizer: %w", path, err)
	}
	vocab, err := fallbackVocab(tj.Model.Vocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: model vocab: %w", path, err)
	}
	n := 0
	for _, id := range vocab {
		n = max(n, int(id)+1)
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("tokenizer: %s: negative id %d in added_tokens", path, a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	tokens := make([]string, n)
	for s, id := range vocab {
		if id >= 0 {
			tokens[id] = s
		}
	}
	t = &Tokenizer{kind: KindFallback, sha: sha256Hex(data), warning: FallbackWarning,
		fb: &fallback{path: path, tk: tk}}
	t.isSpecial = make([]bool, n)
	for _, a := range tj.AddedTokens {
		tokens[a.ID] = a.Content
		t.isSpecial[a.ID] = true
	}
	t.initTokens(tokens)
	t.assignSpecials(func(s string) (int32, bool) {
		for _, a := range tj.AddedTokens {
			if a.Content == s {
				return a.ID, true
			}
		}
		id, ok := vocab[s]
		return id, ok
	})
	t.computeSentenceEnds(func(id int) []byte {
		// SentencePiece-style pieces spell a newline as a byte token.
		if t.tokens[id] == "<0x0A>" {
			return []byte("\n")
		}
		return []byte(t.tokens[id])
	})
	return t, nil
}

// fallbackVocab reads a model vocabulary: an object (token → id) or a
// Unigram list of [piece, score] whose index is the id.
func fallbackVocab(raw json.RawMessage) (map[string]int32, error) {
	var obj map[string]int32
	if err := json.Unmarshal(raw, &obj); err == nil {
		return obj, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	obj = make(map[string]int32, len(list))
	for i, e := range list {
		var pair []json.RawMessage
		var piece string
		if err := json.Unmarshal(e, &pair); err != nil || len(pair) == 0 || json.Unmarshal(pair[0], &piece) != nil {
			return nil, fmt.Errorf("entry %d: want [piece, score]", i)
		}
		if _, dup := obj[piece]; !dup {
			obj[piece] = int32(i)
		}
	}
	return obj, nil
}

func (f *fallback) encode(dst []int32, text []byte) (out []int32, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, fmt.Errorf("tokenizer: %s: sugarme/tokenizer panicked: %v", f.path, r)
		}
	}()
	enc, err := f.tk.EncodeSingle(string(text), false)
	if err != nil {
		return dst, fmt.Errorf("tokenizer: %s: sugarme/tokenizer: %w", f.path, err)
	}
	for _, id := range enc.Ids {
		dst = append(dst, int32(id))
	}
	return dst, nil
}

// decode joins the tokens' strings with sugarme's decoder where it can, and
// by name otherwise.
func (f *fallback) decode(t *Tokenizer, ids []int32) (s string) {
	base := make([]int, 0, len(ids))
	for _, id := range ids {
		if id < 0 || int(id) >= t.baseSize || t.isSpecial[id] {
			base = nil
			break
		}
		base = append(base, int(id))
	}
	if base != nil {
		ok := func() (ok bool) {
			defer func() {
				if recover() != nil {
					ok = false
				}
			}()
			s = f.tk.Decode(base, false)
			return true
		}()
		if ok {
			return s
		}
	}
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(t.Token(id))
	}
	return sb.String()
}
