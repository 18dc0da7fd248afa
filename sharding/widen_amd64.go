package sharding

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The AVX2 kernels of widen_amd64.s: 32 (or 16) values per iteration.

//go:noescape
func widenMaxAVX2(dst *int32, src *uint16, n int, acc *[16]uint16)

//go:noescape
func copyMaxAVX2(dst *int32, src *int32, n int, acc *[8]uint32)

var hasAVX2 = cpu.X86.HasAVX2

// widenMax copies src into dst[:len(src)] as int32 and returns the largest
// value.
func widenMax(dst []int32, src []uint16) uint16 {
	dst = dst[:len(src)]
	n := len(src) &^ 31
	var m uint16
	if hasAVX2 && n > 0 {
		var acc [16]uint16
		widenMaxAVX2(&dst[0], &src[0], n, &acc)
		for _, x := range acc {
			m = max(m, x)
		}
	} else {
		n = 0
	}
	return max(m, widenMaxGo(dst[n:], src[n:]))
}

// copyMax copies src into dst[:len(src)] and returns the largest value
// as unsigned, so that a negative value counts as larger than any other.
func copyMax(dst, src []int32) uint32 {
	dst = dst[:len(src)]
	n := len(src) &^ 15
	var m uint32
	if hasAVX2 && n > 0 {
		var acc [8]uint32
		copyMaxAVX2(&dst[0], &src[0], n, &acc)
		for _, x := range acc {
			m = max(m, x)
		}
	} else {
		n = 0
	}
	return max(m, copyMaxGo(dst[n:], src[n:]))
}

// widen copies src into dst[:len(src)] as int32.
func widen(dst []int32, src []uint16) { widenMax(dst, src) }

//go:noescape
func narrowMaxAVX2(dst *uint16, src *int32, n int, acc *[8]uint32)

// narrowMax stores src into dst[:len(src)] as uint16 and returns the
// largest value of src as unsigned (a negative value counts as larger than
// any other): the caller checks that it fits before it uses dst.
func narrowMax(dst []uint16, src []int32) uint32 {
	dst = dst[:len(src)]
	n := len(src) &^ 15
	var m uint32
	if hasAVX2 && n > 0 {
		var acc [8]uint32
		narrowMaxAVX2(&dst[0], &src[0], n, &acc)
		for _, x := range acc {
			m = max(m, x)
		}
	} else {
		n = 0
	}
	return max(m, narrowMaxGo(dst[n:], src[n:]))
}

// prefetchLines hints that the n bytes at p (n > 0) will be read soon.
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n int)
