package cuda

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// result is a CUresult.
type result int32

// cudaSuccess is CUDA_SUCCESS.
const cudaSuccess result = 0

// Driver API constants (cuda.h).
const (
	attrMultiprocessors = 16
	attrCCMajor         = 75
	attrCCMinor         = 76

	streamNonBlocking    = 0x1 // CU_STREAM_NON_BLOCKING
	eventDisableTiming   = 0x2 // CU_EVENT_DISABLE_TIMING
	memHostAllocPortable = 0x1 // CU_MEMHOSTALLOC_PORTABLE

	launchParamEnd           = 0x0 // CU_LAUNCH_PARAM_END
	launchParamBufferPointer = 0x1 // CU_LAUNCH_PARAM_BUFFER_POINTER
	launchParamBufferSize    = 0x2 // CU_LAUNCH_PARAM_BUFFER_SIZE
)

// driver is the part of the CUDA driver API (libcuda.so.1) the backend
// uses, each field bound to the C function its tag names: the ABI names,
// such as the _v2 ones that cuda.h's macros hide. Handles (contexts, streams, events, modules,
// functions) are uintptr; device addresses are uint64 (CUdeviceptr).
type driver struct {
	lib library

	init              func(flags uint32) result                                                 `sym:"cuInit"`
	driverGetVersion  func(v *int32) result                                                     `sym:"cuDriverGetVersion"`
	deviceGetCount    func(n *int32) result                                                     `sym:"cuDeviceGetCount"`
	deviceGet         func(dev *int32, ordinal int32) result                                    `sym:"cuDeviceGet"`
	deviceGetName     func(name *byte, n int32, dev int32) result                               `sym:"cuDeviceGetName"`
	deviceGetAttr     func(v *int32, attr int32, dev int32) result                              `sym:"cuDeviceGetAttribute"`
	deviceTotalMem    func(bytes *uint64, dev int32) result                                     `sym:"cuDeviceTotalMem_v2"`
	primaryCtxRetain  func(ctx *uintptr, dev int32) result                                      `sym:"cuDevicePrimaryCtxRetain"`
	primaryCtxRelease func(dev int32) result                                                    `sym:"cuDevicePrimaryCtxRelease_v2"`
	ctxSetCurrent     func(ctx uintptr) result                                                  `sym:"cuCtxSetCurrent"`
	memGetInfo        func(free, total *uint64) result                                          `sym:"cuMemGetInfo_v2"`
	memAlloc          func(p *uint64, bytes uint64) result                                      `sym:"cuMemAlloc_v2"`
	memFree           func(p uint64) result                                                     `sym:"cuMemFree_v2"`
	memHostAlloc      func(p *unsafe.Pointer, bytes uint64, flags uint32) result                `sym:"cuMemHostAlloc"`
	memFreeHost       func(p unsafe.Pointer) result                                             `sym:"cuMemFreeHost"`
	memcpyHtoDAsync   func(dst uint64, src unsafe.Pointer, bytes uint64, stream uintptr) result `sym:"cuMemcpyHtoDAsync_v2"`
	memcpyDtoHAsync   func(dst unsafe.Pointer, src uint64, bytes uint64, stream uintptr) result `sym:"cuMemcpyDtoHAsync_v2"`
	memcpyDtoDAsync   func(dst, src uint64, bytes uint64, stream uintptr) result                `sym:"cuMemcpyDtoDAsync_v2"`
	memsetD32Async    func(dst uint64, v uint32, n uint64, stream uintptr) result               `sym:"cuMemsetD32Async"`
	streamCreate      func(s *uintptr, flags uint32) result                                     `sym:"cuStreamCreate"`
	streamDestroy     func(s uintptr) result                                                    `sym:"cuStreamDestroy_v2"`
	streamSynchronize func(s uintptr) result                                                    `sym:"cuStreamSynchronize"`
	streamWaitEvent   func(s, e uintptr, flags uint32) result                                   `sym:"cuStreamWaitEvent"`
	eventCreate       func(e *uintptr, flags uint32) result                                     `sym:"cuEventCreate"`
	eventDestroy      func(e uintptr) result                                                    `sym:"cuEventDestroy_v2"`
	eventRecord       func(e, s uintptr) result                                                 `sym:"cuEventRecord"`
	eventSynchronize  func(e uintptr) result                                                    `sym:"cuEventSynchronize"`
	moduleLoadData    func(m *uintptr, image unsafe.Pointer) result                             `sym:"cuModuleLoadData"`
	moduleUnload      func(m uintptr) result                                                    `sym:"cuModuleUnload"`
	moduleGetFunction func(f *uintptr, m uintptr, name string) result                           `sym:"cuModuleGetFunction"`
	launchKernel      func(f uintptr, gx, gy, gz, bx, by, bz, sharedBytes uint32,
		stream uintptr, params, extra unsafe.Pointer) result `sym:"cuLaunchKernel"`
	getErrorName   func(code result, s **byte) result `sym:"cuGetErrorName"`
	getErrorString func(code result, s **byte) result `sym:"cuGetErrorString"`

	// optional: resolved through cuGetProcAddress_v2 (CUDA ≥ 12) when the
	// library does not export them; nil when neither has them.
	getProcAddress   func(sym string, pfn *uintptr, version int32, flags uint64, status *int32) result `sym:"cuGetProcAddress_v2,optional"`
	funcGetParamInfo func(f uintptr, index uint64, offset, size *uint64) result                        `sym:"cuFuncGetParamInfo,optional"`
}

