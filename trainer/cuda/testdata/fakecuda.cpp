// fakecuda.cpp: a stand-in for libcuda.so.1, libcublas and libnvrtc, built
// by the tests with g++ (see fake_test.go) so that the purego bindings and
// the whole backend can be exercised on a machine without a GPU.
//
// It exports the symbols the backend binds, with the same C signatures,
// and:
//   - logs every call with its arguments (fake_log, fake_last), so the
//     tests check that each argument arrived: ints, 64-bit sizes and
//     strides, pointers, the float alpha and beta behind pointers, the
//     option strings, and the packed kernel-parameter buffer;
//   - returns known values (device name, attributes, versions; the
//     driver's version can be set, fake_set_driver_version) and, on
//     request, a given error code once or several times (fake_fail,
//     fake_fail_times) or a compiler warning (fake_compile_log);
//   - models the primary context's life: cuDevicePrimaryCtxRelease_v2 of
//     the last reference destroys it, and the next retain creates a new
//     one; cuBLAS remembers the context it first ran a GEMM in (as the
//     real one keeps per-context state in process-wide tables) and fails
//     a GEMM in a later context;
//   - implements "device" memory on the host, each allocation poisoned
//     with NaN bytes and fenced by guard bytes that are checked on free and
//     on request (fake_check);
//   - runs the kernels: the real kernel sources, compiled by the test
//     against emu.h, through a coroutine scheduler (emu_* below), looked
//     up by name in the table the test generates (emu_kernels);
//   - computes cublasGemmEx and cublasGemmStridedBatchedEx naively in
//     double, with cuBLAS's argument checks and a bounds check of every
//     operand against its allocation.
// Streams and events are accepted and ignored: everything runs at once, in
// call order.
#include <dlfcn.h>
#include <map>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <ucontext.h>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

// ---------------------------------------------------------------------------
// call log, failure injection, errors

static std::string g_log;       // one line per call
static std::string g_last;      // the last line
static std::string g_errors;    // emulator and checker errors
static std::map<std::string, int> g_fail;      // function → code of its next calls
static std::map<std::string, int> g_failTimes; // function → calls left to fail (-1: all)
static std::string g_compileLog;               // log of a successful compile (warnings)
static int g_driverVersion = 13000;

static void logf(const char* fmt, ...) {
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	g_last = buf;
	if (g_log.size() > (1u << 20)) {
		g_log.clear();
	}
	g_log += buf;
	g_log += '\n';
}

static void errorf(const char* fmt, ...) {
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (g_errors.size() < (1u << 16)) {
		g_errors += buf;
		g_errors += '\n';
	}
}

// injected returns the code planted for fn by fake_fail (once) or
// fake_fail_times.
static int injected(const char* fn) {
	auto it = g_fail.find(fn);
	if (it == g_fail.end()) {
		return 0;
	}
	int code = it->second;
	int& left = g_failTimes[fn];
	if (left > 0) {
		left--;
	}
	if (left == 0) {
		g_fail.erase(it);
		g_failTimes.erase(fn);
	}
	return code;
}

static int copy_out(const std::string& s, char* buf, int cap) {
	if (cap > 0) {
		int n = (int)s.size() < cap - 1 ? (int)s.size() : cap - 1;
		memcpy(buf, s.data(), n);
		buf[n] = 0;
	}
	return (int)s.size();
}

EXPORT int fake_log(char* buf, int cap) { return copy_out(g_log, buf, cap); }
EXPORT int fake_last(char* buf, int cap) { return copy_out(g_last, buf, cap); }
EXPORT int fake_errors(char* buf, int cap) { return copy_out(g_errors, buf, cap); }
EXPORT void fake_reset(void) {
	g_log.clear();
	g_last.clear();
	g_errors.clear();
	g_fail.clear();
	g_failTimes.clear();
	g_compileLog.clear();
	g_driverVersion = 13000;
}
EXPORT void fake_fail(const char* fn, int code) {
	g_fail[fn] = code;
	g_failTimes[fn] = 1;
}
// fake_fail_times makes the next n calls of fn fail with code (n < 0: every
// call until fake_reset).
EXPORT void fake_fail_times(const char* fn, int code, int n) {
	g_fail[fn] = code;
	g_failTimes[fn] = n < 0 ? -1 : n;
}
EXPORT void fake_compile_log(const char* log) { g_compileLog = log; }
EXPORT void fake_set_driver_version(int v) { g_driverVersion = v; }

// ---------------------------------------------------------------------------
// device memory

static const size_t GUARD = 256;
static const unsigned char GUARD_BYTE = 0xAB;

