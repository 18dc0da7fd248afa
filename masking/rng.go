package masking

import (
	"math/bits"
	"math/rand/v2"
)

// rng draws from a PCG stream (math/rand/v2) with helpers written here, so
// the sequence of draws for a given seed is fixed by this package alone and
// not by the algorithms behind rand.Rand's methods.
type rng struct{ pcg rand.PCG }

// mix64 is splitmix64's finaliser, a bijection. trainer (dropout) and
// trainer/loader (the order) have copies of their own, on purpose: each is
// part of its package's determinism contract, and masking, a leaf, imports
// no glmkit package.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seed starts the stream of one (seed, key, epoch) triple.
func (r *rng) seed(seed, key uint64, epoch uint32) {
	r.pcg.Seed(mix64(seed+mix64(uint64(epoch)+0x9e3779b97f4a7c15)), mix64(key))
}

// float64 is uniform in [0, 1).
func (r *rng) float64() float64 { return float64(r.pcg.Uint64()>>11) * 0x1p-53 }

// intn is uniform in [0, n), n > 0, without bias (Lemire's method).
func (r *rng) intn(n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.pcg.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.pcg.Uint64(), un)
		}
	}
	return int(hi)
}

// shuffle permutes s uniformly (Fisher–Yates).
func shuffle[T any](r *rng, s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s[i], s[j] = s[j], s[i]
	}
}
