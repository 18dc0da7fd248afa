package sharding

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The SIMD kernels and their pure Go versions agree on every length and
// alignment, and on values at the edges of their ranges.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		for _, off := range []int{0, 1, 3} {
			u16 := make([]uint16, n+off)
			i32 := make([]int32, n+off)
			for i := range u16 {
				u16[i] = uint16(rng.Uint32())
				i32[i] = int32(rng.Uint32() >> uint(rng.IntN(32)))
			}
			if n > 0 && rng.IntN(3) == 0 {
				i32[off+rng.IntN(n)] = -1
			}
			src16, src32 := u16[off:], i32[off:]
			a, b := make([]int32, n), make([]int32, n)
			if m, w := widenMax(a, src16), widenMaxGo(b, src16); m != w || !slices.Equal(a, b) {
				t.Fatalf("widenMax n=%d off=%d: max %d vs %d", n, off, m, w)
			}
			widen(a, src16)
			if !slices.Equal(a, b) {
				t.Fatalf("widen n=%d off=%d", n, off)
			}
			if m, w := copyMax(a, src32), copyMaxGo(b, src32); m != w || !slices.Equal(a, b) || !slices.Equal(a, src32) {
				t.Fatalf("copyMax n=%d off=%d: max %d vs %d", n, off, m, w)
			}
			if m, w := maxU16(src16), widenMaxGo(b, src16); m != w {
				t.Fatalf("maxU16 n=%d off=%d: %d, want %d", n, off, m, w)
			}
			if m, w := maxU32(src32), copyMaxGo(b, src32); m != w {
				t.Fatalf("maxU32 n=%d off=%d: %d, want %d", n, off, m, w)
			}
			prefetchBytes(bytesOf(src16)) // any length and alignment, even 0
			c, d := make([]uint16, n), make([]uint16, n)
			small := make([]int32, n)
			for i := range small {
				small[i] = src32[i] & 0xFFFF
			}
			if m, w := narrowMax(c, small), narrowMaxGo(d, small); m != w || !slices.Equal(c, d) {
				t.Fatalf("narrowMax n=%d off=%d: max %d vs %d", n, off, m, w)
			}
			if m, w := narrowMax(c, src32), maxU32(src32); m != w {
				t.Fatalf("narrowMax max n=%d: %d vs %d", n, m, w)
			}
			// Bits: pack at every bit offset, unpack and count.
			mask := make([]uint8, n)
			for i := range mask {
				mask[i] = uint8(rng.IntN(2))
			}
			for _, at := range []int{0, 1, 7, 8, 13} {
				bits := make([]byte, (at+n+7)/8+1)
				packBits(bits, at, mask)
				got := make([]uint8, n)
				unpackBits(got, bits[:(at+n+7)/8], at)
				if !slices.Equal(got, mask) {
					t.Fatalf("packBits/unpackBits n=%d at=%d", n, at)
				}
				ones := 0
				for _, m := range mask {
					ones += int(m)
				}
				if c := countBits(bits, at, n); c != ones {
					t.Fatalf("countBits n=%d at=%d: %d, want %d", n, at, c, ones)
				}
				ref, _ := appendBits(nil, at, mask)
				if !slices.Equal(ref, bits[:len(ref)]) {
					t.Fatalf("packBits n=%d at=%d differs from the bit-by-bit reference", n, at)
				}
			}
		}
	}
}

// appendBits is the bit-by-bit reference for packBits.
func appendBits(bits []byte, at int, mask []uint8) ([]byte, int64) {
	end := at + len(mask)
	for len(bits) < (end+7)/8 {
		bits = append(bits, 0)
	}
	var ones int64
	for i, m := range mask {
		p := at + i
		bits[p>>3] |= m << (p & 7)
		ones += int64(m)
	}
	return bits, ones
}

func BenchmarkKernels(b *testing.B) {
	const n = 1100
	src := make([]uint16, n)
	s32 := make([]int32, n)
	for i := range src {
		src[i] = uint16(i * 7)
		s32[i] = int32(i * 7)
	}
	dst := make([]int32, n)
	d16 := make([]uint16, n)
	for _, k := range []struct {
		name string
		run  func()
	}{
		{"widenMax", func() { widenMax(dst, src) }},
		{"copyMax", func() { copyMax(dst, s32) }},
		{"narrowMax", func() { narrowMax(d16, s32) }},
		{"copy", func() { copy(dst, s32) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(n)
			for b.Loop() {
				k.run()
			}
		})
	}
}
