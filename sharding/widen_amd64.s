#include "textflag.h"

// func widenMaxAVX2(dst *int32, src *uint16, n int, acc *[16]uint16)
// Widens n uint16 values (n a multiple of 32) to int32 and leaves the
// lane-wise maximum in acc.
TEXT ·widenMaxAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VPXOR Y7, Y7, Y7
	VPXOR Y6, Y6, Y6

loop:
	CMPQ CX, $32
	JLT  done
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y3
	VPMAXUW Y0, Y7, Y7
	VPMAXUW Y3, Y6, Y6
	VPMOVZXWD X0, Y1
	VEXTRACTI128 $1, Y0, X2
	VPMOVZXWD X2, Y2
	VPMOVZXWD X3, Y4
	VEXTRACTI128 $1, Y3, X5
	VPMOVZXWD X5, Y5
	VMOVDQU Y1, (DI)
	VMOVDQU Y2, 32(DI)
	VMOVDQU Y4, 64(DI)
	VMOVDQU Y5, 96(DI)
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  loop

done:
	VPMAXUW Y6, Y7, Y7
	VMOVDQU Y7, (DX)
	VZEROUPPER
	RET

// func copyMaxAVX2(dst *int32, src *int32, n int, acc *[8]uint32)
// Copies n int32 values (n a multiple of 16) and leaves the lane-wise
// unsigned maximum in acc.
TEXT ·copyMaxAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VPXOR Y7, Y7, Y7
	VPXOR Y6, Y6, Y6

loop:
	CMPQ CX, $16
	JLT  done
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPMAXUD Y0, Y7, Y7
	VPMAXUD Y1, Y6, Y6
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  loop

done:
	VPMAXUD Y6, Y7, Y7
	VMOVDQU Y7, (DX)
	VZEROUPPER
	RET

// func narrowMaxAVX2(dst *uint16, src *int32, n int, acc *[8]uint32)
// Narrows n int32 values (n a multiple of 16) to uint16, saturating, and
// leaves the lane-wise unsigned maximum of the int32 values in acc.
TEXT ·narrowMaxAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VPXOR Y7, Y7, Y7
	VPXOR Y6, Y6, Y6

loop:
	CMPQ CX, $16
	JLT  done
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPMAXUD Y0, Y7, Y7
	VPMAXUD Y1, Y6, Y6
	VPACKUSDW Y1, Y0, Y2
	VPERMQ $0xD8, Y2, Y2
	VMOVDQU Y2, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JMP  loop

done:
	VPMAXUD Y6, Y7, Y7
	VMOVDQU Y7, (DX)
	VZEROUPPER
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