struct alloc {
	size_t size;
};
static std::map<uintptr_t, alloc> g_allocs; // device address → allocation
static int g_hostAllocs, g_streams, g_events, g_modules, g_handles, g_ctxRefs;
static int g_ctxGeneration;  // primary contexts created so far (the live one's number while g_ctxRefs > 0)
static int g_blasGeneration; // the context cuBLAS first ran a GEMM in (0: none yet)
static int g_devices = 1;

static bool guards_ok(uintptr_t p, size_t size) {
	const unsigned char* b = (const unsigned char*)p;
	for (size_t i = 0; i < GUARD; i++) {
		if (b[-1 - (long)i] != GUARD_BYTE || b[size + i] != GUARD_BYTE) {
			return false;
		}
	}
	return true;
}

// fake_check checks every live allocation's guard bytes and returns the
// number of damaged ones (each is also recorded in fake_errors).
EXPORT int fake_check(void) {
	int bad = 0;
	for (auto& a : g_allocs) {
		if (!guards_ok(a.first, a.second.size)) {
			errorf("guard bytes of the allocation at 0x%llx (%zu bytes) were overwritten", (unsigned long long)a.first, a.second.size);
			bad++;
		}
	}
	return bad;
}

// fake_live returns counts of live objects: 0 allocations, 1 host
// allocations, 2 streams, 3 events, 4 modules, 5 cuBLAS handles, 6 primary
// context references; and 7 the number of primary contexts created.
EXPORT int fake_live(int what) {
	switch (what) {
	case 0: return (int)g_allocs.size();
	case 1: return g_hostAllocs;
	case 2: return g_streams;
	case 3: return g_events;
	case 4: return g_modules;
	case 5: return g_handles;
	case 6: return g_ctxRefs;
	case 7: return g_ctxGeneration;
	}
	return -1;
}

EXPORT void fake_set_devices(int n) { g_devices = n; }

// in_range reports whether [p, p+bytes) lies inside one live allocation.
static bool in_range(uintptr_t p, size_t bytes) {
	auto it = g_allocs.upper_bound(p);
	if (it == g_allocs.begin()) {
		return false;
	}
	--it;
	return p >= it->first && p + bytes <= it->first + it->second.size;
}

// hx is a pointer as the log prints it (%llx).
static unsigned long long hx(const void* p) { return (unsigned long long)(uintptr_t)p; }

#define CHECK_FAIL(name)                     \
	do {                                     \
		int code_ = injected(name);          \
		if (code_ != 0) {                    \
			return code_;                    \
		}                                    \
	} while (0)

// CALLED logs the call, as the function's name and then fmt (its arguments
// and result), and returns the failure fake_fail planted for it, if any.
#define CALLED(fmt, ...)                                \
	do {                                                \
		logf("%s" fmt, __func__, ##__VA_ARGS__);        \
		CHECK_FAIL(__func__);                           \
	} while (0)

// ---------------------------------------------------------------------------
// driver API: init, devices, contexts

EXPORT CUresult cuInit(unsigned int flags) {
	CALLED("(flags=%u)", flags);
	return g_devices > 0 ? 0 : 100; // CUDA_ERROR_NO_DEVICE
}

EXPORT CUresult cuDriverGetVersion(int* v) {
	*v = g_driverVersion;
	CALLED("() -> %d", g_driverVersion);
	return 0;
}

EXPORT CUresult cuDeviceGetCount(int* n) {
	*n = g_devices;
	CALLED("() -> %d", g_devices);
	return 0;
}

EXPORT CUresult cuDeviceGet(int* dev, int ordinal) {
	CALLED("(ordinal=%d)", ordinal);
	if (ordinal < 0 || ordinal >= g_devices) {
		return 101; // CUDA_ERROR_INVALID_DEVICE
	}
	*dev = ordinal;
	return 0;
}

EXPORT CUresult cuDeviceGetName(char* name, int len, int dev) {
	CALLED("(len=%d, dev=%d)", len, dev);
	snprintf(name, len, "GLMKIT Fake GPU %d", dev);
	return 0;
}

EXPORT CUresult cuDeviceGetAttribute(int* v, int attr, int dev) {
	switch (attr) {
	case 1: *v = 1024; break;  // max threads per block
	case 16: *v = 132; break;  // multiprocessors
	case 75: *v = 9; break;    // compute capability
	case 76: *v = 0; break;
	default: *v = attr * 1000 + dev;
	}
	CALLED("(attr=%d, dev=%d) -> %d", attr, dev, *v);
	return 0;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, int dev) {
	*bytes = (size_t)80 << 30;
	CALLED("(dev=%d)", dev);
	return 0;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) {
	CALLED("(dev=%d)", dev);
	*ctx = (void*)(uintptr_t)(0xC0DE00 + dev); // the same handle for every context, as a driver may reuse one
	if (g_ctxRefs++ == 0) {
		g_ctxGeneration++; // a new primary context
	}
	return 0;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int dev) {
	CALLED("(dev=%d)", dev);
	if (g_ctxRefs <= 0) {
		errorf("cuDevicePrimaryCtxRelease_v2 without a reference");
		return 201; // CUDA_ERROR_INVALID_CONTEXT
	}
	g_ctxRefs--; // the last reference destroys the context
	return 0;
}

EXPORT CUresult cuCtxSetCurrent(void* ctx) {
	CALLED("(ctx=0x%llx)", hx(ctx));
	return 0;
}

// ---------------------------------------------------------------------------
// memory

EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
	size_t used = 0;
	for (auto& a : g_allocs) {
		used += a.second.size;
	}
	*total = (size_t)80 << 30;
	*free = *total - used;
	CALLED("()");
	return 0;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
	CALLED("(bytes=%zu)", bytes);
	if (bytes == 0) {
		return 1; // CUDA_ERROR_INVALID_VALUE
	}
	unsigned char* b = (unsigned char*)malloc(bytes + 2 * GUARD);
	if (b == NULL) {
		return 2; // CUDA_ERROR_OUT_OF_MEMORY
	}
	memset(b, GUARD_BYTE, GUARD);
	memset(b + GUARD, 0xFF, bytes); // NaN floats, -1 ints: unwritten memory shows
	memset(b + GUARD + bytes, GUARD_BYTE, GUARD);
	uintptr_t d = (uintptr_t)(b + GUARD);
	g_allocs[d] = alloc{bytes};
	*p = d;
	return 0;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr p) {
	CALLED("(p=0x%llx)", p);
	auto it = g_allocs.find((uintptr_t)p);
	if (it == g_allocs.end()) {
		errorf("cuMemFree_v2 of 0x%llx, which is not an allocation", p);
		return 1;
	}
	if (!guards_ok(it->first, it->second.size)) {
		errorf("guard bytes of the allocation at 0x%llx (%zu bytes) were overwritten (found at free)", p, it->second.size);
	}
	free((unsigned char*)it->first - GUARD);
	g_allocs.erase(it);
	return 0;
}

