#include "textflag.h"

// The three column kernels share a frame: dst in DI, src in SI, the count
// left in CX and lanes in DX; each iteration loads 64 source bytes into Y0
// and Y1 and keeps two lane-wise running maxima of them, Y7 and Y6. The
// callers pass a count that is a positive multiple of the iteration's.

// ENTER loads the arguments and zeroes the running maxima.
#define ENTER \
	MOVQ dst+0(FP), DI; \
	MOVQ src+8(FP), SI; \
	MOVQ n+16(FP), CX; \
	MOVQ lanes+24(FP), DX; \
	VPXOR Y7, Y7, Y7; \
	VPXOR Y6, Y6, Y6

// LOAD loads the next 64 source bytes into Y0 and Y1 and folds them into
// the running maxima with MAX (VPMAXUW or VPMAXUD).
#define LOAD(MAX) \
	VMOVDQU (SI), Y0; \
	VMOVDQU 32(SI), Y1; \
	MAX Y0, Y7, Y7; \
	MAX Y1, Y6, Y6

// NEXT moves past the iteration's 64 source bytes and dstBytes of output,
// per values, and loops while there are per more.
#define NEXT(dstBytes, per) \
	ADDQ $64, SI; \
	ADDQ $dstBytes, DI; \
	SUBQ $per, CX; \
	CMPQ CX, $per; \
	JGE  loop

// LEAVE stores the lane-wise maximum of the two running maxima in lanes.
#define LEAVE(MAX) \
	MAX Y6, Y7, Y7; \
	VMOVDQU Y7, (DX); \
	VZEROUPPER; \
	RET

// func widenMaxAVX2(dst *int32, src *uint16, n int, lanes *[8]uint32)
// Widens n uint16 values (n a multiple of 32) to int32 and leaves the
// lane-wise maximum (16 uint16s) in lanes.
TEXT ·widenMaxAVX2(SB), NOSPLIT, $0-32
	ENTER

loop:
	LOAD(VPMAXUW)
	VPMOVZXWD X0, Y2
	VEXTRACTI128 $1, Y0, X3
	VPMOVZXWD X3, Y3
	VPMOVZXWD X1, Y4
	VEXTRACTI128 $1, Y1, X5
	VPMOVZXWD X5, Y5
	VMOVDQU Y2, (DI)
	VMOVDQU Y3, 32(DI)
	VMOVDQU Y4, 64(DI)
	VMOVDQU Y5, 96(DI)
	NEXT(128, 32)
	LEAVE(VPMAXUW)

// func copyMaxAVX2(dst *int32, src *int32, n int, lanes *[8]uint32)
// Copies n int32 values (n a multiple of 16) and leaves the lane-wise
// unsigned maximum in lanes.
TEXT ·copyMaxAVX2(SB), NOSPLIT, $0-32
	ENTER

loop:
	LOAD(VPMAXUD)
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	NEXT(64, 16)
	LEAVE(VPMAXUD)

// func narrowMaxAVX2(dst *uint16, src *int32, n int, lanes *[8]uint32)
// Narrows n int32 values (n a multiple of 16) to uint16, saturating, and
// leaves the lane-wise unsigned maximum of the int32 values in lanes.
TEXT ·narrowMaxAVX2(SB), NOSPLIT, $0-32
	ENTER

loop:
	LOAD(VPMAXUD)
	VPACKUSDW Y1, Y0, Y2
	VPERMQ $0xD8, Y2, Y2
	VMOVDQU Y2, (DI)
	NEXT(32, 16)
	LEAVE(VPMAXUD)

// func prefetchLines(p unsafe.Pointer, n int)
// Hints that the n bytes at p (n > 0) will be read soon: a PREFETCHT0 for
// each cache line they touch. A prefetch never faults, whatever the address.
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	LEAQ -1(SI)(CX*1), DX
	ANDQ $-64, SI

ploop:
	PREFETCHT0 (SI)
	ADDQ $64, SI
	CMPQ SI, DX
	JLE  ploop
	RET
