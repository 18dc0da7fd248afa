// Package cpu is the CPU backend of the GLM trainer: pure Go, multi-threaded,
// with matrix products through OpenBLAS when the library is present.
//
// The backend is generic over its float type. Backend[float32] trains;
// Backend[float64] is the oracle the tests use for gradient checks and for
// parity with PyTorch. Buffers are ordinary Go slices (Host returns them).
//
// Every op splits its work into fixed partitions that depend only on the
// shapes, never on the thread count, and sums partial results in partition
// order, so results are bitwise identical for any Options.Threads or
// GOMAXPROCS. With OpenBLAS, the backend sets the library to one thread and
// calls it from its own goroutines on fixed row blocks, for the same reason.
package cpu

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/glmkit/glmkit/internal/sysmem"
	"github.com/glmkit/glmkit/trainer"
)

// Float is the element type of the backend's float buffers.
type Float interface{ float32 | float64 }

// Options configures a Backend.
type Options struct {
	// Threads is the number of goroutines an op may use. Default
	// runtime.GOMAXPROCS(0). Results do not depend on it.
	Threads int
	// BLAS selects the matrix-product path:
	//   ""          the value of $GLMKIT_BLAS, or "auto" when unset
	//   "auto"      OpenBLAS (libopenblas.so.0) if it loads, else pure Go
	//   "off"       pure Go, even when OpenBLAS is installed
	//   "openblas"  OpenBLAS, or an error if it does not load
	//   a path      that library (anything containing a '/'), or an error
	BLAS string
	// Memory bounds the bytes of the buffers the backend holds at once:
	// an allocation past it fails with an error instead of the Go
	// runtime's fatal out-of-memory crash. Default: the machine's memory,
	// or its cgroup's limit where lower (Linux; no bound where neither is
	// known); negative: no bound.
	Memory int64
}

// Backend is the CPU implementation of trainer.Backend. It is not safe for
// concurrent use (nor is any Backend). Its errors stick (see
// trainer.Backend): they are bad arguments, reported by the op that met
// them through Err, Sync, Download and SumSquares.
type Backend[T Float] struct {
	threads int
	blas    *openblas // nil: pure Go matrix products
	err     error     // the first error of an op
	memory  int64     // the bound on live, the bytes of buffers held (0: none)
	live    int64
	bound   string // where memory comes from, for errors
}

// errClosed is the error of a backend after Close.
var errClosed = errors.New("cpu: the backend is closed")

var _ trainer.Backend = (*Backend[float32])(nil)

// New returns a CPU backend. It fails only when o.BLAS asks for a library
// that does not load.
func New[T Float](o Options) (*Backend[T], error) {
	be := &Backend[T]{threads: o.Threads, memory: o.Memory, bound: "Options.Memory"}
	if be.threads <= 0 {
		be.threads = runtime.GOMAXPROCS(0)
	}
	if be.memory == 0 {
		be.memory, be.bound = sysmem.Total()
	}
	be.memory = max(be.memory, 0)
	mode := o.BLAS
	if mode == "" {
		mode = os.Getenv("GLMKIT_BLAS")
	}
	switch {
	case mode == "" || mode == "auto":
		be.blas, _ = loadOpenBLAS("libopenblas.so.0")
	case mode == "off" || mode == "go":
		// pure Go
	case mode == "openblas" || mode == "on":
		lib, err := loadOpenBLAS("libopenblas.so.0")
		if err != nil {
			return nil, fmt.Errorf("cpu: %w (install it with apt-get install libopenblas0, or set BLAS to off)", err)
		}
		be.blas = lib
	default:
		lib, err := loadOpenBLAS(mode)
		if err != nil {
			return nil, fmt.Errorf("cpu: %w", err)
		}
		be.blas = lib
	}
	return be, nil
}

// Name implements trainer.Backend.
func (be *Backend[T]) Name() string {
	var z T
	prec := "float32"
	if any(z) == any(float64(0)) {
		prec = "float64"
	}
	mm := "pure Go"
	if be.blas != nil {
		mm = "openblas " + be.blas.config
	}
	return fmt.Sprintf("cpu (%s, %d threads, %s)", mm, be.threads, prec)
}

// BLAS reports whether matrix products go through OpenBLAS.
func (be *Backend[T]) BLAS() bool { return be.blas != nil }

// floats is the CPU's float buffer.
type floats[T Float] []T

func (f floats[T]) Len() int { return len(f) }

func (f floats[T]) Slice(off, n int) trainer.Buf { return f[off : off+n : off+n] }

// int32s is the CPU's int32 buffer.
type int32s []int32

func (s int32s) Len() int { return len(s) }

func (s int32s) Slice(off, n int) trainer.Buf { return s[off : off+n : off+n] }

// Host returns the memory behind a float buffer of a Backend[T]: on the CPU
// a buffer is a Go slice, and writes through the result are writes to the
// buffer. It returns nil for a nil Buf and panics for a buffer of another
// backend or type.
func Host[T Float](b trainer.Buf) []T {
	if b == nil {
		return nil
	}
	return b.(floats[T])
}

// f converts a float Buf; a nil Buf gives a nil slice.
func f[T Float](b trainer.Buf) []T {
	if b == nil {
		return nil
	}
	s, ok := b.(floats[T])
	if !ok {
		panic(fmt.Sprintf("cpu: buffer of type %T is not a float buffer of this backend", b))
	}
	return s
}

func ints(b trainer.Buf) []int32 {
	if b == nil {
		return nil
	}
	s, ok := b.(int32s)
	if !ok {
		panic(fmt.Sprintf("cpu: buffer of type %T is not an int32 buffer of this backend", b))
	}
	return s
}