EXPORT CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned int flags) {
	CALLED("(bytes=%zu, flags=%u)", bytes, flags);
	*p = malloc(bytes);
	g_hostAllocs++;
	return 0;
}

EXPORT CUresult cuMemFreeHost(void* p) {
	CALLED("(p=0x%llx)", hx(p));
	free(p);
	g_hostAllocs--;
	return 0;
}

static CUresult bad_range(const char* fn, const char* what, uintptr_t p, size_t n) {
	errorf("%s: %s [0x%llx, +%zu) is not inside one allocation", fn, what, (unsigned long long)p, n);
	return 1;
}

EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* stream) {
	CALLED("(dst=0x%llx, src=0x%llx, bytes=%zu, stream=0x%llx)", dst, hx(src), n, hx(stream));
	if (!in_range(dst, n)) {
		return bad_range("cuMemcpyHtoDAsync_v2", "dst", dst, n);
	}
	memcpy((void*)(uintptr_t)dst, src, n);
	return 0;
}

EXPORT CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* stream) {
	CALLED("(dst=0x%llx, src=0x%llx, bytes=%zu, stream=0x%llx)", hx(dst), src, n, hx(stream));
	if (!in_range(src, n)) {
		return bad_range("cuMemcpyDtoHAsync_v2", "src", src, n);
	}
	memcpy(dst, (void*)(uintptr_t)src, n);
	return 0;
}

EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void* stream) {
	CALLED("(dst=0x%llx, src=0x%llx, bytes=%zu, stream=0x%llx)", dst, src, n, hx(stream));
	if (!in_range(dst, n)) {
		return bad_range("cuMemcpyDtoDAsync_v2", "dst", dst, n);
	}
	if (!in_range(src, n)) {
		return bad_range("cuMemcpyDtoDAsync_v2", "src", src, n);
	}
	memmove((void*)(uintptr_t)dst, (void*)(uintptr_t)src, n);
	return 0;
}

EXPORT CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, void* stream) {
	CALLED("(dst=0x%llx, value=%u, n=%zu, stream=0x%llx)", dst, v, n, hx(stream));
	if (!in_range(dst, 4 * n)) {
		return bad_range("cuMemsetD32Async", "dst", dst, 4 * n);
	}
	unsigned int* p = (unsigned int*)(uintptr_t)dst;
	for (size_t i = 0; i < n; i++) {
		p[i] = v;
	}
	return 0;
}

// ---------------------------------------------------------------------------
// streams and events (no-ops: work runs at once)

static uintptr_t g_nextHandle = 0x5000;

