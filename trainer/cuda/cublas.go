package cuda

import (
	"fmt"
	"path/filepath"
	"unsafe"

	"github.com/glmkit/glmkit/trainer/internal/dynlib"
)

// status is a cublasStatus_t.
type status int32

// The cuBLAS enums the products pass, typed so that a transpose, a data
// type and a compute type cannot trade places among cublasGemmEx's 19
// arguments.
type (
	blasOp      int32 // cublasOperation_t
	dataType    int32 // cudaDataType_t
	blasCompute int32 // cublasComputeType_t
	gemmAlgo    int32 // cublasGemmAlgo_t
)

// cuBLAS and library_types.h constants.
const (
	cublasSuccess status = 0

	opN blasOp = 0 // CUBLAS_OP_N
	opT blasOp = 1 // CUBLAS_OP_T

	dtF32  dataType = 0  // CUDA_R_32F
	dtBF16 dataType = 14 // CUDA_R_16BF

	compute32F         blasCompute = 68 // CUBLAS_COMPUTE_32F
	compute32FPedantic blasCompute = 69 // CUBLAS_COMPUTE_32F_PEDANTIC
	gemmDefault        gemmAlgo    = -1 // CUBLAS_GEMM_DEFAULT

	propMajor = 0 // MAJOR_VERSION (libraryPropertyType)
	propMinor = 1
	propPatch = 2
)

// cublas is the part of cuBLAS the backend uses. cublasGemmEx takes 19
// arguments and cublasGemmStridedBatchedEx 23, which purego calls from
// v0.11 on (its limit was 15 before). alpha and beta are host pointers to
// float32 (the compute types are 32F).
type cublas struct {
	lib, lt library

	create      func(h *uintptr) status           `sym:"cublasCreate_v2"`
	destroy     func(h uintptr) status            `sym:"cublasDestroy_v2"`
	setStream   func(h, stream uintptr) status    `sym:"cublasSetStream_v2"`
	getProperty func(prop int32, v *int32) status `sym:"cublasGetProperty"`
	gemmEx      func(h uintptr, ta, tb blasOp, m, n, k int32, alpha unsafe.Pointer,
		a uint64, atype dataType, lda int32, b uint64, btype dataType, ldb int32, beta unsafe.Pointer,
		c uint64, ctype dataType, ldc int32, compute blasCompute, algo gemmAlgo) status `sym:"cublasGemmEx"`
	gemmStridedBatchedEx func(h uintptr, ta, tb blasOp, m, n, k int32, alpha unsafe.Pointer,
		a uint64, atype dataType, lda int32, strideA int64, b uint64, btype dataType, ldb int32, strideB int64, beta unsafe.Pointer,
		c uint64, ctype dataType, ldc int32, strideC int64, batch int32, compute blasCompute, algo gemmAlgo) status `sym:"cublasGemmStridedBatchedEx"`
	getStatusName func(s status) string `sym:"cublasGetStatusName,optional"` // cuBLAS ≥ 11.4
}

// loadCublas opens libcublas and binds it, preferring majors no newer
// than the driver's CUDA major (driverMajor; 0 if unknown). Before each
// candidate it loads the libcublasLt of the same folder and version, which
// libcublas links against, so that the loader finds it by its soname even
// where the folder is on no search path (the nvidia-* wheels).
func loadCublas(dirs []string, nExplicit, driverMajor int) (*cublas, error) {
	c := &cublas{}
	lib, err := openLib(c, preferMajor(cublasNames, driverMajor), dirs, nExplicit, func(p string) {
		dir, name := filepath.Split(p)
		lt := cublasLtName[name]
		if dir == "" || lt == "" || !fileExists(dir+lt) {
			return
		}
		if h, err := dynlib.Open(dir + lt); err == nil {
			c.lt = library{path: dir + lt, handle: h}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cuBLAS: %w", err)
	}
	c.lib = lib
	return c, nil
}

// version returns cuBLAS's version as major.minor.patch.
func (c *cublas) version() string {
	var v [3]int32
	for i, p := range []int32{propMajor, propMinor, propPatch} {
		if c.getProperty(p, &v[i]) != cublasSuccess {
			return "unknown"
		}
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
}

// check turns a cublasStatus_t into an error naming the call.
func (c *cublas) check(s status, call string, args ...any) error {
	if s == cublasSuccess {
		return nil
	}
	if len(args) > 0 {
		call = fmt.Sprintf(call, args...)
	}
	name := fmt.Sprintf("cublasStatus_t %d", int(s))
	if c.getStatusName != nil {
		name = c.getStatusName(s)
	}
	return &Error{Call: call, Code: int(s), Name: name}
}
