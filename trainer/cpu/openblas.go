package cpu

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/glmkit/glmkit/trainer/internal/dynlib"
)

// CBLAS enum values (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// openblas holds the OpenBLAS entry points, opened at run time with purego
// (no cgo). cblas_sgemm takes its float alpha and beta by value, which
// purego's RegisterFunc places in the float registers correctly (SyscallN
// would not).
type openblas struct {
	sgemm func(order, transA, transB, m, n, k int32, alpha float32, a unsafe.Pointer, lda int32,
		b unsafe.Pointer, ldb int32, beta float32, c unsafe.Pointer, ldc int32) `sym:"cblas_sgemm"`
	dgemm func(order, transA, transB, m, n, k int32, alpha float64, a unsafe.Pointer, lda int32,
		b unsafe.Pointer, ldb int32, beta float64, c unsafe.Pointer, ldc int32) `sym:"cblas_dgemm"`
	setThreads func(int32)   `sym:"openblas_set_num_threads"`
	getConfig  func() string `sym:"openblas_get_config,optional"`
	config     string
}

// loadOpenBLAS opens the library at path and sets it to one thread: the
// backend runs it from its own goroutines on fixed row blocks, which keeps
// results independent of the thread count. The library's thread setting is
// process-wide.
func loadOpenBLAS(path string) (*openblas, error) {
	h, err := dynlib.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	lib := &openblas{}
	if missing := dynlib.Bind(h, lib); len(missing) > 0 {
		return nil, fmt.Errorf("openblas %s lacks %s", path, strings.Join(missing, ", "))
	}
	lib.setThreads(1)
	if lib.getConfig != nil {
		lib.config = strings.TrimSpace(lib.getConfig())
	}
	return lib, nil
}

func cblasTranspose(t bool) int32 {
	if t {
		return cblasTrans
	}
	return cblasNoTrans
}

// gemm calls cblas_sgemm or cblas_dgemm on row-major operands.
func blasGemm[T Float](lib *openblas, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := cblasTranspose(tA), cblasTranspose(tB)
	if k == 0 {
		// BLAS would only scale C; a and b may be empty.
		scaleRows(m, n, beta, c, ldc)
		return
	}
	switch any(alpha).(type) {
	case float32:
		lib.sgemm(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), float32(alpha),
			unsafe.Pointer(&a[0]), int32(lda), unsafe.Pointer(&b[0]), int32(ldb),
			float32(beta), unsafe.Pointer(&c[0]), int32(ldc))
	case float64:
		lib.dgemm(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), float64(alpha),
			unsafe.Pointer(&a[0]), int32(lda), unsafe.Pointer(&b[0]), int32(ldb),
			float64(beta), unsafe.Pointer(&c[0]), int32(ldc))
	}
}
