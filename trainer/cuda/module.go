package cuda

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	"github.com/glmkit/glmkit/internal/atomicfile"
)

// The kernel module is made and loaded by the first of these that works,
// each failure noted in Info.Notes:
//
//  1. the device's own CUBIN (sm_XY), from the cache or compiled by NVRTC;
//  2. PTX for the device's architecture, then for compute_90 and
//     compute_80 where the device runs them, which the driver compiles
//     when it loads them (a driver older than NVRTC rejects its PTX:
//     CUDA_ERROR_UNSUPPORTED_PTX_VERSION, so the next one is tried);
//  3. the compute_80 PTX embedded in the binary (kernels/compute_80.ptx.gz,
//     compiled by NVRTC 11.8, PTX ISA 7.8, which every driver since CUDA
//     11.8 loads), for machines without NVRTC or where it fails.
//
// NVRTC's warnings are noted, not fatal. A cached image that fails to load
// is dropped and compiled again.

// embeddedPTXgz is the compute_80 PTX of kernelSource, gzipped, its first
// line a stamp of the source and options (ptxStamp). TestEmbeddedPTX checks
// it against the sources; `go test -run TestKernelsCompile -update-ptx`
// with NVRTC 11.8 installed rewrites it.
//
//go:embed kernels/compute_80.ptx.gz
var embeddedPTXgz []byte

// embeddedTarget is the architecture of the embedded PTX.
const embeddedTarget = "compute_80"

// sourceDigest identifies the kernel program and its compile options.
func sourceDigest() string {
	h := sha256.Sum256([]byte(strings.Join(append([]string{kernelSource()}, compileFlags...), "\x00")))
	return "sha256:" + hex.EncodeToString(h[:])
}

// ptxStamp is the first line of the embedded PTX: what it was compiled
// from and by which NVRTC (a PTX comment, so the driver skips it).
func ptxStamp(nvrtcVersion string) string {
	return fmt.Sprintf("// glmkit kernels %s %s %s NVRTC %s\n", sourceDigest(), embeddedTarget, strings.Join(compileFlags, " "), nvrtcVersion)
}

// embeddedPTX returns the embedded PTX (stamp included) and the version of
// the NVRTC that compiled it. It refuses PTX compiled from other sources
// or options than this binary's: its kernels would differ from the ones
// the backend packs arguments for.
func embeddedPTX() (ptx []byte, nvrtcVersion string, err error) {
	if len(embeddedPTXgz) == 0 {
		return nil, "", errors.New("this binary has no embedded PTX")
	}
	zr, err := gzip.NewReader(bytes.NewReader(embeddedPTXgz))
	if err != nil {
		return nil, "", fmt.Errorf("embedded PTX: %w", err)
	}
	ptx, err = io.ReadAll(zr)
	if err != nil {
		return nil, "", fmt.Errorf("embedded PTX: %w", err)
	}
	first, _, _ := bytes.Cut(ptx, []byte("\n"))
	f := strings.Fields(string(first))
	// // glmkit kernels DIGEST TARGET FLAGS... NVRTC VERSION
	if len(f) < 7 || f[1] != "glmkit" || f[len(f)-2] != "NVRTC" {
		return nil, "", fmt.Errorf("embedded PTX: no stamp (first line %q)", first)
	}
	nvrtcVersion = f[len(f)-1]
	if want := ptxStamp(nvrtcVersion); string(first)+"\n" != want {
		return nil, "", fmt.Errorf("embedded PTX is stale: its stamp is %q; this binary's kernels are %q (regenerate it: go test ./trainer/cuda -run TestKernelsCompile -update-ptx)",
			first, strings.TrimSpace(want))
	}
	return ptx, nvrtcVersion, nil
}

// kernelTargets lists the NVRTC targets for a device of compute capability
// major.minor, in the order they are tried.
func kernelTargets(major, minor int) []string {
	cc := 10*major + minor
	out := []string{fmt.Sprintf("sm_%d", cc), fmt.Sprintf("compute_%d", cc)}
	for _, c := range []int{90, 80} {
		if c < cc {
			out = append(out, fmt.Sprintf("compute_%d", c))
		}
	}
	return out
}

// kernelCacheDir is where compiled images are kept ("" for none).
func (be *Backend) kernelCacheDir() string {
	cache := be.opt.CacheDir
	if cache == "" {
		cache = os.Getenv("GLMKIT_CUDA_CACHE")
	}
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "glmkit", "cuda")
		}
	}
	if cache == "off" {
		return ""
	}
	return cache
}

