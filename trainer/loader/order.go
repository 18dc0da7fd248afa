package loader

import (
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/glmkit/glmkit/masking"
)

// Perm is a pseudorandom permutation of [0, n), computed one element at a
// time in O(1) time and space: nothing of size n is ever built, so a
// permutation of a billion rows costs as little as one of ten.
//
// It is a Feistel network on the smallest power of two ≥ n, 2^k, whose k
// bits are split into halves of ⌊k/2⌋ and ⌈k/2⌉ bits; each of its 8 rounds
// xors one half with a keyed hash (splitmix64's finaliser) of the other,
// which is a bijection on 2^k whatever the hash. Values ≥ n are mapped again
// until one falls in [0, n) ("cycle walking"), which stays a bijection on
// [0, n) and takes fewer than 2 rounds of the network on average, since
// 2^k < 2n. The construction is Levanter's (and Luby and Rackoff's); the
// output for a given (n, key) is part of glmkit's determinism contract.
//
// A Perm is a small value, safe for concurrent use.
type Perm struct {
	n            uint64
	rbits        uint
	lmask, rmask uint64
	keys         [permRounds]uint64
}

const permRounds = 8

// NewPerm returns the permutation of [0, n) selected by key.
func NewPerm(n, key uint64) Perm {
	p := Perm{n: n}
	if n < 2 {
		return p
	}
	k := uint(bits.Len64(n - 1))
	lbits := k / 2
	p.rbits = k - lbits
	p.lmask = 1<<lbits - 1
	p.rmask = 1<<p.rbits - 1
	for r := range p.keys {
		p.keys[r] = masking.Mix64(key + uint64(r+1)*0x9e3779b97f4a7c15)
	}
	return p
}

// Len is n.
func (p Perm) Len() uint64 { return p.n }

// At returns the element at position i, for 0 ≤ i < n. It panics if i is
// out of range.
func (p Perm) At(i uint64) uint64 {
	if i >= p.n {
		panic(fmt.Sprintf("loader: Perm.At(%d) out of range [0, %d)", i, p.n))
	}
	if p.n < 2 {
		return i
	}
	x := i
	for {
		l, r := x>>p.rbits, x&p.rmask
		for j := 0; j < permRounds; j += 2 {
			l ^= masking.Mix64(r^p.keys[j]) & p.lmask
			r ^= masking.Mix64(l^p.keys[j+1]) & p.rmask
		}
		x = l<<p.rbits | r
		if x < p.n {
			return x
		}
	}
}

// streamKey derives the key of one permutation from the loader seed, a
// stream (a dataset index, or mixStream) and an epoch or block number.
func streamKey(seed, stream, n uint64) uint64 {
	return masking.Mix64(masking.Mix64(masking.Mix64(seed^0x676c6d6b69742e6f)+stream) + n)
}

// mixStream is the stream of the mixing permutations, apart from every
// dataset index.
const mixStream = math.MaxUint64

// MixBlock is the resolution of dataset weights: weights are rounded to
// integer parts of MixBlock, and every MixBlock consecutive positions of a
// mixture hold exactly that many rows of each dataset.
const MixBlock = 10000

// mixer interleaves datasets by weight. Block b of the global order,
// positions [b·MixBlock, (b+1)·MixBlock), holds exactly parts[d] rows of
// dataset d, arranged by a permutation of the block: position b·MixBlock+o
// goes to slot s = π_b(o), and slot s belongs to the dataset d whose range
// [cum[d]−parts[d], cum[d]) holds it. Dataset d's draws are numbered in
// position order, so block b holds its draws b·parts[d] … (b+1)·parts[d]−1:
// proportions are exact in every block (to the rounding of the weights),
// and each dataset reads its own stream in order, whole epochs at a time.
// Numbering the draws inside a block takes one pass over it, kept in a
// mixCache of MixBlock entries: the state stays a position, and the cache
// is rebuilt after a seek.
type mixer struct {
	seed  uint64
	parts []uint64 // Σ parts = MixBlock
	cum   []uint64
}

// mixCache holds one block's dataset and draw number per position. Each
// goroutine that maps positions has its own.
type mixCache struct {
	block  uint64
	valid  bool
	ds     []uint16 // dataset of each position of the block
	k      []uint32 // its draw number within the block
	counts []uint32
}

