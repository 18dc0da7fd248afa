package cuda

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/glmkit/glmkit/trainer"
)

// Options configures a Backend.
type Options struct {
	// Device is the ordinal of the GPU. Default 0.
	Device int
	// LibDir is a folder searched before all others for libcuda.so.1,
	// libcublas and libnvrtc (then $GLMKIT_CUDA_LIB_DIR, LD_LIBRARY_PATH,
	// /usr/local/nvidia/lib64, /usr/local/cuda/lib64, the system folders
	// and the nvidia-* Python wheels).
	LibDir string
	// FP32 runs the matrix products in float32 (CUBLAS_COMPUTE_32F_PEDANTIC
	// on float32 operands) instead of bfloat16 operands with float32
	// accumulation: slower, and within float32 rounding of the CPU backend.
	FP32 bool
	// CacheDir is where compiled kernels are kept, keyed by the source,
	// the options, NVRTC's version and the device's architecture. "" is
	// $GLMKIT_CUDA_CACHE or else os.UserCacheDir()/glmkit/cuda; "off"
	// compiles at every start.
	CacheDir string
	// Sync waits for the device after every op and reports the op whose
	// kernels failed (slow; for debugging). Also set by GLMKIT_CUDA_SYNC=1.
	Sync bool
}

// Info describes the device and libraries a Backend runs on.
type Info struct {
	Device      string // the device's name, e.g. "NVIDIA H100 80GB HBM3"
	Arch        string // compute capability as an NVRTC target, e.g. "sm_90"
	SMs         int    // multiprocessors
	MemoryBytes uint64 // total device memory
	Driver      string // the driver's CUDA version, e.g. "13.0"
	Cublas      string // cuBLAS version, e.g. "13.0.0"
	NVRTC       string // NVRTC version, e.g. "13.0"; "" without NVRTC
	Kernels     string // how the kernels were built: "sm_90 (compiled by NVRTC 13.0)" etc.
	KernelCount int    // kernels in the module
	// ParamsChecked is the number of kernels whose parameter layout the
	// driver confirmed (cuFuncGetParamInfo, CUDA ≥ 12.4): KernelCount, or 0
	// on older drivers.
	ParamsChecked int
	DriverPath    string
	CublasPath    string
	CublasLtPath  string
	NVRTCPath     string
	// Notes are what New worked around: NVRTC's warnings, kernel targets
	// that failed to compile or load, a library newer than the driver.
	Notes []string
}

// Backend is the CUDA implementation of trainer.Backend: float32 buffers
// in device memory, matrix products through cuBLAS, and the other ops as
// kernels compiled by NVRTC when the backend starts. All CUDA calls run on
// one goroutine locked to an OS thread; the ops queue work on one stream
// and return, and Download, DownloadFloat64, SumSquares and Sync wait.
//
// It is not safe for concurrent use (nor is any Backend). Its errors stick
// (see trainer.Backend): an op's error, with the op named, is kept and
// later ops do nothing; a kernel that faults is reported by the next op
// that waits (Download, SumSquares, Sync; with Options.Sync, by the op
// itself). Close releases the device.
type Backend struct {
	opt    Options
	dev    *device
	g      *gpu // owned by the device goroutine: use only inside be.do
	info   Info
	err    error // the first error of an op
	closed bool
	prof   map[string]*opTime // with a profile on (startProfile): each op's time, by name
}

// opTime is the time one kind of op took in a profile.
type opTime struct {
	Calls int
	Time  time.Duration
}

// startProfile times every op from now on, waiting for the device after
// each (so the times add up to the wall time of the work, without the
// overlap of host and device).
func (be *Backend) startProfile() { be.prof = map[string]*opTime{} }

// stopProfile ends the profile and returns the time per op.
func (be *Backend) stopProfile() map[string]*opTime {
	p := be.prof
	be.prof = nil
	return p
}

// opName is op, with the shape appended in a profile (so the breakdown
// tells the products apart).
func (be *Backend) opName(op string, dims ...int) string {
	if be.prof == nil || len(dims) == 0 {
		return op
	}
	var b strings.Builder
	b.WriteString(op)
	for i, d := range dims {
		sep := "×"
		if i == 0 {
			sep = " "
		}
		fmt.Fprintf(&b, "%s%d", sep, d)
	}
	return b.String()
}

var _ trainer.Backend = (*Backend)(nil)

