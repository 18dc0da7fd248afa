package sharding

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The AVX2 kernels of widen_amd64.s, 32 (or 16) values per iteration,
// return the largest source value (as unsigned).

//go:noescape
func widenMaxAVX2(dst *int32, src *uint16, n int) uint16

//go:noescape
func copyMaxAVX2(dst *int32, src *int32, n int) uint32

//go:noescape
func narrowMaxAVX2(dst *uint16, src *int32, n int) uint32

var hasAVX2 = cpu.X86.HasAVX2

// widenMax copies src into dst[:len(src)] as int32 and returns the largest
// value.
func widenMax(dst []int32, src []uint16) uint16 { return split(dst, src, 32, widenMaxAVX2, widenMaxGo) }

// copyMax copies src into dst[:len(src)] and returns the largest value
// as unsigned, so that a negative value counts as larger than any other.
func copyMax(dst, src []int32) uint32 { return split(dst, src, 16, copyMaxAVX2, copyMaxGo) }

// widen copies src into dst[:len(src)] as int32.
func widen(dst []int32, src []uint16) { widenMax(dst, src) }

// narrowMax stores src into dst[:len(src)] as uint16 and returns the
// largest value of src as unsigned (a negative value counts as larger than
// any other): the caller checks that it fits before it uses dst.
func narrowMax(dst []uint16, src []int32) uint32 {
	return split(dst, src, 16, narrowMaxAVX2, narrowMaxGo)
}

// split runs kernel, an AVX2 kernel that takes step values (a power of
// two) at a time, over the longest prefix of src it can take (none without
// AVX2) and scalar over the rest, and returns the larger of their maxima.
func split[D, S any, M uint16 | uint32](dst []D, src []S, step int, kernel func(d *D, s *S, n int) M, scalar func([]D, []S) M) M {
	dst = dst[:len(src)]
	n := len(src) &^ (step - 1)
	var m M
	if hasAVX2 && n > 0 {
		m = kernel(&dst[0], &src[0], n)
	} else {
		n = 0
	}
	return max(m, scalar(dst[n:], src[n:]))
}

// prefetchLines hints that the n bytes at p (n > 0) will be read soon.
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n int)
