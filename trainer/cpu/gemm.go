package cpu

// gemmRows is the number of rows of C in one block of a parallel pure-Go
// matrix product. Blocks are fixed by the shapes alone, so results do not
// depend on the thread count.
const gemmRows = 64

// gemm computes C = alpha·op(A)·op(B) + beta·C with row-major operands and
// cblas semantics (op(A) is (M,K), op(B) is (K,N), C is (M,N)), in parallel
// over blocks fixed by the shapes alone.
//
// With OpenBLAS (called single-threaded from each goroutine, since its own
// threading changes results with the thread count) the blocks follow the
// shape, so no block repacks a large operand many times: blocks of columns
// when C is wide (the logits), blocks of K summed in order when K dominates
// (the output layer's input gradient), else blocks of rows.
func (be *Backend[T]) gemm(tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if be.blas == nil {
		bp := packB(tB, n, k, b, ldb)
		be.par(m, gemmRows, func(lo, hi int) {
			goGemm(tA, hi-lo, n, k, alpha, rowsOf(a, tA, lo, lda), lda, bp, beta, c[lo*ldc:], ldc)
		})
		return
	}
	switch {
	case k >= 4096 && k >= 8*max(m, n):
		// blocks of K into partial products, then summed in block order
		kc := blockSize(k, 1024)
		nb := (k + kc - 1) / kc
		parts := make([]T, nb*m*n)
		be.par(k, kc, func(lo, hi int) {
			ap, bp := colsOf(a, tA, lo, lda), rowsOf(b, tB, lo, ldb)
			blasGemm(be.blas, tA, tB, m, n, hi-lo, alpha, ap, lda, bp, ldb, 0, parts[(lo/kc)*m*n:], n)
		})
		be.par(m, 16, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := c[i*ldc : i*ldc+n]
				if beta == 0 {
					clear(row)
				} else if beta != 1 {
					for j := range row {
						row[j] *= beta
					}
				}
				for p := range nb {
					for j, x := range parts[p*m*n+i*n : p*m*n+i*n+n] {
						row[j] += x
					}
				}
			}
		})
	case n > 2*m:
		// blocks of columns of C
		be.par(n, blockSize(n, 256), func(lo, hi int) {
			blasGemm(be.blas, tA, tB, m, hi-lo, k, alpha, a, lda, colsOf(b, tB, lo, ldb), ldb, beta, c[lo:], ldc)
		})
	default:
		be.par(m, blockSize(m, 64), func(lo, hi int) {
			blasGemm(be.blas, tA, tB, hi-lo, n, k, alpha, rowsOf(a, tA, lo, lda), lda, b, ldb, beta, c[lo*ldc:], ldc)
		})
	}
}

// blockSize cuts a dimension into about 8 blocks of at least `least`
// elements, a multiple of 16: a function of the shape only.
func blockSize(dim, least int) int {
	return max(least, (dim/8+15)/16*16)
}

// gemm1 is gemm on the calling goroutine, for ops that already run in
// parallel over independent products (attention heads).
func (be *Backend[T]) gemm1(tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if be.blas != nil {
		blasGemm(be.blas, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	bp := packB(tB, n, k, b, ldb)
	for lo := 0; lo < m; lo += gemmRows {
		hi := min(lo+gemmRows, m)
		goGemm(tA, hi-lo, n, k, alpha, rowsOf(a, tA, lo, lda), lda, bp, beta, c[lo*ldc:], ldc)
	}
}

// rowsOf returns op(X) from row lo on, for an operand X stored as op(X)
// or, with t, transposed: a row offset in the one case, a column offset
// in the other. It serves both A (M,K) and B (K,N).
func rowsOf[T Float](x []T, t bool, lo, ld int) []T {
	if t {
		return x[lo:]
	}
	return x[lo*ld:]
}

// colsOf returns op(X) from column lo on (see rowsOf).
func colsOf[T Float](x []T, t bool, lo, ld int) []T {
	if t {
		return x[lo*ld:]
	}
	return x[lo:]
}

// scaleRows sets C = beta·C on an (M,N) block with leading dimension ldc.
func scaleRows[T Float](m, n int, beta T, c []T, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// packB copies op(B) (K,N) into panels of 4 columns: element (p, 4j+s) goes
// to bp[4K·j + 4p + s]. Columns past N are zero. It packs A too, in panels
// of 4 rows (goGemm): the rows of op(A) (M,K) are the columns of op(A)ᵀ
// (K,M), which is A read with the transposition flag flipped.
func packB[T Float](tB bool, n, k int, b []T, ldb int) []T {
	np := (n + 3) / 4
	bp := make([]T, np*4*k)
	for j := range np {
		panel := bp[j*4*k : (j+1)*4*k]
		for s := range 4 {
			col := 4*j + s
			if col >= n {
				break
			}
			if tB { // B is stored (N,K)
				for p, x := range b[col*ldb : col*ldb+k] {
					panel[4*p+s] = x
				}
			} else { // B is stored (K,N)
				for p := range k {
					panel[4*p+s] = b[p*ldb+col]
				}
			}
		}
	}
	return bp
}

// goGemm is the pure-Go product of one block of at most gemmRows rows
// against a packed op(B). Each element of C is one dot product summed in
// order of k, then C = alpha·sum + beta·C, so the result does not depend on
// how rows are blocked.
func goGemm[T Float](tA bool, m, n, k int, alpha T, a []T, lda int, bp []T, beta T, c []T, ldc int) {
	if k == 0 {
		scaleRows(m, n, beta, c, ldc)
		return
	}
	ap := packB(!tA, m, k, a, lda) // element (4i+r, p) of op(A) at ap[4K·i + 4p + r]
	mp, np := (m+3)/4, (n+3)/4
	for j := range np {
		bpanel := bp[j*4*k : (j+1)*4*k]
		for i := range mp {
			acc := kernel4x4(k, ap[i*4*k:(i+1)*4*k], bpanel)
			for r := range min(4, m-4*i) {
				row := c[(4*i+r)*ldc:]
				for s := range min(4, n-4*j) {
					col := 4*j + s
					if beta == 0 {
						row[col] = alpha * acc[4*r+s]
					} else {
						row[col] = alpha*acc[4*r+s] + beta*row[col]
					}
				}
			}
		}
	}
}

// kernel4x4 returns the 4×4 block of dot products of one A panel and one B
// panel, both packed p-major, each element summed in order of p.
func kernel4x4[T Float](k int, ap, bp []T) [16]T {
	ap = ap[:4*k]
	bp = bp[:4*k]
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 T
	for p := 0; p+4 <= len(ap); p += 4 {
		a := ap[p : p+4 : p+4]
		b := bp[p : p+4 : p+4]
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	return [16]T{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
}