// New opens the CUDA libraries, takes the device's primary context,
// compiles the kernels (or loads them from the cache) and returns the
// backend. Without a driver the error wraps ErrNoDriver, without a usable
// device ErrNoDevice.
func New(o Options) (*Backend, error) {
	if os.Getenv("GLMKIT_CUDA_SYNC") == "1" {
		o.Sync = true
	}
	dirs := libDirs(o.LibDir)
	nx := explicitDirs(o.LibDir)
	drv, err := loadDriver(dirs, nx)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	be := &Backend{opt: o}
	g := &gpu{drv: drv, fp32: o.FP32, attnJumps: map[[2]int]uint64{}, allocs: map[uint64]uint64{}}
	be.dev, err = startDevice(func() error {
		err := be.start(g, dirs, nx)
		if err != nil {
			g.release()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	be.g = g
	return be, nil
}

// start initialises the device on the device goroutine.
func (be *Backend) start(g *gpu, dirs []string, nx int) error {
	driverMajor, major, minor, err := be.openDevice(g)
	if err != nil {
		return err
	}
	if err := g.openContext(); err != nil {
		return err
	}
	if err := be.openCublas(g, dirs, nx, driverMajor); err != nil {
		return err
	}
	if err := be.loadKernels(g, dirs, nx, driverMajor, major, minor); err != nil {
		return err
	}
	g.lb = &launchBuf{}
	g.pinner.Pin(g.lb)
	g.lb.extra = [5]uintptr{launchParamBufferPointer, uintptr(unsafe.Pointer(&g.lb.params[0])),
		launchParamBufferSize, uintptr(unsafe.Pointer(&g.lb.size)), launchParamEnd}
	g.dropJump, err = g.uploadTable(jumpTable(dropBlock/dropPerThread, 1, dropPerThread))
	return err
}

// openDevice initialises the driver and describes the device in be.info;
// it returns the driver's CUDA major version and the device's compute
// capability.
func (be *Backend) openDevice(g *gpu) (driverMajor, major, minor int, err error) {
	drv, in := g.drv, &be.info
	in.DriverPath = drv.lib.path
	if r := drv.init(0); r != cudaSuccess {
		return 0, 0, 0, fmt.Errorf("%w (driver %s): %v", ErrNoDevice, drv.lib.path, drv.check(r, "cuInit"))
	}
	var ver, count int32
	if err := g.check(drv.driverGetVersion(&ver), "cuDriverGetVersion"); err != nil {
		return 0, 0, 0, err
	}
	in.Driver = fmt.Sprintf("%d.%d", ver/1000, ver%1000/10)
	drv.resolveLate(ver)
	if err := g.check(drv.deviceGetCount(&count), "cuDeviceGetCount"); err != nil {
		return 0, 0, 0, err
	}
	if count == 0 {
		return 0, 0, 0, fmt.Errorf("%w: the driver (%s) sees no device", ErrNoDevice, drv.lib.path)
	}
	if be.opt.Device < 0 || be.opt.Device >= int(count) {
		return 0, 0, 0, fmt.Errorf("device %d of %d", be.opt.Device, count)
	}
	if err := g.check(drv.deviceGet(&g.dev, int32(be.opt.Device)), "cuDeviceGet(%d)", be.opt.Device); err != nil {
		return 0, 0, 0, err
	}
	var name [256]byte
	if err := g.check(drv.deviceGetName(&name[0], int32(len(name)), g.dev), "cuDeviceGetName"); err != nil {
		return 0, 0, 0, err
	}
	in.Device = cString(&name[0])
	var cmaj, cmin, sms int32
	if err := errors.Join(
		g.check(drv.deviceGetAttr(&cmaj, attrCCMajor, g.dev), "cuDeviceGetAttribute(compute capability major)"),
		g.check(drv.deviceGetAttr(&cmin, attrCCMinor, g.dev), "cuDeviceGetAttribute(compute capability minor)"),
		g.check(drv.deviceGetAttr(&sms, attrMultiprocessors, g.dev), "cuDeviceGetAttribute(multiprocessors)"),
		g.check(drv.deviceTotalMem(&in.MemoryBytes, g.dev), "cuDeviceTotalMem_v2")); err != nil {
		return 0, 0, 0, err
	}
	in.Arch, in.SMs = fmt.Sprintf("sm_%d%d", cmaj, cmin), int(sms)
	return int(ver / 1000), int(cmaj), int(cmin), nil
}

// openContext makes the device's primary context current on this thread
// and creates the streams and the staging ring's events.
//
// The primary context is retained and never released: releasing the last
// reference destroys it, and cuBLAS keeps per-context state (its kernels,
// loaded into the context at first use) in process-wide tables that would
// outlive it, so a second New in the process would run cuBLAS on a context
// it does not know. One reference per New, kept for the life of the
// process, costs nothing.
func (g *gpu) openContext() error {
	drv := g.drv
	var ctx uintptr
	if err := g.check(drv.primaryCtxRetain(&ctx, g.dev), "cuDevicePrimaryCtxRetain"); err != nil {
		return err
	}
	g.ctx = ctx
	if err := g.check(drv.ctxSetCurrent(g.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	// each handle is kept only once created, so that release frees
	// exactly what exists
	for _, s := range []*uintptr{&g.compute, &g.copy} {
		var h uintptr
		if err := g.check(drv.streamCreate(&h, streamNonBlocking), "cuStreamCreate"); err != nil {
			return err
		}
		*s = h
	}
	for i := range g.ring {
		for _, e := range []*uintptr{&g.ring[i].copied, &g.ring[i].done} {
			var h uintptr
			if err := g.check(drv.eventCreate(&h, eventDisableTiming), "cuEventCreate"); err != nil {
				return err
			}
			*e = h
		}
	}
	return nil
}

// openCublas loads cuBLAS (no newer than the driver if it can) and creates
// its handle on the compute stream.
func (be *Backend) openCublas(g *gpu, dirs []string, nx, driverMajor int) error {
	in := &be.info
	blas, err := loadCublas(dirs, nx, driverMajor)
	if err != nil {
		return err
	}
	g.blas = blas
	in.CublasPath, in.CublasLtPath, in.Cublas = blas.lib.path, blas.lt.path, blas.version()
	if m := soMajor(blas.lib.path); m > driverMajor {
		in.Notes = append(in.Notes, fmt.Sprintf("cuBLAS %s (%s) is newer than the driver's CUDA %s: no older one was found", in.Cublas, blas.lib.path, in.Driver))
	}
	var h uintptr
	if err := blas.check(blas.create(&h), "cublasCreate_v2"); err != nil {
		return err
	}
	g.handle = h
	return blas.check(blas.setStream(g.handle, g.compute), "cublasSetStream_v2")
}

// release frees what start created, on the device goroutine.
func (g *gpu) release() {
	drv := g.drv
	if g.ctx == 0 {
		return
	}
	if g.compute != 0 {
		_ = g.syncStreams()
	}
	if g.module != 0 {
		drv.moduleUnload(g.module)
	}
	if g.handle != 0 {
		g.blas.destroy(g.handle)
	}
	for i := range g.ring {
		s := &g.ring[i]
		if s.host != nil {
			drv.memFreeHost(s.host)
		}
		for _, e := range []uintptr{s.copied, s.done} {
			if e != 0 {
				drv.eventDestroy(e)
			}
		}
	}
	for p := range g.allocs {
		drv.memFree(p)
	}
	clear(g.allocs)
	for _, s := range []uintptr{g.compute, g.copy} {
		if s != 0 {
			drv.streamDestroy(s)
		}
	}
	if g.lb != nil {
		g.pinner.Unpin()
	}
	drv.ctxSetCurrent(0)
	g.ctx = 0 // the primary context stays retained (see start)
}

// Close waits for the queued work, frees every buffer and releases the
// device. The backend and its buffers are unusable afterwards.
func (be *Backend) Close() error {
	if be.closed {
		return nil
	}
	err := be.dev.do(func() error {
		err := be.g.syncStreams()
		be.g.release()
		return err
	})
	be.dev.stop()
	be.closed = true
	return err
}

// Info describes the device and the libraries.
func (be *Backend) Info() Info { return be.info }

// Name implements trainer.Backend.
func (be *Backend) Name() string {
	gemm := "bf16 GEMMs with float32 accumulation"
	if be.opt.FP32 {
		gemm = "float32 GEMMs"
	}
	in := be.info
	return fmt.Sprintf("cuda (%s, %s, %d SMs, %.0f GiB; %s, cuBLAS %s, driver CUDA %s, kernels %s)",
		in.Device, in.Arch, in.SMs, gib(in.MemoryBytes), gemm, in.Cublas, in.Driver, strings.SplitN(in.Kernels, " ", 2)[0])
}

// failed records err as the backend's error unless one is recorded
// already, and reports whether the backend has failed (so an op must not
// run).
func (be *Backend) failed(err error) bool {
	if be.err == nil {
		be.err = err
	}
	return be.err != nil
}

// Err implements trainer.Backend.
func (be *Backend) Err() error { return be.err }

// do runs an op's device work on the device goroutine, unless the backend
// has failed; a failure becomes the backend's error. It returns the
// backend's error.
func (be *Backend) do(op string, f func(g *gpu) error) error {
	if be.err != nil {
		return be.err
	}
	if be.closed {
		be.err = fmt.Errorf("cuda: %s on a closed backend", op)
		return be.err
	}
	err := be.run(op, f)
	if err != nil {
		be.err = fmt.Errorf("cuda: %s: %w", op, err)
	}
	return be.err
}

// run is do without the sticky error: for allocations, whose failure
// leaves the backend usable.
func (be *Backend) run(op string, f func(g *gpu) error) error {
	var t0 time.Time
	if be.prof != nil {
		t0 = time.Now()
	}
	err := be.dev.do(func() error {
		if err := f(be.g); err != nil {
			return err
		}
		if be.opt.Sync || be.prof != nil {
			if err := be.g.syncStreams(); err != nil {
				return fmt.Errorf("after its kernels ran: %w", err)
			}
		}
		return nil
	})
	if be.prof != nil {
		t := be.prof[op]
		if t == nil {
			t = &opTime{}
			be.prof[op] = t
		}
		t.Calls++
		t.Time += time.Since(t0)
	}
	return err
}

// ----------------------------------------------------------------------------
// buffers

// elem is the element type of an allocation.
type elem uint8

const (
	elemFloat elem = iota
	elemInt32
)

// allocation is one device allocation of 4-byte elements. An int32
// allocation keeps a host copy of its contents: int32 buffers are written
// only by UploadInt32 and Zero, and the ops that take ids (embeddings,
// gathers, targets, seps) check them and group them on the host from it.
type allocation struct {
	ptr   uint64
	n     int
	elem  elem
	host  []int32
	freed bool
}

// buf is the backend's trainer.Buf: a view of an allocation.
type buf struct {
	a      *allocation
	off, n int
}

// Len implements trainer.Buf.
func (b buf) Len() int { return b.n }

// Slice implements trainer.Buf.
func (b buf) Slice(off, n int) trainer.Buf {
	if off < 0 || n < 0 || off+n > b.n {
		panic(fmt.Sprintf("cuda: slice [%d:%d] of a buffer of %d elements", off, off+n, b.n))
	}
	return buf{b.a, b.off + off, n}
}

// ptr is the view's device address; 0 for the zero buf (a nil buffer).
func (b buf) ptr() uint64 {
	if b.a == nil {
		return 0
	}
	return b.a.ptr + 4*uint64(b.off)
}

// ints is an int32 view's host copy.
func (b buf) ints() []int32 { return b.a.host[b.off : b.off+b.n] }

func (be *Backend) newBuf(n int, e elem) (trainer.Buf, error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: allocate %d elements", n)
	}
	if be.err != nil {
		return nil, be.err
	}
	if be.closed {
		return nil, errors.New("cuda: allocate on a closed backend")
	}
	a := &allocation{n: n, elem: e}
	if e == elemInt32 {
		a.host = make([]int32, n)
	}
	err := be.run("allocate", func(g *gpu) error {
		p, err := g.alloc(4 * uint64(n))
		if err != nil {
			return err
		}
		a.ptr = p
		return g.memsetZero(p, n)
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: allocate: %w", err)
	}
	return buf{a: a, n: n}, nil
}

// Floats implements trainer.Backend.
func (be *Backend) Floats(n int) (trainer.Buf, error) { return be.newBuf(n, elemFloat) }

// Int32s implements trainer.Backend.
func (be *Backend) Int32s(n int) (trainer.Buf, error) { return be.newBuf(n, elemInt32) }

// Free implements trainer.Backend: after the queued work that uses b. (A
// failed backend frees its memory at Close.)
func (be *Backend) Free(b trainer.Buf) {
	v, ok := b.(buf)
	switch {
	case !ok:
		be.failed(fmt.Errorf("cuda: free a buffer of type %T", b))
	case v.off != 0 || v.n != v.a.n:
		be.failed(errors.New("cuda: free a view; free the buffer Floats or Int32s returned"))
	case v.a.freed:
		be.failed(errors.New("cuda: buffer freed twice"))
	default:
		v.a.freed = true
		be.do("free", func(g *gpu) error { return g.free(v.a.ptr) })
	}
}

// view checks that b is a live buffer of this backend with elements of
// type e and at least n elements. A nil b is allowed when n is 0.
func view(op, name string, b trainer.Buf, e elem, n int) (buf, error) {
	if b == nil {
		if n == 0 {
			return buf{}, nil
		}
		return buf{}, fmt.Errorf("cuda: %s: %s is nil", op, name)
	}
	v, ok := b.(buf)
	switch {
	case !ok:
		return buf{}, fmt.Errorf("cuda: %s: %s is a %T, not a buffer of the CUDA backend", op, name, b)
	case v.a.freed:
		return buf{}, fmt.Errorf("cuda: %s: %s was freed", op, name)
	case v.a.elem != e:
		kind := "float"
		if e == elemInt32 {
			kind = "int32"
		}
		return buf{}, fmt.Errorf("cuda: %s: %s is not a %s buffer", op, name, kind)
	case n < 0:
		return buf{}, fmt.Errorf("cuda: %s: negative size %d for %s", op, n, name)
	case v.n < n:
		return buf{}, fmt.Errorf("cuda: %s: %s has %d elements; want at least %d", op, name, v.n, n)
	}
	return v, nil
}

// Upload implements trainer.Backend. It returns once src is copied to
// pinned memory; the transfer to the device overlaps the queued work.
func (be *Backend) Upload(dst trainer.Buf, src []float32) { upload(be, dst, src, elemFloat, "floats") }

// UploadInt32 implements trainer.Backend. The buffer's host copy, which
// the ops check ids against, gets the values too.
func (be *Backend) UploadInt32(dst trainer.Buf, src []int32) {
	if d, ok := upload(be, dst, src, elemInt32, "int32s"); ok {
		copy(d.ints(), src)
	}
}

// upload queues the copy of src into dst, a buffer of exactly len(src)
// elements of kind e, and returns dst's view; ok is false when the copy
// was not queued (nothing to copy, or an error, which sticks).
func upload[T float32 | int32](be *Backend, dst trainer.Buf, src []T, e elem, what string) (d buf, ok bool) {
	d, err := view("upload", "dst", dst, e, len(src))
	if err == nil && d.n != len(src) {
		err = fmt.Errorf("cuda: upload %d %s into a buffer of %d", len(src), what, d.n)
	}
	if be.failed(err) || len(src) == 0 {
		return d, false
	}
	be.do("upload", func(g *gpu) error {
		return g.upload(d.ptr(), unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src)))
	})
	return d, true
}

// Download implements trainer.Backend; it waits for the queued work.
func (be *Backend) Download(dst []float32, src trainer.Buf) error {
	s, err := view("download", "src", src, elemFloat, 0)
	if err == nil && s.n != len(dst) {
		err = fmt.Errorf("cuda: download a buffer of %d floats into %d", s.n, len(dst))
	}
	if be.failed(err) {
		return be.err
	}
	if len(dst) == 0 {
		return nil
	}
	return be.do("download", func(g *gpu) error {
		return g.download(unsafe.Pointer(&dst[0]), s.ptr(), 4*uint64(len(dst)))
	})
}

// DownloadFloat64 implements trainer.Backend: float32 values, widened.
func (be *Backend) DownloadFloat64(dst []float64, src trainer.Buf) error {
	tmp := make([]float32, len(dst))
	if err := be.Download(tmp, src); err != nil {
		return err
	}
	for i, v := range tmp {
		dst[i] = float64(v)
	}
	return nil
}

// Zero implements trainer.Backend.
func (be *Backend) Zero(b trainer.Buf) {
	v, ok := b.(buf)
	if !ok || v.a.freed {
		be.failed(fmt.Errorf("cuda: zero a buffer of type %T (or a freed one)", b))
		return
	}
	if be.err != nil {
		return
	}
	if v.a.elem == elemInt32 {
		clear(v.ints())
	}
	be.do("zero", func(g *gpu) error { return g.memsetZero(v.ptr(), v.n) })
}

// Sync implements trainer.Backend.
func (be *Backend) Sync() error {
	return be.do("sync", func(g *gpu) error { return g.syncStreams() })
}
