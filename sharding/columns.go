package sharding

import (
	"encoding/binary"
	"unsafe"

	"github.com/glmkit/glmkit/masking"
)

// Ints is one row's values of an id or position column, as the shard
// stores them: uint16 (format 2's narrow columns) or int32. It points into
// the shard's mapping and is read-only; AppendTo and At widen to int32.
type Ints struct {
	u16  []uint16
	i32  []int32
	wide bool // the values are i32
}

// Len is the number of values.
func (c Ints) Len() int {
	if c.wide {
		return len(c.i32)
	}
	return len(c.u16)
}

// At returns value i as an int32.
func (c Ints) At(i int) int32 {
	if c.wide {
		return c.i32[i]
	}
	return int32(c.u16[i])
}

// AppendTo appends the values to dst as int32.
func (c Ints) AppendTo(dst []int32) []int32 {
	if c.wide {
		return append(dst, c.i32...)
	}
	n := len(dst)
	dst = growLen(dst, n+len(c.u16))
	widen(dst[n:], c.u16)
	return dst
}

// Uint16 returns the stored values when they are uint16 (a narrow column),
// without a copy.
func (c Ints) Uint16() ([]uint16, bool) { return c.u16, !c.wide }

// Int32 returns the stored values when they are int32 (a format 1 or wide
// column), without a copy.
func (c Ints) Int32() ([]int32, bool) { return c.i32, c.wide }

// ColumnViews are one row's (or one record batch's) five list columns as
// the shard stores them.
type ColumnViews = masking.Columns[Ints, Bits]

// sliceViews returns positions [lo, hi) of every column of c.
func sliceViews(c *ColumnViews, lo, hi int) ColumnViews {
	return ColumnViews{
		Input:    c.Input.slice(lo, hi),
		Target:   c.Target.slice(lo, hi),
		LossMask: c.LossMask.slice(lo, hi),
		Pos:      c.Pos.slice(lo, hi),
		BlockPos: c.BlockPos.slice(lo, hi),
	}
}

func (c Ints) slice(lo, hi int) Ints {
	if c.wide {
		return Ints{i32: c.i32[lo:hi:hi], wide: true}
	}
	return Ints{u16: c.u16[lo:hi:hi]}
}

// push appends src to c, a Writer's buffer, narrowing it to uint16 unless
// c is wide, and returns the largest value of src as unsigned (a negative
// value counts as larger than any other): the caller checks that it fits.
func (c *Ints) push(src []int32) uint32 {
	if c.wide {
		c.i32 = append(c.i32, src...)
		return maxU32(src)
	}
	at := len(c.u16)
	c.u16 = growLen(c.u16, at+len(src))
	return narrowMax(c.u16[at:], src)
}

// truncate keeps the first n values of a buffer (all when it holds fewer).
func (c *Ints) truncate(n int) {
	if c.wide {
		c.i32 = c.i32[:min(n, len(c.i32))]
	} else {
		c.u16 = c.u16[:min(n, len(c.u16))]
	}
}

// bytes is the stored values' memory.
func (c Ints) bytes() []byte {
	if c.wide {
		return bytesOf(c.i32)
	}
	return bytesOf(c.u16)
}

// ptr is the address of the first value, or nil.
func (c Ints) ptr() unsafe.Pointer {
	if c.wide {
		return unsafe.Pointer(unsafe.SliceData(c.i32))
	}
	return unsafe.Pointer(unsafe.SliceData(c.u16))
}

// prefetchBytes hints that b will be read soon.
func prefetchBytes(b []byte) {
	if len(b) > 0 {
		prefetchLines(unsafe.Pointer(unsafe.SliceData(b)), len(b))
	}
}

// Bits is one row's loss mask, as the shard stores it: one bit per
// position (format 2's list<bool>) or one byte (format 1's list<uint8>).
type Bits struct {
	u8     []uint8
	bits   []byte // packed: bit off+i (least significant first) is value i
	off, n int
	packed bool
}

// Len is the number of values.
func (b Bits) Len() int { return b.n }