// Floats implements trainer.Backend.
func (be *Backend[T]) Floats(n int) (trainer.Buf, error) {
	var z T
	if err := be.reserve(n, int64(unsafe.Sizeof(z)), "floats"); err != nil {
		return nil, err
	}
	return floats[T](make([]T, n)), nil
}

// Int32s implements trainer.Backend.
func (be *Backend[T]) Int32s(n int) (trainer.Buf, error) {
	if err := be.reserve(n, 4, "int32s"); err != nil {
		return nil, err
	}
	return int32s(make([]int32, n)), nil
}

// reserve counts an allocation of n elements of size bytes against the
// backend's memory bound, or says why it does not fit.
func (be *Backend[T]) reserve(n int, size int64, what string) error {
	if n < 0 {
		return fmt.Errorf("cpu: allocate %d %s", n, what)
	}
	bytes := int64(n) * size
	if be.memory > 0 && (bytes/size != int64(n) || be.live+bytes > be.memory) {
		return fmt.Errorf("cpu: %d %s (%s) more than the %s held would pass the %s of %s", n, what, gib(bytes), gib(be.live), gib(be.memory), be.bound)
	}
	be.live += bytes
	return nil
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// ok records err as the backend's error unless one is recorded already,
// and reports whether an op may run: no error so far.
func (be *Backend[T]) ok(err error) bool {
	if be.err == nil {
		be.err = err
	}
	return be.err == nil
}

// Err implements trainer.Backend.
func (be *Backend[T]) Err() error { return be.err }

// Close implements trainer.Backend: there is nothing to release (the
// garbage collector owns CPU memory); ops after it fail.
func (be *Backend[T]) Close() error {
	be.ok(errClosed)
	return nil
}

// Free implements trainer.Backend: the garbage collector owns CPU memory,
// and the buffer no longer counts against the memory bound.
func (be *Backend[T]) Free(b trainer.Buf) {
	var z T
	switch b := b.(type) {
	case floats[T]:
		be.live -= int64(len(b)) * int64(unsafe.Sizeof(z))
	case int32s:
		be.live -= int64(len(b)) * 4
	}
	be.live = max(be.live, 0)
}

// Sync implements trainer.Backend; CPU ops are synchronous.
func (be *Backend[T]) Sync() error { return be.err }

// Upload implements trainer.Backend.
func (be *Backend[T]) Upload(dst trainer.Buf, src []float32) {
	d := f[T](dst)
	if !be.ok(sameLen("upload", "floats", len(src), len(d))) {
		return
	}
	for i, x := range src {
		d[i] = T(x)
	}
}

// UploadInt32 implements trainer.Backend.
func (be *Backend[T]) UploadInt32(dst trainer.Buf, src []int32) {
	d := ints(dst)
	if !be.ok(sameLen("upload", "int32s", len(src), len(d))) {
		return
	}
	copy(d, src)
}

// Download implements trainer.Backend.
func (be *Backend[T]) Download(dst []float32, src trainer.Buf) error {
	return download(be, dst, src)
}

// DownloadFloat64 implements trainer.Backend.
func (be *Backend[T]) DownloadFloat64(dst []float64, src trainer.Buf) error {
	return download(be, dst, src)
}

// download converts src into dst, which must have its length.
func download[D, T Float](be *Backend[T], dst []D, src trainer.Buf) error {
	s := f[T](src)
	if !be.ok(sameLen("download", "floats", len(dst), len(s))) {
		return be.err
	}
	for i, x := range s {
		dst[i] = D(x)
	}
	return nil
}

// sameLen reports a copy of n host elements to or from a buffer of bufLen.
func sameLen(op, what string, n, bufLen int) error {
	if n == bufLen {
		return nil
	}
	if op == "upload" {
		return fmt.Errorf("cpu: upload %d %s into a buffer of %d", n, what, bufLen)
	}
	return fmt.Errorf("cpu: download a buffer of %d %s into %d", bufLen, what, n)
}

// Zero implements trainer.Backend.
func (be *Backend[T]) Zero(b trainer.Buf) {
	if !be.ok(nil) {
		return
	}
	switch s := b.(type) {
	case floats[T]:
		be.par(len(s), 1<<16, func(lo, hi int) { clear(s[lo:hi]) })
	case int32s:
		clear(s)
	default:
		be.ok(fmt.Errorf("cpu: zero a buffer of type %T", b))
	}
}

// par runs fn over [0, n) cut into chunks of grain items (the last may be
// shorter). The chunks depend only on n and grain; up to be.threads
// goroutines take them in turn. fn must only write state owned by its chunk.
func (be *Backend[T]) par(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := (n + grain - 1) / grain
	workers := min(be.threads, chunks)
	if workers <= 1 {
		for lo := 0; lo < n; lo += grain {
			fn(lo, min(lo+grain, n))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var panicked atomic.Value
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					panicked.CompareAndSwap(nil, fmt.Sprint(r))
				}
			}()
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				lo := c * grain
				fn(lo, min(lo+grain, n))
			}
		}()
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(p) // a programmer error inside an op; re-raised on the caller's goroutine
	}
}

// need is one buffer-size requirement of an op.
type need struct {
	name string
	b    trainer.Buf
	n    int
}

// check returns an error unless every buffer has at least its required
// number of elements (a nil Buf is fine when nothing is required).
func check(op string, ns ...need) error {
	for _, r := range ns {
		if r.n < 0 {
			return fmt.Errorf("cpu: %s: negative size %d for %s", op, r.n, r.name)
		}
		have := 0
		if r.b != nil {
			have = r.b.Len()
		}
		if have < r.n {
			return fmt.Errorf("cpu: %s: %s has %d elements; want at least %d", op, r.name, have, r.n)
		}
	}
	return nil
}