// loadKernels makes the kernel module (see the top of this file), loads
// it and looks up every kernel.
func (be *Backend) loadKernels(g *gpu, dirs []string, nx, driverMajor, major, minor int) error {
	in := &be.info
	rtc, err := loadNVRTC(dirs, nx, driverMajor)
	if err != nil {
		in.Notes = append(in.Notes, fmt.Sprintf("kernels: %v", err))
	} else {
		g.rtc = rtc
		in.NVRTC, in.NVRTCPath = rtc.versionString(), rtc.lib.path
		if m := soMajor(rtc.lib.path); driverMajor > 0 && m > driverMajor {
			in.Notes = append(in.Notes, fmt.Sprintf("NVRTC %s is newer than the driver's CUDA %s: its PTX may not load", in.NVRTC, in.Driver))
		}
	}
	var errs []error
	if rtc != nil {
		errs = be.compileKernels(g, rtc, kernelTargets(major, minor))
	}
	if g.module == 0 {
		if 10*major+minor < 80 {
			return fmt.Errorf("kernels for %s: %w", in.Arch, errors.Join(errs...))
		}
		ptx, ver, err := embeddedPTX()
		if err == nil {
			what := embeddedTarget + " (embedded PTX, NVRTC " + ver + ")"
			if err = g.loadModule(ptx, true, what); err == nil {
				in.Kernels = what
			}
		}
		if err != nil {
			return fmt.Errorf("kernels for %s: %w", in.Arch, errors.Join(append(errs, err)...))
		}
	}
	return be.lookupKernels(g)
}

// compileKernels loads the module from the first target whose image (from
// the cache, else compiled by rtc) loads; it returns, and notes, the
// failures before it.
func (be *Backend) compileKernels(g *gpu, rtc *nvrtc, targets []string) []error {
	in := &be.info
	src, cache := kernelSource(), be.kernelCacheDir()
	var errs []error
	fail := func(err error) {
		errs = append(errs, err)
		in.Notes = append(in.Notes, "kernels: "+err.Error())
	}
	for _, arch := range targets {
		ptx := !strings.HasPrefix(arch, "sm_")
		file := ""
		if cache != "" {
			key := sha256.Sum256([]byte(strings.Join(append([]string{src, arch, in.NVRTC, rtc.lib.path}, compileFlags...), "\x00")))
			file = filepath.Join(cache, hex.EncodeToString(key[:16])+"-"+arch+".bin")
			if img, err := os.ReadFile(file); err == nil && len(img) > 0 {
				err := g.loadModule(img, ptx, arch+" (cached)")
				if err == nil {
					in.Kernels = arch + " (cached " + file + ")"
					return errs
				}
				fail(fmt.Errorf("the cached %s image %s did not load (compiling it again): %w", arch, file, err))
				os.Remove(file)
			}
		}
		img, log, err := rtc.compile(src, "glmkit.cu", arch, compileFlags...)
		if err != nil {
			fail(err)
			continue
		}
		if log != "" {
			in.Notes = append(in.Notes, fmt.Sprintf("NVRTC %s warnings for %s:\n%s", in.NVRTC, arch, log))
		}
		what := arch + " (compiled by NVRTC " + in.NVRTC + ")"
		if err := g.loadModule(img, ptx, what); err != nil {
			fail(err)
			continue
		}
		in.Kernels = what
		if file != "" {
			writeCache(file, img)
		}
		return errs
	}
	return errs
}

// lookupKernels finds every kernel of kernelSigs in the module and, where
// the driver can tell (cuFuncGetParamInfo), checks its parameter layout.
func (be *Backend) lookupKernels(g *gpu) error {
	in := &be.info
	for k := range numKernels {
		sig := kernelSigs[k]
		if err := g.check(g.drv.moduleGetFunction(&g.funcs[k], g.module, sig.name), "cuModuleGetFunction(%s)", sig.name); err != nil {
			return err
		}
		kinds, err := paramKinds(sig.params)
		if err != nil {
			return err
		}
		g.kinds[k] = kinds
		if g.drv.funcGetParamInfo != nil {
			checked, err := verifyParams(g.drv, g.funcs[k], k, kinds)
			if err != nil {
				return err
			}
			if checked {
				in.ParamsChecked++
			}
		}
	}
	in.KernelCount = int(numKernels)
	return nil
}

// loadModule loads a CUBIN or PTX image (PTX is passed as a C string) as
// the backend's module.
func (g *gpu) loadModule(img []byte, ptx bool, what string) error {
	if len(img) == 0 {
		return fmt.Errorf("%s: empty image", what)
	}
	if ptx && img[len(img)-1] != 0 {
		img = append(img[:len(img):len(img)], 0)
	}
	var mod uintptr
	err := g.check(g.drv.moduleLoadData(&mod, unsafe.Pointer(&img[0])), "cuModuleLoadData(%s)", what)
	runtime.KeepAlive(img)
	if err != nil {
		return err
	}
	g.module = mod
	return nil
}

// writeCache stores a compiled image through a glmkit temporary renamed
// into place, after removing the temporaries that killed writers left in
// the cache; failures only cost a compile later.
func writeCache(file string, img []byte) {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	atomicfile.RemoveStale(dir, nil)
	atomicfile.Write(file, img)
}