// At returns value i, 0 or 1.
func (b Bits) At(i int) uint8 {
	if !b.packed {
		return b.u8[i]
	}
	if uint(i) >= uint(b.n) {
		panic("sharding: Bits index out of range")
	}
	p := b.off + i
	return b.bits[p>>3] >> (p & 7) & 1
}

// AppendTo appends the values to dst, one byte (0 or 1) each.
func (b Bits) AppendTo(dst []uint8) []uint8 {
	n := len(dst)
	dst = growLen(dst, n+b.n)
	b.copyTo(dst[n:])
	return dst
}

// copyTo writes the values into dst[:b.Len()], one byte each.
func (b Bits) copyTo(dst []uint8) {
	if b.packed {
		unpackBits(dst[:b.n], b.bits, b.off)
	} else {
		copy(dst, b.u8)
	}
}

// push appends mask (0 or 1 each) to b, a Writer's buffer.
func (b *Bits) push(mask []uint8) {
	if !b.packed {
		b.u8 = append(b.u8, mask...)
		b.n = len(b.u8)
		return
	}
	old := len(b.bits)
	b.bits = growLen(b.bits, (b.n+len(mask)+7)/8)
	clear(b.bits[old:])
	packBits(b.bits, b.n, mask)
	b.n += len(mask)
}

// reset empties a Writer's buffer.
func (b *Bits) reset() {
	clear(b.bits)
	b.bits, b.u8, b.n = b.bits[:0], b.u8[:0], 0
}

// Count is the number of ones.
func (b Bits) Count() int {
	n := 0
	if !b.packed {
		for _, m := range b.u8 {
			n += int(m)
		}
		return n
	}
	return countBits(b.bits, b.off, b.n)
}

// bytes is the memory that holds the values: a view's own bytes, or all
// of a Writer's buffer (which starts at bit 0 and is as long as its bits).
func (b Bits) bytes() []byte {
	if !b.packed {
		return b.u8
	}
	return b.bits[b.off/8 : (b.off+b.n+7)/8]
}

func (b Bits) slice(lo, hi int) Bits {
	if !b.packed {
		return Bits{u8: b.u8[lo:hi:hi], n: hi - lo}
	}
	return Bits{bits: b.bits, off: b.off + lo, n: hi - lo, packed: true}
}

// growLen returns s with length n, reusing its array when it is large
// enough.
func growLen[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	t := make([]T, n, max(n, 2*cap(s)))
	copy(t, s)
	return t
}

// widenGo copies src into dst[:len(src)] as int32.
func widenGo(dst []int32, src []uint16) {
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		s, d := src[i:i+8:i+8], dst[i:i+8:i+8]
		d[0], d[1], d[2], d[3] = int32(s[0]), int32(s[1]), int32(s[2]), int32(s[3])
		d[4], d[5], d[6], d[7] = int32(s[4]), int32(s[5]), int32(s[6]), int32(s[7])
	}
	for ; i < len(src); i++ {
		dst[i] = int32(src[i])
	}
}

// widenMaxGo copies src into dst[:len(src)] as int32 and returns the
// largest value: widenMax without SIMD.
func widenMaxGo(dst []int32, src []uint16) uint16 {
	dst = dst[:len(src)]
	var m0, m1 uint16
	i := 0
	for ; i+8 <= len(src); i += 8 {
		s, d := src[i:i+8:i+8], dst[i:i+8:i+8]
		a, b, c, e := s[0], s[1], s[2], s[3]
		d[0], d[1], d[2], d[3] = int32(a), int32(b), int32(c), int32(e)
		m0, m1 = max(m0, a, c), max(m1, b, e)
		a, b, c, e = s[4], s[5], s[6], s[7]
		d[4], d[5], d[6], d[7] = int32(a), int32(b), int32(c), int32(e)
		m0, m1 = max(m0, a, c), max(m1, b, e)
	}
	for ; i < len(src); i++ {
		dst[i] = int32(src[i])
		m0 = max(m0, src[i])
	}
	return max(m0, m1)
}