func (m *mixer) newCache() *mixCache {
	return &mixCache{ds: make([]uint16, MixBlock), k: make([]uint32, MixBlock), counts: make([]uint32, len(m.parts))}
}

// Shares is the share of a mixture each weight gets, as a Loader mixes
// them: the weights rounded to parts of MixBlock, each at least one part.
// A weight below 1/MixBlock of their sum gets more than it asked for.
func Shares(weights []float64) ([]float64, error) {
	parts, err := quantize(weights)
	if err != nil {
		return nil, err
	}
	shares := make([]float64, len(parts))
	for i, p := range parts {
		shares[i] = float64(p) / MixBlock
	}
	return shares, nil
}

// quantize rounds weights to integer parts of MixBlock by largest
// remainder; every dataset gets at least one part.
func quantize(weights []float64) ([]uint64, error) {
	if len(weights) > MixBlock {
		return nil, fmt.Errorf("%d datasets; at most %d can be mixed", len(weights), MixBlock)
	}
	var sum float64
	for i, w := range weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("dataset %d has weight %v; want a finite number > 0", i, w)
		}
		sum += w
	}
	parts := make([]uint64, len(weights))
	rem := make([]float64, len(weights))
	left := uint64(MixBlock)
	for i, w := range weights {
		x := w / sum * MixBlock
		parts[i] = uint64(x)
		rem[i] = x - float64(parts[i])
		left -= parts[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for i := 0; left > 0; i = (i + 1) % len(order) {
		parts[order[i]]++
		left--
	}
	for i := range parts {
		for parts[i] == 0 {
			// Take a part from the largest dataset.
			big := 0
			for j := range parts {
				if parts[j] > parts[big] {
					big = j
				}
			}
			parts[big]--
			parts[i]++
		}
	}
	return parts, nil
}

func newMixer(seed uint64, parts []uint64) *mixer {
	m := &mixer{seed: seed, parts: parts, cum: make([]uint64, len(parts))}
	var c uint64
	for d, p := range parts {
		c += p
		m.cum[d] = c
	}
	return m
}

// at returns the dataset of global position g and the index of that draw
// in the dataset's own stream.
func (m *mixer) at(g uint64, c *mixCache) (d int, k uint64) {
	b, o := g/MixBlock, g%MixBlock
	if !c.valid || c.block != b {
		m.fill(c, b)
	}
	d = int(c.ds[o])
	return d, b*m.parts[d] + uint64(c.k[o])
}

// fill numbers the draws of block b.
func (m *mixer) fill(c *mixCache, b uint64) {
	p := NewPerm(MixBlock, streamKey(m.seed, mixStream, b))
	clear(c.counts)
	for o := range uint64(MixBlock) {
		s := p.At(o)
		lo, hi := 0, len(m.cum)-1 // the first d with cum[d] > s
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if m.cum[mid] > s {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		c.ds[o] = uint16(lo)
		c.k[o] = c.counts[lo]
		c.counts[lo]++
	}
	c.block, c.valid = b, true
}

// order is the global order of a loader's rows: position g of the stream,
// across epochs, maps to a dataset and a row. Dataset d's draws k = 0, 1, …
// run through its epochs, epoch e = k / units visiting every unit once in
// the order of NewPerm(units, streamKey(seed, d, e)); with copies = N > 1
// (a build with N mask epochs, read one copy per epoch), unit u of epoch e
// is row u·N + e mod N.
type order struct {
	seed     uint64
	ds       []dsOrder
	mix      *mixer // nil for one dataset
	epochLen uint64 // Σ units: positions per loader epoch
}

type dsOrder struct {
	units  uint64
	copies uint64
}

// at maps global position g to a dataset and a row of it; c is the
// caller's cache for mixtures (nil for one dataset).
func (o *order) at(g uint64, c *mixCache) (d int, row int64) {
	k := g
	if o.mix != nil {
		d, k = o.mix.at(g, c)
	}
	ds := o.ds[d]
	e, u := k/ds.units, k%ds.units
	u = NewPerm(ds.units, streamKey(o.seed, uint64(d), e)).At(u)
	if ds.copies > 1 {
		return d, int64(u*ds.copies + e%ds.copies)
	}
	return d, int64(u)
}
