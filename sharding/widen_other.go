//go:build !amd64

package sharding

import "unsafe"

// widenMax copies src into dst[:len(src)] as int32 and returns the largest
// value.
func widenMax(dst []int32, src []uint16) uint16 { return widenMaxGo(dst, src) }

// copyMax copies src into dst[:len(src)] and returns the largest value
// as unsigned, so that a negative value counts as larger than any other.
func copyMax(dst, src []int32) uint32 { return copyMaxGo(dst, src) }

// widen copies src into dst[:len(src)] as int32.
func widen(dst []int32, src []uint16) { widenGo(dst, src) }

// narrowMax stores src into dst[:len(src)] as uint16 and returns the
// largest value of src as unsigned (a negative value counts as larger than
// any other): the caller checks that it fits before it uses dst.
func narrowMax(dst []uint16, src []int32) uint32 { return narrowMaxGo(dst, src) }

// prefetchLines hints that the n bytes at p will be read soon: nothing
// without a prefetch instruction.
func prefetchLines(p unsafe.Pointer, n int) {}
