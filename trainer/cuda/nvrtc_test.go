package cuda

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// loadTestNVRTC loads NVRTC from the usual places, or skips.
func loadTestNVRTC(t *testing.T) *nvrtc {
	t.Helper()
	rtc, err := loadNVRTC(libDirs(), explicitDirs(""))
	if err != nil && requireCUDA() {
		t.Fatalf("GLM_REQUIRE_CUDA=1 and no NVRTC: %v", err)
	}
	if err != nil {
		t.Skipf("no NVRTC to compile the kernels with (on Debian: add the non-free component, then apt-get install libnvrtc11.2): %v", err)
	}
	return rtc
}

// ptxEntry matches a kernel entry and its parameter list in PTX.
var ptxEntry = regexp.MustCompile(`(?s)\.visible \.entry (\w+)\(\s*(.*?)\)`)

// ptxParam matches one parameter of an entry.
var ptxParam = regexp.MustCompile(`\.param\s+(\.\w+)\s+(?:\.ptr\s+\S+\s+)?(?:\.align\s+\d+\s+)?(\w+)`)

// TestKernelsCompile compiles the kernel program with NVRTC for Ampere
// (compute_80) and Hopper (compute_90) PTX and an sm_90 CUBIN, and checks
// that the PTX has every kernel of kernelSigs with the parameter types the
// backend packs. NVRTC needs no GPU.
func TestKernelsCompile(t *testing.T) {
	rtc := loadTestNVRTC(t)
	t.Logf("NVRTC %s from %s", rtc.versionString(), rtc.lib.path)
	src := kernelSource()
	for _, arch := range []string{"compute_80", "compute_90", "sm_90"} {
		t.Run(arch, func(t *testing.T) {
			img, log, err := rtc.compile(src, "glmkit.cu", arch, compileFlags...)
			if err != nil {
				t.Fatal(err)
			}
			if log != "" {
				t.Errorf("NVRTC warnings for %s:\n%s", arch, log)
			}
			if strings.HasPrefix(arch, "sm_") {
				if !bytes.HasPrefix(img, []byte("\x7fELF")) {
					t.Fatalf("the %s image is not an ELF CUBIN: % x", arch, img[:min(16, len(img))])
				}
				t.Logf("%s CUBIN: %d bytes", arch, len(img))
				return
			}
			ptx := string(bytes.TrimRight(img, "\x00"))
			t.Logf("%s PTX: %d bytes", arch, len(ptx))
			checkPTXParams(t, ptx)
		})
	}
}

// checkPTXParams checks every kernel's PTX parameters against kernelSigs.
func checkPTXParams(t *testing.T, ptx string) {
	t.Helper()
	entries := map[string][]string{}
	for _, m := range ptxEntry.FindAllStringSubmatch(ptx, -1) {
		var types []string
		for _, p := range ptxParam.FindAllStringSubmatch(m[2], -1) {
			types = append(types, p[1])
		}
		entries[m[1]] = types
	}
	if len(entries) != int(numKernels) {
		t.Errorf("PTX has %d entries; kernelSigs has %d", len(entries), numKernels)
	}
	for k := range numKernels {
		sig := kernelSigs[k]
		kinds, err := paramKinds(sig.params)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := entries[sig.name]
		if !ok {
			t.Errorf("kernel %s is not in the PTX", sig.name)
			continue
		}
		want := make([]string, len(kinds))
		for i, kd := range kinds {
			want[i] = kd.ptx()
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("kernel %s: PTX parameters %v; kernelSigs says %v (%s)", sig.name, got, want, sig.params)
		}
	}
}
