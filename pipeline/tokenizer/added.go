package tokenizer

import (
	"errors"
	"unicode/utf8"
)

// Added tokens (tokenizer.json's added_tokens) that glmkit matches in text:
// the non-special ones, as Hugging Face does (leftmost-longest, with
// single_word, lstrip and rstrip; those with normalized=false on the raw
// text, the others on each normalized segment). Special tokens, and any
// token that is one of GLM's command tokens, are never matched: a literal
// "<|endoftext|>" or "[MASK]" in a document is ordinary text
// (decisions.md §2).

type addedSeg struct {
	start, end int32
	id         int32 // -1: text
}

type addedEntry struct {
	id                         int32
	singleWord, lstrip, rstrip bool
}

// addedTrie is a byte trie of token strings. root holds the root's
// children (0: none), so that a position no token starts at, nearly all of
// them, costs one load.
type addedTrie struct {
	nodes []addedNode
	root  [256]int32
}

type addedNode struct {
	next  map[byte]int32
	entry int32 // index into addedVocab.entries, -1 when no token ends here
}

func (t *addedTrie) insert(s string, entry int32) {
	if len(t.nodes) == 0 {
		t.nodes = append(t.nodes, addedNode{entry: -1})
	}
	n := int32(0)
	for i := 0; i < len(s); i++ {
		nx, ok := t.nodes[n].next[s[i]]
		if !ok {
			if t.nodes[n].next == nil {
				t.nodes[n].next = make(map[byte]int32)
			}
			t.nodes = append(t.nodes, addedNode{entry: -1})
			nx = int32(len(t.nodes) - 1)
			t.nodes[n].next[s[i]] = nx
			if n == 0 {
				t.root[s[i]] = nx
			}
		}
		n = nx
	}
	if t.nodes[n].entry < 0 {
		t.nodes[n].entry = entry
	}
}

// longest returns the entry and end of the longest token at text[i], or -1.
func (t *addedTrie) longest(text []byte, i int) (int32, int) {
	if i >= len(text) || t.root[text[i]] == 0 {
		return -1, 0
	}
	best, end := int32(-1), 0
	n := int32(0)
	for j := i; j < len(text); j++ {
		nx, ok := t.nodes[n].next[text[j]]
		if !ok {
			break
		}
		n = nx
		if e := t.nodes[n].entry; e >= 0 {
			best, end = e, j+1
		}
	}
	return best, end
}

type addedVocab struct {
	entries       []addedEntry
	raw, norm     addedTrie
	hasNormalized bool
	tab           *charTables
}

// errAddedOverlap is Hugging Face's "AddedVocabulary bad split" panic: an
// lstrip token inside the whitespace that the previous token's rstrip took.
var errAddedOverlap = errors.New("an added token with lstrip lies inside the spaces the previous added token's rstrip took: Hugging Face panics on this text (AddedVocabulary bad split)")

// split appends the segments of text (added tokens and the text between
// them) to dst, matching the normalized tokens when normalized is set.
// Offsets are text's plus base.
//
// As in Hugging Face, a token's match may overlap the whitespace the
// previous token's rstrip took: it is still a token, unless lstrip leaves
// it empty (dropped) or reversed (errAddedOverlap).
func (a *addedVocab) split(dst []addedSeg, text []byte, normalized bool, base int32) ([]addedSeg, error) {
	t := &a.raw
	if normalized {
		t = &a.norm
	}
	startOffset := 0
	for p := 0; p < len(text); {
		e, end := t.longest(text, p)
		if e < 0 {
			p++
			continue
		}
		ent := a.entries[e]
		s, stop := p, end
		p = end // the iteration goes on after the match, whatever is done with it
		if ent.singleWord {
			startSpace := s == 0 || !a.endsWithWord(text[:s])
			stopSpace := stop == len(text) || !a.startsWithWord(text[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if ent.lstrip {
			s = max(a.spaceLeftmostAtEnd(text[:s]), startOffset)
		}
		if ent.rstrip {
			stop += a.spaceRightmostAtStart(text[stop:])
		}
		if s > stop {
			return dst, errAddedOverlap
		}
		if s == stop {
			continue
		}
		if startOffset < s {
			dst = append(dst, addedSeg{start: base + int32(startOffset), end: base + int32(s), id: -1})
		}
		dst = append(dst, addedSeg{start: base + int32(s), end: base + int32(stop), id: ent.id})
		startOffset = stop
	}
	if startOffset != len(text) || len(text) == 0 {
		dst = append(dst, addedSeg{start: base + int32(startOffset), end: base + int32(len(text)), id: -1})
	}
	return dst, nil
}

// Rust regex's \w (the single_word test) and \s (lstrip, rstrip).
func isRustWord(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || (r >= '0' && r <= '9') || (r|0x20 >= 'a' && r|0x20 <= 'z')
	}
	return inRanges(hfRustWord[:], r)
}

func (a *addedVocab) endsWithWord(b []byte) bool {
	r, _ := utf8.DecodeLastRune(b)
	return len(b) > 0 && isRustWord(r)
}

func (a *addedVocab) startsWithWord(b []byte) bool {
	r, _ := utf8.DecodeRune(b)
	return len(b) > 0 && isRustWord(r)
}

func (a *addedVocab) spaceLeftmostAtEnd(b []byte) int {
	i := len(b)
	for i > 0 {
		r, sz := utf8.DecodeLastRune(b[:i])
		if a.tab.class(r)&cS == 0 {
			break
		}
		i -= sz
	}
	return i
}

func (a *addedVocab) spaceRightmostAtStart(b []byte) int {
	i := 0
	for i < len(b) {
		r, sz := utf8.DecodeRune(b[i:])
		if a.tab.class(r)&cS == 0 {
			break
		}
		i += sz
	}
	return i
}
