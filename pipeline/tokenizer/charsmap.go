package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// charsmap is a precompiled character map: SentencePiece's
// normalizer_spec.precompiled_charsmap, which Hugging Face's "Precompiled"
// normalizer carries too (base64 in tokenizer.json). The blob is
//
//	uint32 trie size in bytes (little endian)
//	a darts-clone double-array trie (uint32 units) whose keys are UTF-8
//	  source strings and whose values are offsets into
//	the normalized strings, each ending with NUL.
//
// API (read-only after newCharsmap; safe for concurrent use; no allocation):
//
//	c, err := newCharsmap(blob)     // validates every trie node and value
//	dst = c.normalize(dst, src)     // SentencePiece semantics (below)
//	dst = c.normalizeHF(dst, src)   // Hugging Face Precompiled semantics
//	rep, n := c.match(src)          // longest rule at src[0:]; n == 0: none
//
// SentencePiece (normalizer.cc, NormalizePrefix) and Hugging Face
// (spm_precompiled's Precompiled::normalize_string) read the same blob
// differently:
//
//   - SentencePiece scans the text from left to right and, at each
//     position, takes the LONGEST key that is a prefix of the rest of the
//     text (a key may span several characters: "ｶﾞ" → "ガ"); with no match
//     it copies one character, or writes U+FFFD for one invalid byte.
//     normalize does this (and nothing else: the whitespace rules of a
//     .model's normalizer_spec live in sentencepiece.go).
//   - Hugging Face splits the text into extended grapheme clusters first.
//     A cluster shorter than 6 bytes is looked up whole, and when any key is
//     a prefix of it the FIRST (shortest) such key's value replaces the
//     whole cluster (so "Ａ\u0301" becomes "A": the mark is dropped);
//     otherwise, and for clusters of 6 bytes or more, each character is
//     looked up on its own (shortest key again) and copied when it has none.
//     normalizeHF does this; its input must be valid UTF-8 (HF's always is).
type charsmap struct {
	units []uint32 // double-array units
	norm  []byte   // NUL-terminated normalized strings
	// pass[b]: no key starts with byte b, so a character starting with b
	// is copied unchanged (the ASCII fast path).
	pass [256]bool
	// passASCII[b] (ASCII b): b alone is not a key and no key continues b
	// with an ASCII byte, so b before an ASCII byte (or at the end) is
	// copied unchanged. In nmt_nfkc the letters start keys only with a
	// combining mark after them.
	passASCII [128]bool
}

// Double-array unit fields (darts-clone's DoubleArrayUnit).
func daHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func daValue(u uint32) uint32  { return u & (1<<31 - 1) }
func daLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func daOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }

// maxCharsmapResults is SentencePiece's Normalizer::kMaxTrieResultsSize:
// it keeps at most this many prefix matches per position.
const maxCharsmapResults = 32

// newCharsmap parses and validates a precompiled charsmap blob. Every node
// reachable in the trie is visited once: every child index must lie in the
// array and every value must point at a NUL-terminated string, so that
// lookups never leave the blob (SentencePiece does not check; a broken blob
// reads past its end there).
func newCharsmap(blob []byte) (*charsmap, error) {
	if len(blob) <= 4 {
		return nil, errors.New("precompiled charsmap: blob too short")
	}
	size := binary.LittleEndian.Uint32(blob)
	body := blob[4:]
	if uint64(size) > uint64(len(body)) {
		return nil, fmt.Errorf("precompiled charsmap: trie size %d exceeds the blob (%d bytes after the size)", size, len(body))
	}
	n := int(size) / 4
	if n == 0 {
		return nil, errors.New("precompiled charsmap: empty trie")
	}
	c := &charsmap{units: make([]uint32, n), norm: body[size:]}
	for i := range c.units {
		c.units[i] = binary.LittleEndian.Uint32(body[4*i:])
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	root := daOffset(c.units[0])
	for b := range c.pass {
		id := root ^ uint32(b)
		c.pass[b] = b == 0 || int(id) >= n || daLabel(c.units[id]) != uint32(b)
		if b >= 0x80 {
			continue
		}
		if c.pass[b] {
			c.passASCII[b] = true
			continue
		}
		u := c.units[id]
		if daHasLeaf(u) {
			continue // b alone is a key
		}
		base := id ^ daOffset(u)
		ok := true
		for l := uint32(1); l < 0x80; l++ {
			if child := base ^ l; int(child) < n && daLabel(c.units[child]) == l {
				ok = false
				break
			}
		}
		c.passASCII[b] = ok
	}
	return c, nil
}

// validate walks the whole trie from the root.
func (c *charsmap) validate() error {
	n := uint32(len(c.units))
	seen := make([]bool, n)
	stack := []uint32{0}
	seen[0] = true
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		base := id ^ daOffset(c.units[id])
		for label := uint32(1); label < 256; label++ {
			child := base ^ label
			if child >= n || daLabel(c.units[child]) != label {
				continue
			}
			if daHasLeaf(c.units[child]) {
				leaf := child ^ daOffset(c.units[child])
				if leaf >= n {
					return fmt.Errorf("precompiled charsmap: trie unit %d: leaf index %d outside the trie (%d units)", child, leaf, n)
				}
				v := daValue(c.units[leaf])
				if int64(v) >= int64(len(c.norm)) {
					return fmt.Errorf("precompiled charsmap: trie unit %d: value %d outside the normalized strings (%d bytes)", leaf, v, len(c.norm))
				}
				if !containsNUL(c.norm[v:]) {
					return fmt.Errorf("precompiled charsmap: normalized string at %d has no terminating NUL", v)
				}
			}
			if !seen[child] {
				seen[child] = true
				stack = append(stack, child)
			}
		}
	}
	return nil
}

