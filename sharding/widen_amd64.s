#include "textflag.h"

// The loader's kernels (widenMaxAVX2, copyMaxAVX2 and prefetchLines), then
// the writer's (narrowMaxAVX2).
//
// The three column kernels share a frame: dst in DI, src in SI and the
// count left in CX; each iteration loads 64 source bytes into Y0 and Y1
// and keeps two lane-wise running maxima of them, Y7 and Y6, which the
// kernel folds into the one maximum it returns. The callers pass a count
// that is a positive multiple of the iteration's.

// ENTER loads the arguments and zeroes the running maxima.
#define ENTER \
	MOVQ dst+0(FP), DI; \
	MOVQ src+8(FP), SI; \
	MOVQ n+16(FP), CX; \
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

// FOLD leaves in the low 32 bits of X7 the lane-wise maximum, with MAX, of
// the two running maxima's lanes, halving them three times.
#define FOLD(MAX) \
	MAX Y6, Y7, Y7; \
	VEXTRACTI128 $1, Y7, X6; \
	MAX X6, X7, X7; \
	VPSHUFD $0x4E, X7, X6; \
	MAX X6, X7, X7; \
	VPSHUFD $0xB1, X7, X6; \
	MAX X6, X7, X7

// MAX16 leaves in AX the largest of the running maxima's uint16 lanes.
#define MAX16 \
	FOLD(VPMAXUW); \
	VPSRLD $16, X7, X6; \
	VPMAXUW X6, X7, X7; \
	VMOVD X7, AX; \
	VZEROUPPER

// MAX32 leaves in AX the largest of the running maxima's uint32 lanes.
#define MAX32 \
	FOLD(VPMAXUD); \
	VMOVD X7, AX; \
	VZEROUPPER

// func widenMaxAVX2(dst *int32, src *uint16, n int) uint16
// Widens n uint16 values (n a multiple of 32) to int32 and returns the
// largest.
TEXT ·widenMaxAVX2(SB), NOSPLIT, $0-26
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
	MAX16
	MOVW AX, ret+24(FP)
	RET

// func copyMaxAVX2(dst *int32, src *int32, n int) uint32
// Copies n int32 values (n a multiple of 16) and returns the largest as
// unsigned.
TEXT ·copyMaxAVX2(SB), NOSPLIT, $0-28
	ENTER

loop:
	LOAD(VPMAXUD)
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	NEXT(64, 16)
	MAX32
	MOVL AX, ret+24(FP)
	RET

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

// func narrowMaxAVX2(dst *uint16, src *int32, n int) uint32
// Narrows n int32 values (n a multiple of 16) to uint16, saturating, and
// returns the largest of the int32 values as unsigned.
TEXT ·narrowMaxAVX2(SB), NOSPLIT, $0-28
	ENTER

loop:
	LOAD(VPMAXUD)
	VPACKUSDW Y1, Y0, Y2
	VPERMQ $0xD8, Y2, Y2
	VMOVDQU Y2, (DI)
	NEXT(32, 16)
	MAX32
	MOVL AX, ret+24(FP)
	RET
