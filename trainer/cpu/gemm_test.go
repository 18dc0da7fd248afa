package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// naiveGemm is the definition: C = alpha·op(A)·op(B) + beta·C, in float64.
func naiveGemm[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv T
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = float64(alpha)*s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

func randSlice[T Float](r *rand.Rand, n int) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = T(r.NormFloat64())
	}
	return s
}

// testGemm checks gemm and gemm1 of be against the definition on shapes
// that are not multiples of the blocks, with padded leading dimensions.
func testGemm[T Float](t *testing.T, be *Backend[T], tol float64) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 7}, {65, 33, 17}, {130, 70, 129}, {64, 4, 0}, {5, 7, 4500}, {20, 600, 33}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []T{0, 1, 0.5} {
					m, n, k := sh[0], sh[1], sh[2]
					lda, ldb, ldc := k+3, n+2, n+1
					if tA {
						lda = m + 3
					}
					if tB {
						ldb = k + 2
					}
					rowsA, rowsB := m, k
					if tA {
						rowsA = k
					}
					if tB {
						rowsB = n
					}
					a := randSlice[T](r, max(rowsA*lda, 1))
					b := randSlice[T](r, max(rowsB*ldb, 1))
					c0 := randSlice[T](r, m*ldc)
					alpha := T(0.75)
					want := naiveGemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c0, ldc)
					for _, serial := range []bool{false, true} {
						c := append([]T(nil), c0...)
						if serial {
							be.gemm1(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
						} else {
							be.gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
						}
						var worst float64
						for i := range m {
							for j := range n {
								// rounding grows like √k
								d := math.Abs(float64(c[i*ldc+j])-want[i*n+j]) / (math.Sqrt(float64(k+1)) + math.Abs(want[i*n+j]))
								worst = max(worst, d)
							}
							for j := n; j < ldc && i*ldc+j < len(c); j++ {
								if c[i*ldc+j] != c0[i*ldc+j] {
									t.Fatalf("gemm wrote outside C at (%d,%d)", i, j)
								}
							}
						}
						if worst > tol {
							t.Errorf("gemm(%v,%v, %dx%dx%d, beta %v, serial %v): relative error %.3g > %.3g", tA, tB, m, n, k, beta, serial, worst, tol)
						}
					}
				}
			}
		}
	}
}

func TestGemm(t *testing.T) {
	for _, mode := range []string{"off", "openblas"} {
		t.Run(mode, func(t *testing.T) {
			be32, err := New[float32](Options{BLAS: mode, Threads: 2})
			if err != nil {
				t.Skipf("no OpenBLAS here (apt-get install libopenblas0): %v", err)
			}
			defer be32.Close()
			be64, err := New[float64](Options{BLAS: mode, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer be64.Close()
			testGemm(t, be32, 4e-6)
			testGemm(t, be64, 1e-14)
		})
	}
}

// TestGemmGoVsOpenBLAS compares the two matrix-product paths on GLM-sized
// products (float32: within 1e-5 relative to the row scale; float64: 1e-12).
func TestGemmGoVsOpenBLAS(t *testing.T) {
	blas, err := New[float32](Options{BLAS: "openblas"})
	if err != nil {
		t.Skipf("no OpenBLAS here (apt-get install libopenblas0): %v", err)
	}
	defer blas.Close()
	pure, _ := New[float32](Options{BLAS: "off"})
	defer pure.Close()
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][3]int{{256, 192, 64}, {512, 256, 1024}, {100, 3000, 64}} {
		m, n, k := sh[0], sh[1], sh[2]
		a, b := randSlice[float32](r, m*k), randSlice[float32](r, n*k)
		c1, c2 := make([]float32, m*n), make([]float32, m*n)
		blas.gemm(false, true, m, n, k, 1, a, k, b, k, 0, c1, n)
		pure.gemm(false, true, m, n, k, 1, a, k, b, k, 0, c2, n)
		var worst float64
		for i := range c1 {
			worst = max(worst, math.Abs(float64(c1[i]-c2[i]))/math.Sqrt(float64(k)))
		}
		t.Logf("%dx%dx%d: max |openblas − go| / √k = %.3g", m, n, k, worst)
		if worst > 1e-5 {
			t.Errorf("%dx%dx%d: pure Go and OpenBLAS differ by %.3g (scaled)", m, n, k, worst)
		}
	}
}

func BenchmarkGemm(b *testing.B) {
	for _, mode := range []string{"off", "openblas"} {
		for _, n := range []int{256, 512} {
			b.Run(fmt.Sprintf("%s/%d", mode, n), func(b *testing.B) {
				be, err := New[float32](Options{BLAS: mode})
				if err != nil {
					b.Skip(err)
				}
				defer be.Close()
				r := rand.New(rand.NewPCG(1, 1))
				x, y, z := randSlice[float32](r, n*n), randSlice[float32](r, n*n), make([]float32, n*n)
				for b.Loop() {
					be.gemm(false, true, n, n, n, 1, x, n, y, n, 0, z, n)
				}
				b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// A library path that loads but is no BLAS is an error naming what it
// lacks, not a panic and not a silent fall back to pure Go.
func TestBLASNotABLASLibrary(t *testing.T) {
	if _, err := os.Stat("/lib/x86_64-linux-gnu/libc.so.6"); err != nil {
		t.Skipf("no glibc at the Debian path to load as a non-BLAS library: %v", err)
	}
	be, err := New[float32](Options{BLAS: "/lib/x86_64-linux-gnu/libc.so.6"})
	if err == nil {
		be.Close()
		t.Fatal("libc loaded as BLAS")
	}
	if !strings.Contains(err.Error(), "lacks cblas_sgemm, cblas_dgemm, openblas_set_num_threads") {
		t.Errorf("error does not name the missing symbols: %v", err)
	}
}