// loadDriver opens libcuda.so.1 from dirs and binds the driver API. It
// does not call cuInit.
func loadDriver(dirs []string, nExplicit int) (*driver, error) {
	lib, err := openLib(nil, driverNames, dirs, nExplicit, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, err)
	}
	d := &driver{lib: lib}
	if err := lib.bind(d); err != nil {
		return nil, fmt.Errorf("%w: %v (is the driver older than CUDA 11?)", ErrNoDriver, err)
	}
	return d, nil
}

// resolveLate binds the optional entry points that the library does not
// export under their own names through cuGetProcAddress_v2; it needs
// cuInit to have succeeded. version is the driver's CUDA version
// (cuDriverGetVersion), e.g. 13000.
func (d *driver) resolveLate(version int32) {
	if d.funcGetParamInfo != nil || d.getProcAddress == nil {
		return
	}
	var fn uintptr
	var status int32
	if d.getProcAddress("cuFuncGetParamInfo", &fn, version, 0, &status) == cudaSuccess && fn != 0 {
		purego.RegisterFunc(&d.funcGetParamInfo, fn)
	}
}

// check turns a CUresult into an error naming the call.
func (d *driver) check(r result, call string, args ...any) error {
	if r == cudaSuccess {
		return nil
	}
	if len(args) > 0 {
		call = fmt.Sprintf(call, args...)
	}
	return &Error{Call: call, Code: int(r), Name: d.errorName(r), Desc: d.errorString(r)}
}

func (d *driver) errorName(r result) string {
	var p *byte
	if d.getErrorName(r, &p) != cudaSuccess || p == nil {
		return fmt.Sprintf("CUresult %d", int(r))
	}
	return cString(p)
}

func (d *driver) errorString(r result) string {
	var p *byte
	if d.getErrorString(r, &p) != cudaSuccess || p == nil {
		return ""
	}
	return cString(p)
}

// Error is a failed call into a CUDA library.
type Error struct {
	Call string // the call, with its main arguments
	Code int    // CUresult, cublasStatus_t or nvrtcResult
	Name string // the code's name, e.g. CUDA_ERROR_OUT_OF_MEMORY
	Desc string // the library's description, if any
}

// Error implements error.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (%d)", e.Call, e.Name, e.Code)
	if e.Desc != "" && e.Desc != e.Name {
		s += ": " + e.Desc
	}
	return s
}

// verifyParams compares a kernel's parameter layout as the driver reports
// it (cuFuncGetParamInfo, CUDA ≥ 12.4) with the one packParams produces.
// It reports whether the driver answered; only a mismatch is an error.
func verifyParams(d *driver, fn uintptr, k kernel, kinds []paramKind) (bool, error) {
	offs, _ := paramOffsets(kinds)
	for i, kd := range kinds {
		var off, size uint64
		if d.funcGetParamInfo(fn, uint64(i), &off, &size) != cudaSuccess {
			return false, nil
		}
		if int(off) != offs[i] || int(size) != kd.size() {
			return true, fmt.Errorf("kernel %s parameter %d is at offset %d, %d bytes, for the driver; the backend packs it at %d, %d bytes",
				k, i, off, size, offs[i], kd.size())
		}
	}
	var off, size uint64
	if d.funcGetParamInfo(fn, uint64(len(kinds)), &off, &size) == cudaSuccess {
		return true, fmt.Errorf("kernel %s has more than the %d parameters of its signature", k, len(kinds))
	}
	return true, nil
}