// create_handle and destroy_handle are the life of a stream, an event or a
// cuBLAS handle: a fresh opaque number, counted in *live (fake_live) once
// the call succeeds. flags < 0: the function takes none.
static int create_handle(const char* fn, void** h, long flags, int* live) {
	*h = (void*)(g_nextHandle += 0x10);
	if (flags < 0) {
		logf("%s() -> 0x%llx", fn, hx(*h));
	} else {
		logf("%s(flags=%ld) -> 0x%llx", fn, flags, hx(*h));
	}
	CHECK_FAIL(fn);
	(*live)++;
	return 0;
}

static int destroy_handle(const char* fn, const char* what, void* h, int* live) {
	logf("%s(%s=0x%llx)", fn, what, hx(h));
	CHECK_FAIL(fn);
	(*live)--;
	return 0;
}

EXPORT CUresult cuStreamCreate(void** s, unsigned int flags) { return create_handle(__func__, s, flags, &g_streams); }
EXPORT CUresult cuStreamDestroy_v2(void* s) { return destroy_handle(__func__, "stream", s, &g_streams); }

EXPORT CUresult cuStreamSynchronize(void* s) {
	CALLED("(stream=0x%llx)", hx(s));
	return 0;
}

EXPORT CUresult cuStreamWaitEvent(void* s, void* e, unsigned int flags) {
	CALLED("(stream=0x%llx, event=0x%llx, flags=%u)", hx(s), hx(e), flags);
	return 0;
}

EXPORT CUresult cuEventCreate(void** e, unsigned int flags) { return create_handle(__func__, e, flags, &g_events); }
EXPORT CUresult cuEventDestroy_v2(void* e) { return destroy_handle(__func__, "event", e, &g_events); }

EXPORT CUresult cuEventRecord(void* e, void* s) {
	CALLED("(event=0x%llx, stream=0x%llx)", hx(e), hx(s));
	return 0;
}

EXPORT CUresult cuEventSynchronize(void* e) {
	CALLED("(event=0x%llx)", hx(e));
	return 0;
}

// ---------------------------------------------------------------------------
// errors

