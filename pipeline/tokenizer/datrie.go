package tokenizer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// daTrie is a double-array trie over byte strings, read-only once built:
// the piece dictionary of the SentencePiece models (unigram.go, spbpe.go).
// A step is two array loads and a compare, with no map and no allocation.
//
//	t, err := buildDATrie(keys, values)  // values ≥ 0; duplicate keys: last wins
//	s := t.child(daRoot, b)              // -1 when there is no such edge
//	v := t.value(s)                      // -1 when no key ends at s
//	v := t.lookup(key)                   // exact match, -1 when absent
type daTrie struct {
	nodes []daNode
}

// daNode is one slot: base, check and value side by side, so that a step
// and its value touch one cache line.
type daNode struct {
	base  int32
	check int32 // parent of a used slot; -1 for free slots and the root
	val   int32 // value of the key ending at the slot, or -1
}

// daRoot is the root node of every daTrie.
const daRoot = 0

// child returns the node reached from s by byte b, or -1.
func (t *daTrie) child(s int32, b byte) int32 {
	c := t.nodes[s].base + int32(b)
	if uint32(c) < uint32(len(t.nodes)) && t.nodes[c].check == s {
		return c
	}
	return -1
}

// value returns the value of the key ending at node s, or -1.
func (t *daTrie) value(s int32) int32 { return t.nodes[s].val }

// walk follows key from node s; -1 when it leaves the trie.
func (t *daTrie) walk(s int32, key []byte) int32 {
	for _, b := range key {
		if s = t.child(s, b); s < 0 {
			return -1
		}
	}
	return s
}

// lookup returns the value of key, or -1.
func (t *daTrie) lookup(key []byte) int32 {
	s := t.walk(daRoot, key)
	if s < 0 {
		return -1
	}
	return t.nodes[s].val
}

// longestPiece returns the value and length of the longest non-empty w[:n]
// such that the key reaching s followed by w[:n] is in the trie and n is a
// character boundary of w (w valid UTF-8), or -1 and 0 when there is none:
// WordPiece's greedy longest match, from the root for a word's first piece
// and from the prefix's node for the others.
func (t *daTrie) longestPiece(s int32, w []byte) (val int32, n int) {
	val = -1
	for i, b := range w {
		if s = t.child(s, b); s < 0 {
			break
		}
		if v := t.nodes[s].val; v >= 0 && (i+1 == len(w) || utf8.RuneStart(w[i+1])) {
			val, n = v, i+1
		}
	}
	return val, n
}

// buildDATrie builds a trie of keys (non-empty) with values[i] for keys[i].
func buildDATrie(keys []string, values []int32) (*daTrie, error) {
	if len(keys) != len(values) {
		return nil, fmt.Errorf("trie: %d keys, %d values", len(keys), len(values))
	}
	// Sort key indices; equal keys keep input order, so the last one wins.
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := strings.Compare(keys[a], keys[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})

	b := &daBuilder{t: &daTrie{}, firstFree: 1}
	b.grow(256)
	b.used[0] = true
	var labels []byte
	var starts []int
	queue := []daPending{{s: daRoot, lo: 0, hi: len(idx), depth: 0}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		// Keys ending exactly here, and the distinct next bytes.
		labels, starts = labels[:0], starts[:0]
		i := p.lo
		for ; i < p.hi && len(keys[idx[i]]) == p.depth; i++ {
			b.t.nodes[p.s].val = values[idx[i]]
		}
		for i < p.hi {
			c := keys[idx[i]][p.depth]
			labels = append(labels, c)
			starts = append(starts, i)
			for i < p.hi && keys[idx[i]][p.depth] == c {
				i++
			}
		}
		starts = append(starts, p.hi)
		if len(labels) == 0 {
			continue
		}
		base := b.findBase(labels)
		b.t.nodes[p.s].base = base
		for k, l := range labels {
			c := base + int32(l)
			b.used[c] = true
			b.t.nodes[c].check = p.s
			queue = append(queue, daPending{s: c, lo: starts[k], hi: starts[k+1], depth: p.depth + 1})
		}
	}
	return b.t, nil
}

// daBuilder is the state of buildDATrie: the trie so far and which of its
// slots are taken.
type daBuilder struct {
	t         *daTrie
	used      []bool
	firstFree int // no free slot below it (but the root's)
}

// daPending is a node of the build: the range [lo, hi) of sorted keys that
// share the prefix of length depth, placed at slot s.
type daPending struct {
	s      int32
	lo, hi int
	depth  int
}

// grow makes the trie at least n slots long, the new ones free.
func (b *daBuilder) grow(n int) {
	if len(b.t.nodes) >= n {
		return
	}
	n = max(n, 2*len(b.t.nodes))
	for len(b.t.nodes) < n {
		b.t.nodes = append(b.t.nodes, daNode{check: -1, val: -1})
	}
	b.used = append(b.used, make([]bool, n-len(b.used))...)
}

// findBase returns the first base ≥ 1 - labels[0] from the first free slot
// on for which every base+label is free, growing the trie to hold them.
func (b *daBuilder) findBase(labels []byte) int32 {
	for b.firstFree < len(b.used) && b.used[b.firstFree] {
		b.firstFree++
	}
	b0 := int32(labels[0])
	base := int32(b.firstFree) - b0
	if base < 1-b0 {
		base = 1 - b0
	}
	for {
		b.grow(int(base) + int(labels[len(labels)-1]) + 1)
		ok := true
		for _, l := range labels {
			if b.used[int(base)+int(l)] {
				ok = false
				break
			}
		}
		if ok {
			return base
		}
		base++
	}
}
