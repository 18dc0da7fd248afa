package cuda

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"github.com/glmkit/glmkit/trainer/internal/dynlib"
)

// nvrtcResult is an nvrtcResult.
type nvrtcResult int32

// nvrtc is NVIDIA's run-time compiler (libnvrtc), which turns the kernels'
// CUDA C++ into PTX or a CUBIN. It needs no GPU.
type nvrtc struct {
	lib      library
	builtins library // libnvrtc-builtins of the same folder, loaded first

	version        func(major, minor *int32) nvrtcResult                                                                     `sym:"nvrtcVersion"`
	getErrorString func(r nvrtcResult) string                                                                                `sym:"nvrtcGetErrorString"`
	createProgram  func(prog *uintptr, src, name string, numHeaders int32, headers, includeNames unsafe.Pointer) nvrtcResult `sym:"nvrtcCreateProgram"`
	compileProgram func(prog uintptr, numOptions int32, options unsafe.Pointer) nvrtcResult                                  `sym:"nvrtcCompileProgram"`
	getLogSize     func(prog uintptr, n *uint64) nvrtcResult                                                                 `sym:"nvrtcGetProgramLogSize"`
	getLog         func(prog uintptr, log unsafe.Pointer) nvrtcResult                                                        `sym:"nvrtcGetProgramLog"`
	getPTXSize     func(prog uintptr, n *uint64) nvrtcResult                                                                 `sym:"nvrtcGetPTXSize"`
	getPTX         func(prog uintptr, ptx unsafe.Pointer) nvrtcResult                                                        `sym:"nvrtcGetPTX"`
	getCUBINSize   func(prog uintptr, n *uint64) nvrtcResult                                                                 `sym:"nvrtcGetCUBINSize"`
	getCUBIN       func(prog uintptr, cubin unsafe.Pointer) nvrtcResult                                                      `sym:"nvrtcGetCUBIN"`
	destroyProgram func(prog *uintptr) nvrtcResult                                                                           `sym:"nvrtcDestroyProgram"`
}

// loadNVRTC opens libnvrtc and binds it, preferring majors no newer than
// the driver's CUDA major (driverMajor; 0 if unknown: the PTX of a newer
// NVRTC is one the driver cannot load). Before each candidate it loads the
// libnvrtc-builtins beside it, which libnvrtc opens by name at compile time.
func loadNVRTC(dirs []string, nExplicit, driverMajor int) (*nvrtc, error) {
	r := &nvrtc{}
	lib, err := openLib(r, preferMajor(nvrtcNames, driverMajor), dirs, nExplicit, func(p string) {
		dir := filepath.Dir(p)
		if !strings.Contains(p, "/") {
			return
		}
		m, _ := filepath.Glob(filepath.Join(dir, "libnvrtc-builtins.so.*"))
		for _, b := range m {
			if h, err := dynlib.Open(b); err == nil {
				r.builtins = library{path: b, handle: h}
				return
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("NVRTC: %w", err)
	}
	r.lib = lib
	return r, nil
}

// versionString returns NVRTC's version, e.g. "13.0".
func (r *nvrtc) versionString() string {
	var major, minor int32
	if r.version(&major, &minor) != 0 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d", major, minor)
}

func (r *nvrtc) check(res nvrtcResult, call string) error {
	if res == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(res), Name: r.getErrorString(res)}
}

// compile compiles src for arch: "sm_XY" gives a CUBIN, "compute_XY" PTX.
// It returns the image and the compiler's log (warnings included); a
// failed compilation's error carries the log.
func (r *nvrtc) compile(src, name, arch string, extra ...string) (image []byte, log string, err error) {
	var prog uintptr
	if err := r.check(r.createProgram(&prog, src, name, 0, nil, nil), "nvrtcCreateProgram"); err != nil {
		return nil, "", err
	}
	defer r.destroyProgram(&prog)

	opts := append([]string{"--gpu-architecture=" + arch}, extra...)
	cstrs := make([][]byte, len(opts))
	ptrs := make([]*byte, len(opts))
	var pin runtime.Pinner
	defer pin.Unpin()
	for i, o := range opts {
		cstrs[i] = append([]byte(o), 0)
		ptrs[i] = &cstrs[i][0]
		pin.Pin(ptrs[i])
	}
	pin.Pin(&ptrs[0])
	res := r.compileProgram(prog, int32(len(ptrs)), unsafe.Pointer(&ptrs[0]))
	runtime.KeepAlive(cstrs)

	var n uint64
	if r.getLogSize(prog, &n) == 0 && n > 1 {
		buf := make([]byte, n)
		if r.getLog(prog, unsafe.Pointer(&buf[0])) == 0 {
			log = strings.TrimRight(string(buf[:n-1]), "\n\x00")
		}
	}
	if res != 0 {
		return nil, log, fmt.Errorf("%w\n%s", r.check(res, "nvrtcCompileProgram("+strings.Join(opts, " ")+")"), log)
	}
	size, get, what := r.getPTXSize, r.getPTX, "PTX"
	if strings.HasPrefix(arch, "sm_") {
		size, get, what = r.getCUBINSize, r.getCUBIN, "CUBIN"
	}
	if err := r.check(size(prog, &n), "nvrtcGet"+what+"Size"); err != nil {
		return nil, log, err
	}
	image = make([]byte, n)
	if n > 0 {
		if err := r.check(get(prog, unsafe.Pointer(&image[0])), "nvrtcGet"+what); err != nil {
			return nil, log, err
		}
	}
	return image, log, nil
}
