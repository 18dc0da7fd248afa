package cuda

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/glmkit/glmkit/trainer"
)

// The binding tests call every bound function of the driver, cuBLAS and
// NVRTC against the stand-in library, which logs the arguments it
// received; each test compares that line with what was passed, and the
// results with what the stand-in returns.

func wantCall(t *testing.T, f *fake, want string) {
	t.Helper()
	if got := f.lastCall(); got != want {
		t.Errorf("the library received\n\t%s\nwant\n\t%s", got, want)
	}
}

func okCall(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fakeDriver(t *testing.T) (*fake, *driver) {
	t.Helper()
	f := newFake(t)
	d, err := loadDriver([]string{f.dir}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.dir, "libcuda.so.1"); d.lib.path != want {
		t.Fatalf("driver loaded from %s; want %s", d.lib.path, want)
	}
	return f, d
}

func TestDriverBindings(t *testing.T) {
	f, d := fakeDriver(t)
	c := func(r result, call string) error { return d.check(r, call) }

	okCall(t, c(d.init(5), "cuInit"))
	wantCall(t, f, "cuInit(flags=5)")
	var v int32
	okCall(t, c(d.driverGetVersion(&v), "cuDriverGetVersion"))
	if v != 13000 {
		t.Errorf("cuDriverGetVersion = %d; want 13000", v)
	}
	okCall(t, c(d.deviceGetCount(&v), "cuDeviceGetCount"))
	if v != 1 {
		t.Errorf("cuDeviceGetCount = %d; want 1", v)
	}
	var dev int32 = -1
	okCall(t, c(d.deviceGet(&dev, 0), "cuDeviceGet"))
	wantCall(t, f, "cuDeviceGet(ordinal=0)")
	err := c(d.deviceGet(&dev, 3), "cuDeviceGet(3)")
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != 101 || ce.Name != "CUDA_ERROR_INVALID_DEVICE" || !strings.Contains(err.Error(), "invalid device ordinal") {
		t.Errorf("cuDeviceGet(3) error = %v; want CUDA_ERROR_INVALID_DEVICE (101): invalid device ordinal", err)
	}
	var name [64]byte
	okCall(t, c(d.deviceGetName(&name[0], 64, dev), "cuDeviceGetName"))
	wantCall(t, f, "cuDeviceGetName(len=64, dev=0)")
	if got := cString(&name[0]); got != "GLMKIT Fake GPU 0" {
		t.Errorf("cuDeviceGetName = %q", got)
	}
	for attr, want := range map[int32]int32{attrCCMajor: 9, attrCCMinor: 0, attrMultiprocessors: 132, 12345: 12345000} {
		okCall(t, c(d.deviceGetAttr(&v, attr, dev), "cuDeviceGetAttribute"))
		wantCall(t, f, fmt.Sprintf("cuDeviceGetAttribute(attr=%d, dev=0) -> %d", attr, want))
		if v != want {
			t.Errorf("cuDeviceGetAttribute(%d) = %d; want %d", attr, v, want)
		}
	}
	var total uint64
	okCall(t, c(d.deviceTotalMem(&total, dev), "cuDeviceTotalMem_v2"))
	if total != 80<<30 {
		t.Errorf("cuDeviceTotalMem_v2 = %d", total)
	}
	var ctx uintptr
	okCall(t, c(d.primaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain"))
	if ctx != 0xC0DE00 {
		t.Errorf("cuDevicePrimaryCtxRetain = %#x", ctx)
	}
	okCall(t, c(d.ctxSetCurrent(ctx), "cuCtxSetCurrent"))
	wantCall(t, f, "cuCtxSetCurrent(ctx=0xc0de00)")
	driverMemory(t, f, d)
	driverStreams(t, f, d)
	driverModules(t, f, d)

	// cuFuncGetParamInfo: not exported, found through cuGetProcAddress_v2
	if d.funcGetParamInfo != nil {
		t.Fatal("the stand-in exports cuFuncGetParamInfo; the test wants it only through cuGetProcAddress_v2")
	}
	d.resolveLate(13000)
	wantCall(t, f, `cuGetProcAddress_v2(symbol="cuFuncGetParamInfo", version=13000, flags=0)`)
	if d.funcGetParamInfo == nil {
		t.Fatal("cuFuncGetParamInfo not resolved through cuGetProcAddress_v2")
	}
	okCall(t, c(d.primaryCtxRelease(dev), "cuDevicePrimaryCtxRelease_v2"))
	wantCall(t, f, "cuDevicePrimaryCtxRelease_v2(dev=0)")
	f.assertClean(t)
}

// driverMemory: a 64-bit size, a value, pointers and a stream handle each
// way.
func driverMemory(t *testing.T, f *fake, d *driver) {
	c := func(r result, call string) error { return d.check(r, call) }
	var p, free, total uint64
	okCall(t, c(d.memAlloc(&p, 1<<20+3), "cuMemAlloc_v2"))
	wantCall(t, f, "cuMemAlloc_v2(bytes=1048579)")
	okCall(t, c(d.memGetInfo(&free, &total), "cuMemGetInfo_v2"))
	if total-free < 1<<20+3 {
		t.Errorf("cuMemGetInfo_v2: free %d of %d after an allocation of 1 MiB", free, total)
	}
	okCall(t, c(d.memsetD32Async(p, 0xdeadbeef, 250, 0x1234), "cuMemsetD32Async"))
	wantCall(t, f, fmt.Sprintf("cuMemsetD32Async(dst=%#x, value=%d, n=250, stream=0x1234)", p, uint32(0xdeadbeef)))
	var host unsafe.Pointer
	okCall(t, c(d.memHostAlloc(&host, 1000, memHostAllocPortable), "cuMemHostAlloc"))
	wantCall(t, f, "cuMemHostAlloc(bytes=1000, flags=1)")
	hb := unsafe.Slice((*byte)(host), 1000)
	for i := range hb {
		hb[i] = byte(i * 7)
	}
	okCall(t, c(d.memcpyHtoDAsync(p+8, host, 1000, 0x99), "cuMemcpyHtoDAsync_v2"))
	wantCall(t, f, fmt.Sprintf("cuMemcpyHtoDAsync_v2(dst=%#x, src=%#x, bytes=1000, stream=0x99)", p+8, uintptr(host)))
	okCall(t, c(d.memcpyDtoDAsync(p+2000, p+8, 1000, 0x98), "cuMemcpyDtoDAsync_v2"))
	wantCall(t, f, fmt.Sprintf("cuMemcpyDtoDAsync_v2(dst=%#x, src=%#x, bytes=1000, stream=0x98)", p+2000, p+8))
	back := make([]byte, 1000)
	okCall(t, c(d.memcpyDtoHAsync(unsafe.Pointer(&back[0]), p+2000, 1000, 0x97), "cuMemcpyDtoHAsync_v2"))
	wantCall(t, f, fmt.Sprintf("cuMemcpyDtoHAsync_v2(dst=%#x, src=%#x, bytes=1000, stream=0x97)", uintptr(unsafe.Pointer(&back[0])), p+2000))
	if !bytes.Equal(back, hb) {
		t.Errorf("the round trip through device memory gave % x…; want % x…", back[:16], hb[:16])
	}
	okCall(t, c(d.memcpyDtoHAsync(unsafe.Pointer(&back[0]), p, 8, 0x97), "cuMemcpyDtoHAsync_v2"))
	if got := binary.LittleEndian.Uint32(back[:4]); got != 0xdeadbeef {
		t.Errorf("cuMemsetD32Async wrote %#x", got)
	}
	okCall(t, c(d.memFreeHost(host), "cuMemFreeHost"))
	okCall(t, c(d.memFree(p), "cuMemFree_v2"))
	wantCall(t, f, fmt.Sprintf("cuMemFree_v2(p=%#x)", p))
	f.fail("cuMemAlloc_v2", 2)
	err := c(d.memAlloc(&p, 64), "cuMemAlloc_v2(64 bytes)")
	if err == nil || err.Error() != "cuMemAlloc_v2(64 bytes): CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" {
		t.Errorf("an injected failure gave %v", err)
	}
}

// driverStreams: streams and events.
func driverStreams(t *testing.T, f *fake, d *driver) {
	c := func(r result, call string) error { return d.check(r, call) }
	var s, e uintptr
	okCall(t, c(d.streamCreate(&s, streamNonBlocking), "cuStreamCreate"))
	wantCall(t, f, fmt.Sprintf("cuStreamCreate(flags=1) -> %#x", s))
	okCall(t, c(d.eventCreate(&e, eventDisableTiming), "cuEventCreate"))
	wantCall(t, f, fmt.Sprintf("cuEventCreate(flags=2) -> %#x", e))
	okCall(t, c(d.eventRecord(e, s), "cuEventRecord"))
	wantCall(t, f, fmt.Sprintf("cuEventRecord(event=%#x, stream=%#x)", e, s))
	okCall(t, c(d.streamWaitEvent(s, e, 0), "cuStreamWaitEvent"))
	wantCall(t, f, fmt.Sprintf("cuStreamWaitEvent(stream=%#x, event=%#x, flags=0)", s, e))
	okCall(t, c(d.eventSynchronize(e), "cuEventSynchronize"))
	wantCall(t, f, fmt.Sprintf("cuEventSynchronize(event=%#x)", e))
	okCall(t, c(d.streamSynchronize(s), "cuStreamSynchronize"))
	wantCall(t, f, fmt.Sprintf("cuStreamSynchronize(stream=%#x)", s))
	okCall(t, c(d.eventDestroy(e), "cuEventDestroy_v2"))
	okCall(t, c(d.streamDestroy(s), "cuStreamDestroy_v2"))
	wantCall(t, f, fmt.Sprintf("cuStreamDestroy_v2(stream=%#x)", s))
}

// driverModules: modules, functions and an 11-argument launch with a
// packed buffer.
func driverModules(t *testing.T, f *fake, d *driver) {
	c := func(r result, call string) error { return d.check(r, call) }
	var ce *Error
	image := []byte("hello module\nrest of the image.............\x00")
	var m, fn uintptr
	okCall(t, c(d.moduleLoadData(&m, unsafe.Pointer(&image[0])), "cuModuleLoadData"))
	wantCall(t, f, `cuModuleLoadData(image="hello module")`)
	okCall(t, c(d.moduleGetFunction(&fn, m, "fake_probe"), "cuModuleGetFunction"))
	wantCall(t, f, fmt.Sprintf(`cuModuleGetFunction(module=%#x, name="fake_probe")`, m))
	err := c(d.moduleGetFunction(&fn, m, "no_such_kernel"), "cuModuleGetFunction")
	if !errors.As(err, &ce) || ce.Name != "CUDA_ERROR_NOT_FOUND" {
		t.Errorf("a missing kernel gave %v", err)
	}
	okCall(t, c(d.moduleGetFunction(&fn, m, "fake_probe"), "cuModuleGetFunction"))
	kinds := []paramKind{pPtr, pI32, pI64, pF32, pU32, pU64, pI32}
	packed, err := packParams(nil, kinds, []any{uint64(0x1122334455667788), -2, int64(-3), float32(1.5), uint32(7), uint64(1 << 63), int32(9)})
	if err != nil {
		t.Fatal(err)
	}
	wantPacked := "8877665544332211" + "feffffff" + "00000000" + "fdffffffffffffff" + "0000c03f" + "07000000" + "0000000000000080" + "09000000"
	if got := fmt.Sprintf("%x", packed); got != wantPacked {
		t.Errorf("packed parameters %s; want %s", got, wantPacked)
	}
	size := uint64(len(packed))
	extra := [5]uintptr{launchParamBufferPointer, uintptr(unsafe.Pointer(&packed[0])), launchParamBufferSize, uintptr(unsafe.Pointer(&size)), launchParamEnd}
	okCall(t, c(d.launchKernel(fn, 2, 3, 4, 5, 6, 7, 8, 0x4242, nil, unsafe.Pointer(&extra[0])), "cuLaunchKernel"))
	wantCall(t, f, fmt.Sprintf("cuLaunchKernel(func=fake_probe, grid=2x3x4, block=5x6x7, shared=8, stream=0x4242, params=null, extra=ok, size=%d, buffer=%s)", len(packed), wantPacked))
	if !bytes.Equal(f.params(), packed) {
		t.Errorf("the launch received % x; want % x", f.params(), packed)
	}
	okCall(t, c(d.moduleUnload(m), "cuModuleUnload"))
}

func TestCublasBindings(t *testing.T) {
	f, d := fakeDriver(t)
	b, err := loadCublas([]string{f.dir}, 1, 13)
	if err != nil {
		t.Fatal(err)
	}
	if b.lib.path != filepath.Join(f.dir, "libcublas.so.13") || b.lt.path != filepath.Join(f.dir, "libcublasLt.so.13") {
		t.Errorf("cuBLAS loaded from %s, cuBLASLt from %s", b.lib.path, b.lt.path)
	}
	if v := b.version(); v != "13.0.7" {
		t.Errorf("cuBLAS version %s; want 13.0.7", v)
	}
	fx := &cublasFixture{t: t, f: f, d: d, b: b, r: rand.New(rand.NewPCG(1, 2))}
	okCall(t, b.check(b.create(&fx.h), "cublasCreate_v2"))
	okCall(t, b.check(b.setStream(fx.h, 0x77), "cublasSetStream_v2"))
	wantCall(t, f, fmt.Sprintf("cublasSetStream_v2(handle=%#x, stream=0x77)", fx.h))
	fx.gemmEx()
	fx.gemmStridedBatched()
	for _, p := range fx.ptrs {
		okCall(t, d.check(d.memFree(p), "cuMemFree_v2"))
	}
	okCall(t, b.check(b.destroy(fx.h), "cublasDestroy_v2"))
	wantCall(t, f, fmt.Sprintf("cublasDestroy_v2(handle=%#x)", fx.h))
	f.assertClean(t)
}

// cublasFixture is a cuBLAS handle on the stand-in, and the device memory
// its tests allocate.
type cublasFixture struct {
	t    *testing.T
	f    *fake
	d    *driver
	b    *cublas
	h    uintptr
	r    *rand.Rand
	ptrs []uint64 // to free
}

// GEMM shapes: leading dimensions larger than the matrices.
const gm, gn, gk, glda, gldb, gldc = 3, 4, 5, 7, 6, 5

// dev copies x to new device memory.
func (fx *cublasFixture) dev(x []float32) uint64 {
	var p uint64
	okCall(fx.t, fx.d.check(fx.d.memAlloc(&p, uint64(4*len(x))), "cuMemAlloc_v2"))
	okCall(fx.t, fx.d.check(fx.d.memcpyHtoDAsync(p, unsafe.Pointer(&x[0]), uint64(4*len(x)), 0), "cuMemcpyHtoDAsync_v2"))
	fx.ptrs = append(fx.ptrs, p)
	return p
}

// get copies n floats from device memory.
func (fx *cublasFixture) get(p uint64, n int) []float32 {
	x := make([]float32, n)
	okCall(fx.t, fx.d.check(fx.d.memcpyDtoHAsync(unsafe.Pointer(&x[0]), p, uint64(4*n), 0), "cuMemcpyDtoHAsync_v2"))
	return x
}

func (fx *cublasFixture) rnd(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(fx.r.NormFloat64())
	}
	return x
}

// gemmEx: GemmEx, 19 arguments: C (m,n) = 1.5·Aᵀ·B − 0.25·C, column-major.
func (fx *cublasFixture) gemmEx() {
	t, f, b, h := fx.t, fx.f, fx.b, fx.h
	m, n, k, lda, ldb, ldc := gm, gn, gk, glda, gldb, gldc
	A, B, C := fx.rnd(lda*m), fx.rnd(ldb*n), fx.rnd(ldc*n)
	pa, pb, pc := fx.dev(A), fx.dev(B), fx.dev(C)
	alpha, beta := float32(1.5), float32(-0.25)
	s := b.gemmEx(h, opT, opN, int32(m), int32(n), int32(k), unsafe.Pointer(&alpha), pa, dtF32, int32(lda), pb, dtF32, int32(ldb),
		unsafe.Pointer(&beta), pc, dtF32, int32(ldc), compute32FPedantic, gemmDefault)
	okCall(t, b.check(s, "cublasGemmEx"))
	wantCall(t, f, fmt.Sprintf("cublasGemmEx(handle=%#x, transa=1, transb=0, m=3, n=4, k=5, alpha=1.5, A=%#x, Atype=0, lda=7, "+
		"B=%#x, Btype=0, ldb=6, beta=-0.25, C=%#x, Ctype=0, ldc=5, compute=69, algo=-1)", h, pa, pb, pc))
	got := fx.get(pc, ldc*n)
	for j := range n {
		for i := range m {
			var acc float64
			for l := range k {
				acc += float64(A[l+i*lda]) * float64(B[l+j*ldb])
			}
			want := float32(1.5*acc + float64(beta)*float64(C[i+j*ldc]))
			if math.Abs(float64(got[i+j*ldc]-want)) > 1e-5 {
				t.Errorf("GemmEx C[%d,%d] = %v; want %v", i, j, got[i+j*ldc], want)
			}
		}
	}
}

// gemmStridedBatched: GemmStridedBatchedEx, 23 arguments: bf16 operands,
// int64 strides.
func (fx *cublasFixture) gemmStridedBatched() {
	t, f, b, h, r := fx.t, fx.f, fx.b, fx.h, fx.r
	m, n, k, lda, ldb, ldc := gm, gn, gk, glda, gldb, gldc
	batch, sa, sb, sc := 3, int64(lda*k+5), int64(ldb*k+3), int64(ldc*n)
	A16, B16 := rndBF16(r, int(sa)*batch), rndBF16(r, int(sb)*batch)
	pa16, pb16 := fx.dev(A16.packed()), fx.dev(B16.packed())
	pc2 := fx.dev(fx.rnd(int(sc) * batch))
	alpha, beta := float32(0.5), float32(0)
	s := b.gemmStridedBatchedEx(h, opN, opT, int32(m), int32(n), int32(k), unsafe.Pointer(&alpha), pa16, dtBF16, int32(lda), sa,
		pb16, dtBF16, int32(ldb), sb, unsafe.Pointer(&beta), pc2, dtF32, int32(ldc), sc, int32(batch), compute32F, gemmDefault)
	okCall(t, b.check(s, "cublasGemmStridedBatchedEx"))
	wantCall(t, f, fmt.Sprintf("cublasGemmStridedBatchedEx(handle=%#x, transa=0, transb=1, m=3, n=4, k=5, alpha=0.5, A=%#x, Atype=14, "+
		"lda=7, strideA=%d, B=%#x, Btype=14, ldb=6, strideB=%d, beta=0, C=%#x, Ctype=0, ldc=5, strideC=%d, batch=3, compute=68, algo=-1)",
		h, pa16, sa, pb16, sb, pc2, sc))
	got := fx.get(pc2, int(sc)*batch)
	for q := range batch {
		for j := range n {
			for i := range m {
				var acc float64
				for l := range k {
					acc += float64(A16[int64(q)*sa+int64(i+l*lda)]) * float64(B16[int64(q)*sb+int64(j+l*ldb)])
				}
				if g := got[int64(q)*sc+int64(i+j*ldc)]; math.Abs(float64(g)-0.5*acc) > 1e-5 {
					t.Errorf("batch %d C[%d,%d] = %v; want %v", q, i, j, g, 0.5*acc)
				}
			}
		}
	}
	// 64-bit strides arrive whole; the stand-in's bounds check rejects them
	big := int64(1)<<40 + 3
	s = b.gemmStridedBatchedEx(h, opN, opT, int32(m), int32(n), int32(k), unsafe.Pointer(&alpha), pa16, dtBF16, int32(lda), big,
		pb16, dtBF16, int32(ldb), -big, unsafe.Pointer(&beta), pc2, dtF32, int32(ldc), sc, int32(batch), compute32F, gemmDefault)
	if !strings.Contains(f.lastCall(), "strideA=1099511627779") || !strings.Contains(f.lastCall(), "strideB=-1099511627779") {
		t.Errorf("64-bit strides: the library received %s", f.lastCall())
	}
	err := b.check(s, "cublasGemmStridedBatchedEx")
	var ce *Error
	if !errors.As(err, &ce) || ce.Name != "CUBLAS_STATUS_INVALID_VALUE" {
		t.Errorf("out-of-bounds strides gave %v", err)
	}
	f.reset() // the bounds error above was wanted
}

// bf16s are float32 values that bfloat16 holds exactly.
type bf16s []float32

func rndBF16(r *rand.Rand, n int) bf16s {
	x := make(bf16s, n)
	for i := range x {
		x[i] = math.Float32frombits(math.Float32bits(float32(r.NormFloat64())) &^ 0xffff)
	}
	return x
}

// packed returns the bf16 bits two to a float32 slot (little-endian).
func (x bf16s) packed() []float32 {
	out := make([]float32, (len(x)+1)/2)
	for i, v := range x {
		bitsv := math.Float32bits(v) >> 16
		w := math.Float32bits(out[i/2])
		w |= bitsv << (16 * (i % 2))
		out[i/2] = math.Float32frombits(w)
	}
	return out
}

// A library that loads but lacks the functions it should have (an older
// CUDA's, first on the path) is passed over for the next candidate, and
// when no candidate has them the error says what each one lacked.
func TestLibraryLackingSymbolsIsPassedOver(t *testing.T) {
	f := newFake(t)
	libc := mappedLibc(t)
	old := t.TempDir()
	for _, n := range []string{"libnvrtc.so.13", "libglmkit-none.so.1"} {
		if err := os.Symlink(libc, filepath.Join(old, n)); err != nil {
			t.Fatal(err)
		}
	}
	rtc, err := loadNVRTC([]string{old, f.dir}, 2, 13)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.dir, "libnvrtc.so.13"); rtc.lib.path != want || rtc.versionString() != "12.9" {
		t.Errorf("NVRTC %s from %s; want the stand-in's from %s", rtc.versionString(), rtc.lib.path, want)
	}
	_, err = openLib(&nvrtc{}, []string{"libglmkit-none.so.1"}, []string{old}, 1, nil)
	want := filepath.Join(old, "libglmkit-none.so.1") + " lacks nvrtcVersion, nvrtcGetErrorString"
	if err == nil || !strings.HasPrefix(err.Error(), "no usable libglmkit-none.so.1") || !strings.Contains(err.Error(), want) {
		t.Errorf("no candidate with the functions: %v; want it to say %q", err, want)
	}
}

// mappedLibc is the path of the C library this process has mapped (the
// dynamic loader maps it for dlopen), or skips the test.
func mappedLibc(t *testing.T) string {
	maps, _ := os.ReadFile("/proc/self/maps")
	for _, l := range strings.Split(string(maps), "\n") {
		if i := strings.Index(l, "/"); i >= 0 && strings.HasPrefix(filepath.Base(l[i:]), "libc.so.") {
			return l[i:]
		}
	}
	t.Skip("no C library in /proc/self/maps to stand in for a library without the functions")
	return ""
}

func TestNVRTCBindings(t *testing.T) {
	f := newFake(t)
	rtc, err := loadNVRTC([]string{f.dir}, 1, 13)
	if err != nil {
		t.Fatal(err)
	}
	if v := rtc.versionString(); v != "12.9" {
		t.Errorf("NVRTC version %s", v)
	}
	img, _, err := rtc.compile("// a program\n", "probe.cu", "sm_90", "--fmad=false", "-lineinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.calls(), "nvrtcCompileProgram(options=[--gpu-architecture=sm_90 --fmad=false -lineinfo])") {
		t.Errorf("the options did not arrive:\n%s", f.calls())
	}
	if want := "fake CUBIN of probe.cu (13 bytes of source)\n"; string(img) != want {
		t.Errorf("CUBIN %q; want %q", img, want)
	}
	img, _, err = rtc.compile("// a program\n", "probe.cu", "compute_80")
	if err != nil || !strings.HasPrefix(string(img), "fake PTX of probe.cu") {
		t.Errorf("PTX %q, %v", img, err)
	}
	f.fail("nvrtcCompileProgram", 6)
	_, log, err := rtc.compile("// a program\n", "probe.cu", "compute_80")
	if err == nil || !strings.Contains(err.Error(), "NVRTC_ERROR_COMPILATION") || !strings.Contains(err.Error(), "fake compile error") ||
		log != "glmkit.cu(1): error: fake compile error" {
		t.Errorf("a failed compilation gave log %q, error %v", log, err)
	}
	wantCall(t, f, "nvrtcDestroyProgram()")
}

// TestKernelParamLayout checks packParams against the kernel ABI as the C++
// compiler lays the parameters out (through cuFuncGetParamInfo of the
// stand-in, which reports the offsets of the emulator's argument structs).
// On a GPU, New makes the same check against the driver.
func TestKernelParamLayout(t *testing.T) {
	f, d := fakeDriver(t)
	okCall(t, d.check(d.init(0), "cuInit"))
	d.resolveLate(13000)
	var m uintptr
	img := []byte("fake image\x00")
	okCall(t, d.check(d.moduleLoadData(&m, unsafe.Pointer(&img[0])), "cuModuleLoadData"))
	for k := range numKernels {
		var fn uintptr
		okCall(t, d.check(d.moduleGetFunction(&fn, m, kernelSigs[k].name), "cuModuleGetFunction"))
		kinds, err := paramKinds(kernelSigs[k].params)
		if err != nil {
			t.Fatal(err)
		}
		if checked, err := verifyParams(d, fn, k, kinds); err != nil || !checked {
			t.Errorf("%s: checked %v, %v", kernelSigs[k].name, checked, err)
		}
	}
	okCall(t, d.check(d.moduleUnload(m), "cuModuleUnload"))
	f.assertClean(t)
}

// TestNewFailures starts the backend on the stand-in with failures
// planted: no device, a cuBLAS that cannot start, a compile that fails for
// the device's own architecture (New falls back to PTX), a cached image
// the driver rejects. Whatever fails, New releases what it took (the
// primary context excepted: once taken, it is retained for the life of the
// process).
func TestNewFailures(t *testing.T) {
	f := newFake(t)
	before := f.counts()
	f.setDevices(0)
	_, err := New(Options{LibDir: f.dir, CacheDir: "off"})
	if !errors.Is(err, ErrNoDevice) {
		t.Errorf("without a device: %v; want ErrNoDevice", err)
	}
	if after := f.counts(); after != before {
		t.Errorf("live objects %v after a start without a device; %v before", after, before)
	}
	f.setDevices(1)
	f.fail("cublasCreate_v2", 13)
	_, err = New(Options{LibDir: f.dir, CacheDir: "off"})
	if err == nil || !strings.Contains(err.Error(), "cublasCreate_v2") {
		t.Errorf("with cuBLAS failing: %v", err)
	}
	before[liveCtxRefs]++
	if after := f.counts(); after != before {
		t.Errorf("live objects %v after failed starts; want %v", after, before)
	}
	f.fail("nvrtcCompileProgram", 6)
	be, err := New(Options{LibDir: f.dir, CacheDir: "off"})
	if err != nil {
		t.Fatal(err)
	}
	if k := be.Info().Kernels; !strings.HasPrefix(k, "compute_90 ") {
		t.Errorf("kernels %q after the sm_90 compile failed; want compute_90 PTX", k)
	}
	if n := be.Info().Notes; len(n) != 1 || !strings.Contains(n[0], "NVRTC_ERROR_COMPILATION") {
		t.Errorf("notes %q; want the failed sm_90 compile", n)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	before[liveCtxRefs]++
	if after := f.counts(); after != before {
		t.Errorf("live objects %v after Close; want %v", after, before)
	}
	f.reset()

	// a kernel cache: the second start reads what the first compiled
	cache := t.TempDir()
	for i := range 2 {
		be, err := New(Options{LibDir: f.dir, CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		k := be.Info().Kernels
		if cached := strings.Contains(k, "cached"); cached != (i == 1) {
			t.Errorf("start %d: kernels %q", i+1, k)
		}
		be.Close()
	}
	// a cached image the driver rejects is compiled again, and replaced
	f.fail("cuModuleLoadData", 200)
	be, err = New(Options{LibDir: f.dir, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if k, n := be.Info().Kernels, be.Info().Notes; !strings.HasPrefix(k, "sm_90 (compiled") || len(n) != 1 ||
		!strings.Contains(n[0], "CUDA_ERROR_INVALID_IMAGE") {
		t.Errorf("after the cached image failed to load: kernels %q, notes %q", k, n)
	}
	be.Close()
	be, err = New(Options{LibDir: f.dir, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if k := be.Info().Kernels; !strings.Contains(k, "cached") {
		t.Errorf("after a recompile: kernels %q; want the new cached image", k)
	}
	be.Close()
	// The cache holds its image under its own name, and no temporary of
	// the two writes.
	ents, err := os.ReadDir(cache)
	if err != nil || len(ents) != 1 || strings.HasPrefix(ents[0].Name(), ".") || ents[0].IsDir() {
		t.Errorf("the kernel cache holds %v (%v); want one image", ents, err)
	}
}

// TestKernelFallbacks plants failures in making and loading the kernel
// module: each is noted in Info.Notes and the next way is tried, down to
// the PTX embedded in the binary; NVRTC's warnings are noted, not fatal.
func TestKernelFallbacks(t *testing.T) {
	f := newFake(t)
	start := func(t *testing.T) Info {
		t.Helper()
		be, err := New(Options{LibDir: f.dir, CacheDir: "off"})
		if err != nil {
			t.Fatal(err)
		}
		in := be.Info()
		x, _ := be.Floats(64) // the module works: a kernel runs
		be.GeluForward(x, x, 64)
		if err := be.Sync(); err != nil {
			t.Error(err)
		}
		if err := be.Close(); err != nil {
			t.Fatal(err)
		}
		f.assertClean(t)
		t.Cleanup(f.reset)
		return in
	}
	t.Run("warnings", func(t *testing.T) {
		f.compileLog(`glmkit.cu(12): warning #177-D: variable "x" was declared but never referenced`)
		in := start(t)
		if !strings.HasPrefix(in.Kernels, "sm_90 (compiled") || len(in.Notes) != 1 || !strings.Contains(in.Notes[0], "warning #177-D") {
			t.Errorf("kernels %q, notes %q; want the sm_90 CUBIN and the warning noted", in.Kernels, in.Notes)
		}
	})
	t.Run("cubin rejected", func(t *testing.T) {
		f.fail("cuModuleLoadData", 209)
		in := start(t)
		if !strings.HasPrefix(in.Kernels, "compute_90 (compiled") || len(in.Notes) != 1 || !strings.Contains(in.Notes[0], "CUDA_ERROR_NO_BINARY_FOR_GPU") {
			t.Errorf("kernels %q, notes %q; want compute_90 PTX after the CUBIN failed to load", in.Kernels, in.Notes)
		}
	})
	t.Run("ptx too new", func(t *testing.T) {
		f.failTimes("cuModuleLoadData", 222, 3) // NVRTC newer than the driver: no image of it loads
		in := start(t)
		if !strings.HasPrefix(in.Kernels, "compute_80 (embedded PTX, NVRTC ") || len(in.Notes) != 3 {
			t.Errorf("kernels %q, notes %q; want the embedded PTX after three failed loads", in.Kernels, in.Notes)
		}
	})
	t.Run("compiler fails", func(t *testing.T) {
		f.failTimes("nvrtcCompileProgram", 6, -1)
		in := start(t)
		if !strings.HasPrefix(in.Kernels, "compute_80 (embedded PTX, NVRTC ") || len(in.Notes) != 3 {
			t.Errorf("kernels %q, notes %q; want the embedded PTX after three failed compiles", in.Kernels, in.Notes)
		}
	})
	t.Run("embedded", func(t *testing.T) {
		f.failTimes("nvrtcCompileProgram", 6, -1)
		start(t)
		// the stand-in logs the image's first line
		if !strings.Contains(f.calls(), `cuModuleLoadData(image="// glmkit kernels sha256:`) {
			t.Errorf("the embedded PTX did not reach the driver:\n%s", f.calls())
		}
	})
	t.Run("nothing loads", func(t *testing.T) {
		f.failTimes("cuModuleLoadData", 200, -1)
		before := f.counts()
		_, err := New(Options{LibDir: f.dir, CacheDir: "off"})
		if err == nil || strings.Count(err.Error(), "CUDA_ERROR_INVALID_IMAGE") != 4 {
			t.Errorf("with no image loading: %v; want the four failures", err)
		}
		after := f.counts()
		after[liveCtxRefs]--
		if after != before {
			t.Errorf("live objects %v after the failed start; %v before", after, before)
		}
		f.reset()
	})
}

// TestLibraryMajors checks that New takes the cuBLAS and NVRTC of the
// driver's CUDA major over newer ones (a newer one only when nothing else
// is there).
func TestLibraryMajors(t *testing.T) {
	names := []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
	for _, c := range []struct {
		major int
		want  string
	}{
		{13, "libcublas.so.13 libcublas.so.12 libcublas.so.11 libcublas.so"},
		{14, "libcublas.so.13 libcublas.so.12 libcublas.so.11 libcublas.so"},
		{12, "libcublas.so.12 libcublas.so.11 libcublas.so libcublas.so.13"},
		{11, "libcublas.so.11 libcublas.so libcublas.so.13 libcublas.so.12"},
		{0, "libcublas.so.13 libcublas.so.12 libcublas.so.11 libcublas.so"},
	} {
		if got := strings.Join(preferMajor(names, c.major), " "); got != c.want {
			t.Errorf("driver CUDA %d: order %s; want %s", c.major, got, c.want)
		}
	}
	if m := soMajor("/x/libnvrtc.so.11.2"); m != 11 {
		t.Errorf("soMajor(libnvrtc.so.11.2) = %d", m)
	}

	f := newFake(t)
	for _, c := range []struct {
		version int32
		driver  string
		suffix  string
	}{{12040, "12.4", ".so.12"}, {13000, "13.0", ".so.13"}} {
		f.setDriver(c.version)
		be, err := New(Options{LibDir: f.dir, CacheDir: "off"})
		if err != nil {
			t.Fatal(err)
		}
		in := be.Info()
		be.Close()
		f.reset()
		if in.Driver != c.driver || filepath.Base(in.CublasPath) != "libcublas"+c.suffix || filepath.Base(in.CublasLtPath) != "libcublasLt"+c.suffix ||
			filepath.Base(in.NVRTCPath) != "libnvrtc"+c.suffix || len(in.Notes) != 0 {
			t.Errorf("driver CUDA %s: cuBLAS %s (Lt %s), NVRTC %s, notes %q; want the libraries%s", in.Driver, in.CublasPath, in.CublasLtPath,
				in.NVRTCPath, in.Notes, c.suffix)
		}
	}
}

// TestNewTwice runs two New, GEMM, Close cycles in one process: the second
// must run cuBLAS in the primary context the first one used (the
// stand-in fails a GEMM in a context created after the one cuBLAS first
// ran in was destroyed, as cuBLAS's per-context state would).
func TestNewTwice(t *testing.T) {
	f := newFake(t)
	contexts := f.live(liveContexts)
	for i := range 2 {
		be, err := New(Options{LibDir: f.dir, CacheDir: "off"})
		if err != nil {
			t.Fatal(err)
		}
		if rel, err := gemmCheck(be, uint64(i)); err != nil || !(rel < 1e-2) {
			t.Errorf("cycle %d: GEMM relative error %g, %v", i+1, rel, err)
		}
		if err := be.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.live(liveContexts) - contexts; n > 1 {
		t.Errorf("%d primary contexts created for two backends; want at most one", n)
	}
	f.assertClean(t)
}

// TestStartFailures plants a failure in every call New makes, one at a
// time: New must return the error and leave nothing behind but the
// primary context's reference.
func TestStartFailures(t *testing.T) {
	f := newFake(t)
	calls := []string{"cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName",
		"cuDeviceGetAttribute", "cuDeviceTotalMem_v2", "cuDevicePrimaryCtxRetain", "cuCtxSetCurrent", "cuStreamCreate",
		"cuEventCreate", "cublasCreate_v2", "cublasSetStream_v2", "cuModuleGetFunction",
		"cuMemAlloc_v2", "cuMemHostAlloc", "cuMemcpyHtoDAsync_v2"}
	for i, fn := range calls {
		want := f.counts()
		if i > slices.Index(calls, "cuDevicePrimaryCtxRetain") {
			want[liveCtxRefs]++
		}
		f.fail(fn, 1)
		be, err := New(Options{LibDir: f.dir, CacheDir: "off"})
		if err == nil {
			be.Close()
			t.Errorf("%s failing: New succeeded", fn)
			f.reset()
			continue
		}
		if after := f.counts(); after != want {
			t.Errorf("%s failing (%v): live objects %v; want %v", fn, err, after, want)
		}
		f.reset()
	}
}

// TestOpErrors checks that a failing launch or GEMM reaches the caller
// with the op and the call named, and sticks: the ops after it do nothing,
// and Download, Sync and Err report it.
func TestOpErrors(t *testing.T) {
	f := newFake(t)
	for _, c := range []struct {
		fn   string
		code int32
		op   func(be *Backend, x, w, stat trainer.Buf)
		want string
	}{
		{"cuLaunchKernel", 700, func(be *Backend, x, w, stat trainer.Buf) { be.LayerNormForward(x, stat, stat, x, w, w, 6, 8) },
			"cuda: layernorm forward: cuLaunchKernel(layernorm_forward, grid 6×1, block 32): CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal memory access was encountered"},
		{"cublasGemmEx", 13, func(be *Backend, x, w, stat trainer.Buf) { be.MatmulForward(x, x, w, nil, 6, 8, 1) },
			"cuda: matmul forward: cublasGemmEx(TN, m=1 n=6 k=8): CUBLAS_STATUS_EXECUTION_FAILED (13)"},
	} {
		be := openTarget(t, target{name: "emu/bf16"})
		x, _ := be.Floats(6 * 8)
		w, _ := be.Floats(8)
		stat, _ := be.Floats(6)
		f.fail(c.fn, c.code)
		c.op(be, x, w, stat)
		if err := be.Err(); err == nil || err.Error() != c.want {
			t.Errorf("a failed %s gave\n\t%v\nwant\n\t%s", c.fn, err, c.want)
		}
		last := f.lastCall()
		be.GeluForward(x, x, 6*8)
		be.Upload(w, make([]float32, 8))
		if got := f.lastCall(); got != last {
			t.Errorf("after the error an op still called the library: %s", got)
		}
		got := make([]float32, 6*8)
		for _, err := range []error{be.Download(got, x), be.Sync(), be.Err()} {
			if err == nil || err.Error() != c.want {
				t.Errorf("after the failed %s: %v; want the first error", c.fn, err)
			}
		}
	}
}
