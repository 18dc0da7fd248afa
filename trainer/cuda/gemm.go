package cuda

import (
	"unsafe"

	"github.com/glmkit/glmkit/trainer"
)

// Matrix products. cuBLAS is column-major; a row-major (R,C) matrix is a
// column-major (C,R) one with leading dimension C, so every product below
// is the transposed one: out = inp·wᵀ is outᵀ = w·inpᵀ, and so on. In
// bf16 mode the float32 operands are first rounded into bf16 copies in the
// workspace (the backend's buffers stay float32), and cuBLAS multiplies
// them with float32 accumulation into a float32 result; in FP32 mode the
// buffers are the operands.

// operand is the cuBLAS data type and element size of the GEMM operands.
func (g *gpu) operand() (dtype dataType, size uint64) {
	if g.fp32 {
		return dtF32, 4
	}
	return dtBF16, 2
}

// computeType is the cuBLAS compute type of the products.
func (g *gpu) computeType() blasCompute {
	if g.fp32 {
		return compute32FPedantic
	}
	return compute32F
}

// asOperand returns src (n floats) as a GEMM operand: src itself in FP32
// mode, else its bf16 copy written to dst.
func (g *gpu) asOperand(dst, src uint64, n int64) (uint64, error) {
	if g.fp32 {
		return src, nil
	}
	return dst, g.launch1(kToBF16, n, dst, src, n)
}

// gemm computes C = alpha·op(A)·op(B) + beta·C in cuBLAS's column-major
// terms: op(A) (m,k), op(B) (k,n), C (m,n) float32.
func (g *gpu) gemm(ta, tb blasOp, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	dt, _ := g.operand()
	s := g.blas.gemmEx(g.handle, ta, tb, int32(m), int32(n), int32(k), unsafe.Pointer(&alpha),
		a, dt, int32(lda), b, dt, int32(ldb), unsafe.Pointer(&beta), c, dtF32, int32(ldc), g.computeType(), gemmDefault)
	return g.blas.check(s, "cublasGemmEx(%c%c, m=%d n=%d k=%d)", opChar(ta), opChar(tb), m, n, k)
}

// gemmBatched is gemm over batch independent products whose operands are
// strideA, strideB and strideC elements apart.
func (g *gpu) gemmBatched(ta, tb blasOp, m, n, k int, alpha float32, a uint64, lda int, strideA int64, b uint64, ldb int, strideB int64,
	beta float32, c uint64, ldc int, strideC int64, batch int) error {
	if m == 0 || n == 0 || batch == 0 {
		return nil
	}
	dt, _ := g.operand()
	s := g.blas.gemmStridedBatchedEx(g.handle, ta, tb, int32(m), int32(n), int32(k), unsafe.Pointer(&alpha),
		a, dt, int32(lda), strideA, b, dt, int32(ldb), strideB, unsafe.Pointer(&beta),
		c, dtF32, int32(ldc), strideC, int32(batch), g.computeType(), gemmDefault)
	return g.blas.check(s, "cublasGemmStridedBatchedEx(%c%c, m=%d n=%d k=%d, batch %d)", opChar(ta), opChar(tb), m, n, k, batch)
}

func opChar(op blasOp) rune {
	if op == opT {
		return 'T'
	}
	return 'N'
}

// MatmulForward implements trainer.Backend: out is set to the bias rows,
// then cuBLAS adds the product.
// inp (N,C); w (OC,C); bias (OC) → out (N,OC) = inp·wᵀ + bias
func (be *Backend) MatmulForward(out, inp, w, bias trainer.Buf, n, c, oc int) {
	ck := checker{op: "matmul forward"}
	o, x, wt, bs := ck.f("out", out, n*oc), ck.f("inp", inp, n*c), ck.f("w", w, oc*c), ck.fOpt("bias", bias, oc)
	if be.failed(ck.err) || n == 0 || oc == 0 {
		return
	}
	be.do(be.opName(ck.op, n, c, oc), func(g *gpu) error {
		beta := float32(0)
		if bias != nil {
			if err := g.launch1(kBiasRows, int64(n)*int64(oc), o.ptr(), bs.ptr(), n, oc); err != nil {
				return err
			}
			beta = 1
		}
		if c == 0 {
			if bias == nil {
				return g.memsetZero(o.ptr(), n*oc)
			}
			return nil
		}
		_, es := g.operand()
		sc, err := g.scratch(es*uint64(oc*c), es*uint64(n*c))
		if err != nil {
			return err
		}
		a, err := g.asOperand(sc[0], wt.ptr(), int64(oc*c))
		if err != nil {
			return err
		}
		b, err := g.asOperand(sc[1], x.ptr(), int64(n*c))
		if err != nil {
			return err
		}
		// outᵀ (OC,N) = (wᵀ)ᵀ · inpᵀ: A = w as (C,OC) transposed, B = inp as (C,N)
		return g.gemm(opT, opN, oc, n, c, 1, a, c, b, c, beta, o.ptr(), oc)
	})
}

// MatmulBackward implements trainer.Backend.
// dout (N,OC); inp (N,C); w (OC,C) → dinp (N,C), dw (OC,C), dbias (OC) +=.
func (be *Backend) MatmulBackward(dinp, dw, dbias, dout, inp, w trainer.Buf, n, c, oc int) {
	ck := checker{op: "matmul backward"}
	dx, dwt, db := ck.fOpt("dinp", dinp, n*c), ck.f("dw", dw, oc*c), ck.fOpt("dbias", dbias, oc)
	dy, x, wt := ck.f("dout", dout, n*oc), ck.f("inp", inp, n*c), ck.f("w", w, oc*c)
	if be.failed(ck.err) || n == 0 || oc == 0 {
		return
	}
	rpc, chunks := colsumChunks(n)
	be.do(be.opName(ck.op, n, c, oc), func(g *gpu) error {
		_, es := g.operand()
		sc, err := g.scratch(es*uint64(n*oc), es*uint64(oc*c), es*uint64(n*c), 4*uint64(chunks*oc))
		if err != nil {
			return err
		}
		d, err := g.asOperand(sc[0], dy.ptr(), int64(n*oc))
		if err != nil {
			return err
		}
		if dinp != nil && c > 0 {
			a, err := g.asOperand(sc[1], wt.ptr(), int64(oc*c))
			if err != nil {
				return err
			}
			// dinpᵀ (C,N) += w as (C,OC) · doutᵀ (OC,N)
			if err := g.gemm(opN, opN, c, n, oc, 1, a, c, d, oc, 1, dx.ptr(), c); err != nil {
				return err
			}
		}
		if c > 0 {
			a, err := g.asOperand(sc[2], x.ptr(), int64(n*c))
			if err != nil {
				return err
			}
			// dwᵀ (C,OC) += inpᵀ (C,N) · (doutᵀ)ᵀ (N,OC)
			if err := g.gemm(opN, opT, c, oc, n, 1, a, c, d, oc, 1, dwt.ptr(), c); err != nil {
				return err
			}
		}
		if dbias == nil {
			return nil
		}
		const block = 128
		if err := g.launch(kColsumPartial, (oc+block-1)/block, chunks, block, sc[3], dy.ptr(), n, oc, rpc); err != nil {
			return err
		}
		return g.launch1(kColsumAdd, int64(oc), db.ptr(), sc[3], chunks, oc)
	})
}
