package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/glmkit/glmkit/trainer/internal/dynlib"
)

// ErrNoDriver is wrapped by the errors of New and Probe when no CUDA driver
// (libcuda.so.1) can be loaded, and ErrNoDevice when the driver loads but
// cuInit fails or sees no device: either way the machine cannot run the
// CUDA backend, and `--backend auto` falls back to the CPU.
var (
	ErrNoDriver = errors.New("no CUDA driver found")
	ErrNoDevice = errors.New("no usable CUDA device")
)

// LibDirEnv names the environment variable whose directory is searched
// first for libcuda.so.1, libcublas and libnvrtc (after Options.LibDir).
const LibDirEnv = "GLMKIT_CUDA_LIB_DIR"

// Library file names, newest first (preferMajor puts those no newer than
// the driver first).
var (
	driverNames  = []string{"libcuda.so.1", "libcuda.so"}
	cublasNames  = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
	cublasLtName = map[string]string{ // the cuBLASLt that libcublas needs, loaded first from the same folder
		"libcublas.so.13": "libcublasLt.so.13", "libcublas.so.12": "libcublasLt.so.12",
		"libcublas.so.11": "libcublasLt.so.11", "libcublas.so": "libcublasLt.so",
	}
	nvrtcNames = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}
)

// libDirs returns the folders searched for the CUDA libraries, in order:
// the explicit folders (Options.LibDir, then $GLMKIT_CUDA_LIB_DIR), the
// entries of LD_LIBRARY_PATH, the driver and toolkit folders of NVIDIA's
// images, the system library folders, then the lib folders of the nvidia-*
// Python wheels (PyTorch's CUDA libraries).
func libDirs(explicit ...string) []string {
	var dirs []string
	for _, d := range explicit {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if d := os.Getenv(LibDirEnv); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs,
		"/usr/local/nvidia/lib64", "/usr/local/nvidia/lib",
		"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
		"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib")
	for _, pat := range []string{
		"/usr/local/cuda-*/lib64",
		"/opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
		"/usr/local/lib/python3*/site-packages/nvidia/*/lib",
		"/usr/lib/python3/dist-packages/nvidia/*/lib",
	} {
		m, _ := filepath.Glob(pat)
		slices.Sort(m)
		slices.Reverse(m) // newest versions first
		dirs = append(dirs, m...)
	}
	var out []string
	for _, d := range dirs {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// library is a shared library opened with dynlib.Open.
type library struct {
	path   string  // the file opened, or the bare name the loader resolved
	handle uintptr // dynlib.Open handle
}

// candidates lists the paths to try for a library, in order: every name
// in the explicit folders (the first nExplicit of dirs), then each name,
// newest first, in every other folder, then each bare name for the dynamic
// loader's own search (its cache).
func candidates(names, dirs []string, nExplicit int) []string {
	var out []string
	for _, d := range dirs[:nExplicit] {
		for _, n := range names {
			if p := filepath.Join(d, n); fileExists(p) {
				out = append(out, p)
			}
		}
	}
	for _, n := range names {
		for _, d := range dirs[nExplicit:] {
			if p := filepath.Join(d, n); fileExists(p) {
				out = append(out, p)
			}
		}
	}
	return append(out, names...)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// soMajor returns the major version in a library file name
// (libcublas.so.13 → 13, libnvrtc.so.11.2 → 11), or -1 for an unversioned
// name (libcublas.so).
func soMajor(name string) int {
	_, v, ok := strings.Cut(filepath.Base(name), ".so.")
	if !ok {
		return -1
	}
	v, _, _ = strings.Cut(v, ".")
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// preferMajor orders library names (given newest first) for a driver of
// CUDA major version driverMajor: the versioned names no newer than the
// driver first, then the unversioned ones, then the newer majors as a last
// resort (a library of a newer CUDA major than the driver's fails at its
// first call, or worse). driverMajor ≤ 0 (unknown) keeps the order.
func preferMajor(names []string, driverMajor int) []string {
	if driverMajor <= 0 {
		return names
	}
	var fit, plain, newer []string
	for _, n := range names {
		switch m := soMajor(n); {
		case m < 0:
			plain = append(plain, n)
		case m <= driverMajor:
			fit = append(fit, n)
		default:
			newer = append(newer, n)
		}
	}
	return append(append(fit, plain...), newer...)
}

// openLib opens the first candidate (see candidates) that loads and, when
// fns is not nil, binds fns to it (library.bind). A candidate that loads
// but lacks a function fns requires (an older CUDA's library ahead of the
// right one) is closed and passed over, as one that fails to load is.
// before, if not nil, runs before each attempt with the path. The error
// lists where it looked and why each library it found was passed over.
func openLib(fns any, names, dirs []string, nExplicit int, before func(path string)) (library, error) {
	var tried []string
	for _, p := range candidates(names, dirs, nExplicit) {
		if before != nil {
			before(p)
		}
		h, err := dynlib.Open(p)
		if err != nil {
			if strings.Contains(p, "/") {
				tried = append(tried, fmt.Sprintf("%s: %v", p, err))
			}
			continue
		}
		lib := library{path: p, handle: h}
		if fns != nil {
			if err := lib.bind(fns); err != nil {
				dynlib.Close(h)
				tried = append(tried, err.Error())
				continue
			}
		}
		return lib, nil
	}
	none := "no"
	if len(tried) > 0 {
		none = "no usable"
	}
	msg := fmt.Sprintf("%s %s in %s, nor known to the dynamic loader", none, strings.Join(names, " or "), strings.Join(dirs, ", "))
	if len(tried) > 0 {
		msg += "; passed over " + strings.Join(tried, "; ")
	}
	return library{}, errors.New(msg)
}

// explicitDirs counts the explicit folders at the head of libDirs' result.
func explicitDirs(optDir string) int {
	n := 0
	if optDir != "" {
		n++
	}
	if d := os.Getenv(LibDirEnv); d != "" && d != optDir {
		n++
	}
	return n
}

// bind sets the function fields of the struct fns points to to the
// library's C functions their sym tags name (see dynlib.Bind); the error
// lists the required ones it lacks.
func (l library) bind(fns any) error {
	if missing := dynlib.Bind(l.handle, fns); len(missing) > 0 {
		return fmt.Errorf("%s lacks %s", l.path, strings.Join(missing, ", "))
	}
	return nil
}

// cString reads the NUL-terminated C string at p (empty for 0).
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for q := p; *q != 0; q = (*byte)(unsafe.Add(unsafe.Pointer(q), 1)) {
		b = append(b, *q)
	}
	return string(b)
}