struct named {
	int code;
	const char* name;
	const char* desc;
};
static const named g_cuErrors[] = {
	{0, "CUDA_SUCCESS", "no error"},
	{1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	{3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	{100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	{101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	{200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	{201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	{209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
	{222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
	{500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	{700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	{701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
};

static const named* find_named(int code) {
	for (auto& e : g_cuErrors) {
		if (e.code == code) {
			return &e;
		}
	}
	return NULL;
}

EXPORT CUresult cuGetErrorName(int code, const char** s) {
	const named* e = find_named(code);
	if (e == NULL) {
		*s = NULL;
		return 1;
	}
	*s = e->name;
	return 0;
}

EXPORT CUresult cuGetErrorString(int code, const char** s) {
	const named* e = find_named(code);
	if (e == NULL) {
		*s = NULL;
		return 1;
	}
	*s = e->desc;
	return 0;
}

// ---------------------------------------------------------------------------
// modules and kernels

struct emu_kernel {
	const char* name;
	void (*call)(const char* params);
	size_t args_size;      // sizeof the argument struct
	size_t args_end;       // end of its last member: the packed size
	int nparams;
	const size_t* offsets; // member offsets, from the compiler
	const size_t* sizes;
};
extern "C" const emu_kernel emu_kernels[]; // generated by the test
extern "C" const int emu_nkernels;

// the probe: a function that runs nothing and only logs its parameters
static const emu_kernel g_probe = {"fake_probe", NULL, 0, 0, 0, NULL, NULL};

EXPORT CUresult cuModuleLoadData(void** m, const void* image) {
	char head[33];
	memcpy(head, image, 32);
	head[32] = 0;
	for (int i = 0; i < 32; i++) {
		if (head[i] == '\n') {
			head[i] = 0;
		}
	}
	CALLED("(image=\"%s\")", head);
	*m = (void*)(g_nextHandle += 0x10);
	g_modules++;
	return 0;
}

EXPORT CUresult cuModuleUnload(void* m) {
	CALLED("(module=0x%llx)", hx(m));
	g_modules--;
	return 0;
}

EXPORT CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
	CALLED("(module=0x%llx, name=\"%s\")", hx(m), name);
	if (strcmp(name, g_probe.name) == 0) {
		*f = (void*)&g_probe;
		return 0;
	}
	for (int i = 0; i < emu_nkernels; i++) {
		if (strcmp(emu_kernels[i].name, name) == 0) {
			*f = (void*)&emu_kernels[i];
			return 0;
		}
	}
	return 500;
}

// cuFuncGetParamInfo is not exported: the backend finds it through
// cuGetProcAddress_v2, as it must on drivers that do not export it.
static CUresult fake_func_get_param_info(void* f, size_t index, size_t* offset, size_t* size) {
	const emu_kernel* k = (const emu_kernel*)f;
	logf("cuFuncGetParamInfo(func=%s, index=%zu)", k->name, index);
	if (k->offsets == NULL || index >= (size_t)k->nparams) {
		return 1;
	}
	*offset = k->offsets[index];
	*size = k->sizes[index];
	return 0;
}

EXPORT CUresult cuGetProcAddress_v2(const char* sym, void** pfn, int version, unsigned long long flags, int* status) {
	CALLED("(symbol=\"%s\", version=%d, flags=%llu)", sym, version, flags);
	if (strcmp(sym, "cuFuncGetParamInfo") == 0) {
		*pfn = (void*)&fake_func_get_param_info;
		if (status) {
			*status = 0;
		}
		return 0;
	}
	*pfn = NULL;
	if (status) {
		*status = 1; // CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND
	}
	return 500;
}

// ---- the emulator: one block at a time, its threads as coroutines

struct emu_dim3 {
	unsigned int x, y, z;
};
extern "C" {
emu_dim3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;
}

static const size_t EMU_STACK = 64 << 10;

struct emu_thread {
	ucontext_t ctx;
	int done;
	int syncs;
};

static ucontext_t g_sched;
static emu_thread* g_threads;
static char* g_stacks;
static int g_cap;
static int g_cur;
static const emu_kernel* g_kernel;
static const char* g_params;

extern "C" void emu_syncthreads(void) {
	g_threads[g_cur].syncs++;
	swapcontext(&g_threads[g_cur].ctx, &g_sched);
}

static void emu_thread_main(void) {
	g_kernel->call(g_params);
	g_threads[g_cur].done = 1;
	// returning resumes uc_link, the scheduler
}

// emu_block runs one block of nt threads: every thread runs until its next
// __syncthreads (or its end), then the next thread, round after round, so
// that all of a block's work before a barrier precedes all of it after.
// It reports threads that passed different numbers of barriers (a kernel
// that would hang or race on a GPU).
static bool emu_block(int nt) {
	if (nt > g_cap) {
		free(g_threads);
		free(g_stacks);
		g_threads = (emu_thread*)calloc(nt, sizeof(emu_thread));
		g_stacks = (char*)malloc((size_t)nt * EMU_STACK);
		g_cap = nt;
	}
	for (int t = 0; t < nt; t++) {
		emu_thread* th = &g_threads[t];
		getcontext(&th->ctx);
		th->ctx.uc_stack.ss_sp = g_stacks + (size_t)t * EMU_STACK;
		th->ctx.uc_stack.ss_size = EMU_STACK;
		th->ctx.uc_link = &g_sched;
		makecontext(&th->ctx, emu_thread_main, 0);
		th->done = 0;
		th->syncs = 0;
	}
	int left = nt;
	while (left > 0) {
		for (int t = 0; t < nt; t++) {
			if (g_threads[t].done) {
				continue;
			}
			g_cur = t;
			emu_threadIdx.x = t % emu_blockDim.x;
			emu_threadIdx.y = (t / emu_blockDim.x) % emu_blockDim.y;
			emu_threadIdx.z = t / (emu_blockDim.x * emu_blockDim.y);
			swapcontext(&g_sched, &g_threads[t].ctx);
			if (g_threads[t].done) {
				left--;
			}
		}
	}
	for (int t = 1; t < nt; t++) {
		if (g_threads[t].syncs != g_threads[0].syncs) {
			errorf("%s: block (%u,%u): thread %d passed %d barriers, thread 0 %d", g_kernel->name, emu_blockIdx.x,
				emu_blockIdx.y, t, g_threads[t].syncs, g_threads[0].syncs);
			return false;
		}
	}
	return true;
}

static std::vector<unsigned char> g_lastParams;

// fake_last_params copies the last launch's parameter buffer.
EXPORT int fake_last_params(unsigned char* buf, int cap) {
	int n = (int)g_lastParams.size();
	memcpy(buf, g_lastParams.data(), n < cap ? n : cap);
	return n;
}

EXPORT CUresult cuLaunchKernel(void* f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
	unsigned int by, unsigned int bz, unsigned int shared, void* stream, void** params, void** extra) {
	const emu_kernel* k = (const emu_kernel*)f;
	const void* buf = NULL;
	size_t size = 0;
	bool extraOK = extra != NULL;
	for (int i = 0; extra != NULL && extra[i] != NULL; i += 2) {
		if (i > 8) {
			extraOK = false;
			break;
		}
		if (extra[i] == (void*)1) {
			buf = extra[i + 1];
		} else if (extra[i] == (void*)2) {
			size = *(size_t*)extra[i + 1];
		} else {
			extraOK = false;
		}
	}
	std::string hex;
	char b[3];
	for (size_t i = 0; buf != NULL && i < size; i++) {
		snprintf(b, sizeof b, "%02x", ((const unsigned char*)buf)[i]);
		hex += b;
	}
	CALLED("(func=%s, grid=%ux%ux%u, block=%ux%ux%u, shared=%u, stream=0x%llx, params=%s, extra=%s, size=%zu, buffer=%s)",
		k->name, gx, gy, gz, bx, by, bz, shared, hx(stream), params ? "set" : "null",
		extraOK ? "ok" : "bad", size, hex.c_str());
	g_lastParams.assign((const unsigned char*)buf, (const unsigned char*)buf + (buf ? size : 0));
	if (!extraOK || buf == NULL || params != NULL) {
		return 1;
	}
	if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || bx * by * bz > 1024 || gy > 65535 || gz > 65535) {
		errorf("%s: launch of grid %ux%ux%u, block %ux%ux%u", k->name, gx, gy, gz, bx, by, bz);
		return 1;
	}
	if (k->call == NULL) {
		return 0; // the probe
	}
	if (size != k->args_end) {
		errorf("%s: parameter buffer of %zu bytes; the kernel's parameters end at %zu", k->name, size, k->args_end);
		return 1;
	}
	std::vector<char> args(k->args_size > size ? k->args_size : size, 0);
	memcpy(args.data(), buf, size);
	g_kernel = k;
	g_params = args.data();
	emu_blockDim = emu_dim3{bx, by, bz};
	emu_gridDim = emu_dim3{gx, gy, gz};
	for (unsigned int z = 0; z < gz; z++) {
		for (unsigned int y = 0; y < gy; y++) {
			for (unsigned int x = 0; x < gx; x++) {
				emu_blockIdx = emu_dim3{x, y, z};
				if (!emu_block((int)(bx * by * bz))) {
					return 700;
				}
			}
		}
	}
	return 0;
}

// ---------------------------------------------------------------------------
// cuBLAS

typedef int cublasStatus_t;
enum { CUBLAS_OK = 0, CUBLAS_INVALID_VALUE = 7, CUBLAS_NOT_SUPPORTED = 15 };

EXPORT cublasStatus_t cublasCreate_v2(void** h) { return create_handle(__func__, h, -1, &g_handles); }
EXPORT cublasStatus_t cublasDestroy_v2(void* h) { return destroy_handle(__func__, "handle", h, &g_handles); }

EXPORT cublasStatus_t cublasSetStream_v2(void* h, void* s) {
	CALLED("(handle=0x%llx, stream=0x%llx)", hx(h), hx(s));
	return 0;
}

EXPORT cublasStatus_t cublasGetProperty(int type, int* v) {
	static const int version[3] = {13, 0, 7};
	if (type < 0 || type > 2) {
		return CUBLAS_INVALID_VALUE;
	}
	*v = version[type];
	CALLED("(type=%d) -> %d", type, *v);
	return 0;
}

EXPORT const char* cublasGetStatusName(cublasStatus_t s) {
	switch (s) {
	case 0: return "CUBLAS_STATUS_SUCCESS";
	case 7: return "CUBLAS_STATUS_INVALID_VALUE";
	case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
	case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
	}
	return "CUBLAS_STATUS_UNKNOWN";
}

static double load(const void* p, int type, long long i) {
	if (type == 14) { // CUDA_R_16BF
		unsigned int u = (unsigned int)((const unsigned short*)p)[i] << 16;
		float f;
		memcpy(&f, &u, 4);
		return f;
	}
	return ((const float*)p)[i];
}

// gemm_check validates one product as cuBLAS would, plus a bounds check
// of every operand against its allocation (cuBLAS would read garbage).
static cublasStatus_t gemm_check(const char* fn, int ta, int tb, int m, int n, int k, CUdeviceptr a, int atype, int lda,
	long long sa, CUdeviceptr b, int btype, int ldb, long long sb, CUdeviceptr c, int ctype, int ldc, long long sc,
	int batch, int compute) {
	if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || m < 0 || n < 0 || k < 0 || batch < 0) {
		return CUBLAS_INVALID_VALUE;
	}
	int arows = ta == 0 ? m : k, acols = ta == 0 ? k : m;
	int brows = tb == 0 ? k : n, bcols = tb == 0 ? n : k;
	if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1)) {
		return CUBLAS_INVALID_VALUE;
	}
	if (atype != btype || (atype != 0 && atype != 14) || ctype != 0 || (compute != 68 && compute != 69)) {
		return CUBLAS_NOT_SUPPORTED;
	}
	if (m == 0 || n == 0 || batch == 0) {
		return CUBLAS_OK;
	}
	size_t es = atype == 14 ? 2 : 4;
	struct {
		const char* what;
		CUdeviceptr p;
		long long rows, cols, ld, stride;
		size_t es;
	} ops[3] = {{"A", a, arows, acols, lda, sa, es}, {"B", b, brows, bcols, ldb, sb, es}, {"C", c, m, n, ldc, sc, 4}};
	for (auto& o : ops) {
		if (o.rows == 0 || o.cols == 0) {
			continue;
		}
		long long last = (long long)(batch - 1) * o.stride + (o.cols - 1) * o.ld + o.rows; // elements
		if (!in_range(o.p, (size_t)last * o.es)) {
			errorf("%s: operand %s (%lldx%lld, ld %lld, stride %lld, batch %d) at 0x%llx runs outside its allocation", fn,
				o.what, o.rows, o.cols, o.ld, o.stride, batch, o.p);
			return CUBLAS_INVALID_VALUE;
		}
	}
	return CUBLAS_OK;
}

static void gemm_run(int ta, int tb, int m, int n, int k, float alpha, const void* a, int atype, int lda, const void* b,
	int ldb, float beta, float* c, int ldc) {
	for (int j = 0; j < n; j++) {
		for (int i = 0; i < m; i++) {
			double acc = 0;
			for (int l = 0; l < k; l++) {
				double x = load(a, atype, ta == 0 ? i + (long long)l * lda : l + (long long)i * lda);
				double y = load(b, atype, tb == 0 ? l + (long long)j * ldb : j + (long long)l * ldb);
				acc += x * y;
			}
			float* dst = c + i + (long long)j * ldc;
			*dst = (float)(alpha * acc + (beta == 0 ? 0.0 : (double)beta * *dst));
		}
	}
}

// blas_context_ok models cuBLAS's per-context state: the first GEMM run
// while a primary context lives ties cuBLAS to that context; a GEMM in a
// later one (the first destroyed, a new one created) fails, as cached
// kernels of a destroyed context would.
static bool blas_context_ok(const char* fn) {
	if (g_ctxRefs <= 0) {
		return true; // the binding tests call cuBLAS without a context
	}
	if (g_blasGeneration == 0) {
		g_blasGeneration = g_ctxGeneration;
	}
	if (g_blasGeneration != g_ctxGeneration) {
		errorf("%s: cuBLAS first ran in primary context %d, which was destroyed; this is context %d", fn, g_blasGeneration,
			g_ctxGeneration);
		return false;
	}
	return true;
}

EXPORT cublasStatus_t cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* a, int atype,
	int lda, const void* b, int btype, int ldb, const void* beta, void* c, int ctype, int ldc, int compute, int algo) {
	float al = *(const float*)alpha, be = *(const float*)beta;
	logf("cublasGemmEx(handle=0x%llx, transa=%d, transb=%d, m=%d, n=%d, k=%d, alpha=%.9g, A=0x%llx, Atype=%d, lda=%d, "
		 "B=0x%llx, Btype=%d, ldb=%d, beta=%.9g, C=0x%llx, Ctype=%d, ldc=%d, compute=%d, algo=%d)",
		(unsigned long long)(uintptr_t)h, ta, tb, m, n, k, al, (unsigned long long)(uintptr_t)a, atype, lda,
		(unsigned long long)(uintptr_t)b, btype, ldb, be, (unsigned long long)(uintptr_t)c, ctype, ldc, compute, algo);
	CHECK_FAIL("cublasGemmEx");
	if (!blas_context_ok("cublasGemmEx")) {
		return 13; // CUBLAS_STATUS_EXECUTION_FAILED
	}
	cublasStatus_t s = gemm_check("cublasGemmEx", ta, tb, m, n, k, (uintptr_t)a, atype, lda, 0, (uintptr_t)b, btype, ldb, 0,
		(uintptr_t)c, ctype, ldc, 0, 1, compute);
	if (s != CUBLAS_OK || m == 0 || n == 0) {
		return s;
	}
	gemm_run(ta, tb, m, n, k, al, a, atype, lda, b, ldb, be, (float*)c, ldc);
	return 0;
}

EXPORT cublasStatus_t cublasGemmStridedBatchedEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha,
	const void* a, int atype, int lda, long long sa, const void* b, int btype, int ldb, long long sb, const void* beta,
	void* c, int ctype, int ldc, long long sc, int batch, int compute, int algo) {
	float al = *(const float*)alpha, be = *(const float*)beta;
	logf("cublasGemmStridedBatchedEx(handle=0x%llx, transa=%d, transb=%d, m=%d, n=%d, k=%d, alpha=%.9g, A=0x%llx, Atype=%d, "
		 "lda=%d, strideA=%lld, B=0x%llx, Btype=%d, ldb=%d, strideB=%lld, beta=%.9g, C=0x%llx, Ctype=%d, ldc=%d, "
		 "strideC=%lld, batch=%d, compute=%d, algo=%d)",
		(unsigned long long)(uintptr_t)h, ta, tb, m, n, k, al, (unsigned long long)(uintptr_t)a, atype, lda, sa,
		(unsigned long long)(uintptr_t)b, btype, ldb, sb, be, (unsigned long long)(uintptr_t)c, ctype, ldc, sc, batch,
		compute, algo);
	CHECK_FAIL("cublasGemmStridedBatchedEx");
	if (!blas_context_ok("cublasGemmStridedBatchedEx")) {
		return 13;
	}
	cublasStatus_t s = gemm_check("cublasGemmStridedBatchedEx", ta, tb, m, n, k, (uintptr_t)a, atype, lda, sa, (uintptr_t)b,
		btype, ldb, sb, (uintptr_t)c, ctype, ldc, sc, batch, compute);
	if (s != CUBLAS_OK || m == 0 || n == 0) {
		return s;
	}
	size_t es = atype == 14 ? 2 : 4;
	for (int i = 0; i < batch; i++) {
		gemm_run(ta, tb, m, n, k, al, (const char*)a + i * sa * es, atype, lda, (const char*)b + i * sb * es, ldb, be,
			(float*)c + i * sc, ldc);
	}
	return 0;
}

// ---------------------------------------------------------------------------
// NVRTC

struct program {
	std::string name, log;
	size_t srcLen;
	bool compiled;
};

EXPORT int nvrtcVersion(int* major, int* minor) {
	*major = 12;
	*minor = 9;
	logf("nvrtcVersion() -> 12.9");
	return 0;
}

EXPORT const char* nvrtcGetErrorString(int r) {
	switch (r) {
	case 0: return "NVRTC_SUCCESS";
	case 3: return "NVRTC_ERROR_INVALID_INPUT";
	case 5: return "NVRTC_ERROR_INVALID_OPTION";
	case 6: return "NVRTC_ERROR_COMPILATION";
	}
	return "NVRTC_ERROR_UNKNOWN";
}

EXPORT int nvrtcCreateProgram(void** prog, const char* src, const char* name, int numHeaders, const char* const* headers,
	const char* const* includeNames) {
	CALLED("(src=%zu bytes, name=\"%s\", headers=%d)", strlen(src), name, numHeaders);
	program* p = new program{name, "", strlen(src), false};
	*prog = p;
	return 0;
}

EXPORT int nvrtcCompileProgram(void* prog, int n, const char* const* opts) {
	program* p = (program*)prog;
	std::string all;
	for (int i = 0; i < n; i++) {
		all += i ? " " : "";
		all += opts[i];
	}
	logf("nvrtcCompileProgram(options=[%s])", all.c_str());
	int code = injected("nvrtcCompileProgram");
	if (code != 0) {
		p->log = "glmkit.cu(1): error: fake compile error";
		return code;
	}
	p->compiled = true;
	p->log = g_compileLog;
	return 0;
}

EXPORT int nvrtcGetProgramLogSize(void* prog, size_t* n) {
	*n = ((program*)prog)->log.size() + 1;
	return 0;
}

EXPORT int nvrtcGetProgramLog(void* prog, char* log) {
	program* p = (program*)prog;
	memcpy(log, p->log.c_str(), p->log.size() + 1);
	return 0;
}

static std::string image(program* p, const char* kind) {
	char buf[128];
	snprintf(buf, sizeof buf, "fake %s of %s (%zu bytes of source)\n", kind, p->name.c_str(), p->srcLen);
	return buf;
}

EXPORT int nvrtcGetPTXSize(void* prog, size_t* n) {
	*n = image((program*)prog, "PTX").size() + 1;
	return 0;
}

EXPORT int nvrtcGetPTX(void* prog, char* ptx) {
	std::string s = image((program*)prog, "PTX");
	memcpy(ptx, s.c_str(), s.size() + 1);
	return 0;
}

EXPORT int nvrtcGetCUBINSize(void* prog, size_t* n) {
	*n = image((program*)prog, "CUBIN").size();
	return 0;
}

EXPORT int nvrtcGetCUBIN(void* prog, char* cubin) {
	std::string s = image((program*)prog, "CUBIN");
	memcpy(cubin, s.data(), s.size());
	return 0;
}

EXPORT int nvrtcDestroyProgram(void** prog) {
	logf("nvrtcDestroyProgram()");
	delete (program*)*prog;
	*prog = NULL;
	return 0;
}