func containsNUL(b []byte) bool {
	for _, x := range b {
		if x == 0 {
			return true
		}
	}
	return false
}

// str returns the NUL-terminated normalized string at offset v (validated).
func (c *charsmap) str(v uint32) []byte {
	s := c.norm[v:]
	for i, x := range s {
		if x == 0 {
			return s[:i:i]
		}
	}
	return s // not reached after validate
}

// match returns the replacement of the longest key that is a prefix of src
// (among the first maxCharsmapResults matches, as SentencePiece keeps) and
// its length in bytes; n is 0 when no key matches.
func (c *charsmap) match(src []byte) (rep []byte, n int) {
	units := c.units
	id := daOffset(units[0]) // node 0 is the root: id = 0 ^ offset
	found := 0
	var best uint32
	for i, b := range src {
		if b == 0 {
			break // keys never hold NUL; darts-clone's labels never match it
		}
		id ^= uint32(b)
		if int(id) >= len(units) {
			break
		}
		u := units[id]
		if daLabel(u) != uint32(b) {
			break
		}
		id ^= daOffset(u)
		if daHasLeaf(u) {
			if found < maxCharsmapResults {
				n, best = i+1, daValue(units[id])
			}
			found++
		}
	}
	if n == 0 {
		return nil, 0
	}
	return c.str(best), n
}

// first returns the replacement of the shortest key that is a prefix of s
// (Hugging Face's Precompiled::transform); ok is false when none matches.
func (c *charsmap) first(s []byte) (rep []byte, ok bool) {
	units := c.units
	id := daOffset(units[0])
	for _, b := range s {
		if b == 0 {
			return nil, false
		}
		id ^= uint32(b)
		if int(id) >= len(units) {
			return nil, false
		}
		u := units[id]
		if daLabel(u) != uint32(b) {
			return nil, false
		}
		id ^= daOffset(u)
		if daHasLeaf(u) {
			return c.str(daValue(units[id])), true
		}
	}
	return nil, false
}

// replacementChar is U+FFFD in UTF-8.
const replacementChar = "\uFFFD"

// normalize appends src with every rule applied, SentencePiece's way:
// longest match at each position, one character copied where none
// matches, U+FFFD for each byte of an invalid UTF-8 sequence.
func (c *charsmap) normalize(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		b := src[i]
		if b < utf8.RuneSelf && (c.pass[b] || (c.passASCII[b] && (i+1 == len(src) || src[i+1] < utf8.RuneSelf))) {
			dst = append(dst, b)
			i++
			continue
		}
		rep, n := c.match(src[i:])
		if n > 0 {
			dst = append(dst, rep...)
			i += n
			continue
		}
		_, n = utf8.DecodeRune(src[i:])
		if n == 1 && b >= utf8.RuneSelf {
			dst = append(dst, replacementChar...)
		} else {
			dst = append(dst, src[i:i+n]...)
		}
		i += n
	}
	return dst
}

// normalizeHF appends src (valid UTF-8) normalized as Hugging Face's
// Precompiled normalizer does: grapheme by grapheme, shortest match.
func (c *charsmap) normalizeHF(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		b := src[i]
		if b < utf8.RuneSelf && c.passASCII[b] && (i+1 == len(src) || src[i+1] < utf8.RuneSelf) && b != '\r' {
			// An ASCII character followed by ASCII is a grapheme of its own
			// (CR LF is the one ASCII cluster of two; '\r' is not passed).
			dst = append(dst, b)
			i++
			continue
		}
		g := nextGrapheme(src[i:])
		i += len(g)
		if len(g) < 6 {
			if rep, ok := c.first(g); ok {
				dst = append(dst, rep...)
				continue
			}
		}
		for k := 0; k < len(g); {
			_, n := utf8.DecodeRune(g[k:])
			if rep, ok := c.first(g[k : k+n]); ok {
				dst = append(dst, rep...)
			} else {
				dst = append(dst, g[k:k+n]...)
			}
			k += n
		}
	}
	return dst
}

// nextGrapheme returns the extended grapheme cluster at the start of s
// (UAX #29, through github.com/rivo/uniseg: Unicode 15.0; Hugging Face uses
// the unicode-segmentation crate). s must not be empty.
func nextGrapheme(s []byte) []byte {
	g, _, _, _ := uniseg.FirstGraphemeCluster(s, -1)
	if len(g) == 0 {
		return s[:1]
	}
	return g
}
