package tokenizer

import (
	"hash/maphash"
	"math/bits"
)

// pairTable maps a pair of token ids (pairKey) to rank<<32 | merged id: the
// merges of a BPE model. Most lookups while merging are misses, so a bit
// filter in front (16 bits per pair, in cache) answers them without
// touching the table; the table is open-addressed, keys and values side by
// side. Read-only once built.
type pairTable struct {
	slots  []pairSlot
	shift  uint // 64 − log2(len(slots))
	filter []uint64
	fshift uint // 64 − log2(filter bits)
	n      int
}

type pairSlot struct {
	key uint64
	val uint64 // rank<<32 | id, with pairUsed set; 0: empty
}

const pairUsed = 1 << 63

func newPairTable(n int) *pairTable {
	size := 1 << max(4, bits.Len(uint(2*n)))
	fbits := 1 << max(9, bits.Len(uint(16*n)))
	return &pairTable{slots: make([]pairSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size))),
		filter: make([]uint64, fbits/64), fshift: uint(64 - bits.TrailingZeros(uint(fbits)))}
}

func pairHash(k uint64) uint64 { return (k ^ k>>29) * 0x9E3779B97F4A7C15 }

// set adds or replaces the merge of a pair (a later duplicate replaces an
// earlier one, as Hugging Face's map does).
func (t *pairTable) set(k, v uint64) {
	h := pairHash(k)
	f := h >> t.fshift
	t.filter[f>>6] |= 1 << (f & 63)
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.val == 0 {
			s.key, s.val = k, v|pairUsed
			t.n++
			return
		}
		if s.key == k {
			s.val = v | pairUsed
			return
		}
	}
}

// get returns the merge of pair k.
func (t *pairTable) get(k uint64) (uint64, bool) {
	h := pairHash(k)
	if f := h >> t.fshift; t.filter[f>>6]&(1<<(f&63)) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.val == 0 {
			return 0, false
		}
		if s.key == k {
			return s.val &^ pairUsed, true
		}
	}
}

// maxKeyLen returns the length of m's longest key.
func maxKeyLen(m map[string]int32) int {
	n := 0
	for k := range m {
		n = max(n, len(k))
	}
	return n
}

// stringFilter answers "certainly not a key" for a string set without the
// map lookup: most pieces of CJK text are no token, and a miss in a map of
// 200,000 long keys costs more than a hash and one bit.
type stringFilter struct {
	seed  maphash.Seed
	bits  []uint64
	shift uint
}

func newStringFilter(m map[string]int32) *stringFilter {
	n := 1 << max(9, bits.Len(uint(16*len(m))))
	f := &stringFilter{seed: maphash.MakeSeed(), bits: make([]uint64, n/64), shift: uint(64 - bits.TrailingZeros(uint(n)))}
	for k := range m {
		h := maphash.String(f.seed, k) >> f.shift
		f.bits[h>>6] |= 1 << (h & 63)
	}
	return f
}

func (f *stringFilter) mayHave(b []byte) bool {
	h := maphash.Bytes(f.seed, b) >> f.shift
	return f.bits[h>>6]&(1<<(h&63)) != 0
}