// copyMaxGo copies src into dst[:len(src)] and returns the largest value
// as unsigned, so that a negative value counts as larger than any other:
// copyMax without SIMD.
func copyMaxGo(dst, src []int32) uint32 {
	copy(dst, src)
	var m0, m1 uint32
	i := 0
	for ; i+4 <= len(src); i += 4 {
		s := src[i : i+4 : i+4]
		m0, m1 = max(m0, uint32(s[0]), uint32(s[2])), max(m1, uint32(s[1]), uint32(s[3]))
	}
	for ; i < len(src); i++ {
		m0 = max(m0, uint32(src[i]))
	}
	return max(m0, m1)
}

// maxOf returns the largest value of c, unsigned (see copyMax).
func (c Ints) maxOf() uint32 {
	if c.wide {
		return maxU32(c.i32)
	}
	return uint32(maxU16(c.u16))
}

// maxU16 is the largest value of s, four running maxima at a time (a
// single one makes each max wait for the last).
func maxU16(s []uint16) uint16 {
	var m0, m1, m2, m3 uint16
	i := 0
	for ; i+8 <= len(s); i += 8 {
		q := s[i : i+8 : i+8]
		m0, m1, m2, m3 = max(m0, q[0], q[4]), max(m1, q[1], q[5]), max(m2, q[2], q[6]), max(m3, q[3], q[7])
	}
	for _, x := range s[i:] {
		m0 = max(m0, x)
	}
	return max(m0, m1, m2, m3)
}

// maxU32 is the largest value of s as unsigned, as maxU16 computes it.
func maxU32(s []int32) uint32 {
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+8 <= len(s); i += 8 {
		q := s[i : i+8 : i+8]
		m0 = max(m0, uint32(q[0]), uint32(q[4]))
		m1 = max(m1, uint32(q[1]), uint32(q[5]))
		m2 = max(m2, uint32(q[2]), uint32(q[6]))
		m3 = max(m3, uint32(q[3]), uint32(q[7]))
	}
	for _, x := range s[i:] {
		m0 = max(m0, uint32(x))
	}
	return max(m0, m1, m2, m3)
}

// spread8 maps a byte to 8 bytes, bit i of the byte to byte i (0 or 1).
var spread8 = func() (t [256]uint64) {
	for b := range t {
		for i := range 8 {
			t[b] |= uint64(b>>i&1) << (8 * i)
		}
	}
	return t
}()

// unpackBits writes bits off, off+1, … of src into dst, one byte (0 or 1)
// each, for len(dst) bits.
func unpackBits(dst []uint8, src []byte, off int) {
	n := len(dst)
	q, r := off>>3, uint(off&7)
	i := 0
	// 8 positions at a time while two source bytes are in range.
	for ; i+8 <= n && q+1 < len(src); i, q = i+8, q+1 {
		w := (uint16(src[q]) | uint16(src[q+1])<<8) >> r
		binary.LittleEndian.PutUint64(dst[i:i+8], spread8[uint8(w)])
	}
	for ; i < n; i++ {
		p := off + i
		dst[i] = src[p>>3] >> (p & 7) & 1
	}
}

// narrowMaxGo is narrowMax without SIMD.
func narrowMaxGo(dst []uint16, src []int32) uint32 {
	dst = dst[:len(src)]
	var m uint32
	for i, x := range src {
		dst[i] = uint16(x)
		m = max(m, uint32(x))
	}
	return m
}

// packBits sets bits at, at+1, … of dst from mask (0 or 1 each): dst must
// hold them and be zero there.
func packBits(dst []byte, at int, mask []uint8) {
	i := 0
	// Align to a byte of dst.
	for ; i < len(mask) && (at+i)&7 != 0; i++ {
		p := at + i
		dst[p>>3] |= mask[i] << (p & 7)
	}
	q := (at + i) >> 3
	for ; i+8 <= len(mask); i, q = i+8, q+1 {
		// The low bit of each of 8 bytes, gathered into one byte, byte k
		// to bit k.
		x := binary.LittleEndian.Uint64(mask[i:i+8]) & 0x0101010101010101
		dst[q] = byte(x * 0x0102040810204080 >> 56)
	}
	for ; i < len(mask); i++ {
		p := at + i
		dst[p>>3] |= mask[i] << (p & 7)
	}
}
