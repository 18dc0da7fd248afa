package masking

import (
	"math/bits"
	"math/rand/v2"
)

// rng draws from a PCG stream (math/rand/v2) with helpers written here, so
// the sequence of draws for a given seed is fixed by this package alone and
// not by the algorithms behind rand.Rand's methods.
type rng struct{ pcg rand.PCG }

// Mix64 is splitmix64's finaliser, a bijection on uint64 with full
// avalanche. It is the one definition of it in glmkit (the CUDA kernels
// aside, which compute the same on the GPU): the masks' seeds here, the
// loader's order (trainer/loader), the dropout masks' keys (trainer) and
// the validation split (pipeline) are all made of it, and their golden and
// determinism tests pin its output, so it never changes; a contract that
// needs another mix calls another function.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seed starts the stream of one (seed, key, epoch) triple.
func (r *rng) seed(seed, key uint64, epoch uint32) {
	r.pcg.Seed(Mix64(seed+Mix64(uint64(epoch)+0x9e3779b97f4a7c15)), Mix64(key))
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
