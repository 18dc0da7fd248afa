package cuda

import (
	"bytes"
	"compress/gzip"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

// updatePTX rewrites kernels/compute_80.ptx.gz with NVRTC 11.8.
var updatePTX = flag.Bool("update-ptx", false, "recompile the embedded PTX (kernels/compute_80.ptx.gz); needs NVRTC 11.8 (Debian's libnvrtc11.2)")

// loadTestNVRTC loads NVRTC from the usual places, or skips.
func loadTestNVRTC(t *testing.T) *nvrtc {
	t.Helper()
	rtc, err := loadNVRTC(libDirs(), explicitDirs(""), 0)
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
// backend packs. NVRTC needs no GPU. Warnings are logged (New notes them
// and goes on). With the NVRTC that compiled the embedded PTX, the
// compute_80 PTX must be the embedded one, byte for byte; -update-ptx
// rewrites it.
func TestKernelsCompile(t *testing.T) {
	rtc := loadTestNVRTC(t)
	ver := rtc.versionString()
	t.Logf("NVRTC %s from %s", ver, rtc.lib.path)
	src := kernelSource()
	for _, arch := range []string{"compute_80", "compute_90", "sm_90"} {
		t.Run(arch, func(t *testing.T) {
			img, log, err := rtc.compile(src, "glmkit.cu", arch, compileFlags...)
			if err != nil {
				t.Fatal(err)
			}
			if log != "" {
				t.Logf("NVRTC %s warnings for %s (New notes them in Info.Notes):\n%s", ver, arch, log)
			}
			if arch == embeddedTarget {
				checkEmbeddedPTX(t, ver, img)
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

// checkEmbeddedPTX compares the embedded PTX with ptx, just compiled by
// NVRTC ver, or rewrites it with -update-ptx.
func checkEmbeddedPTX(t *testing.T, ver string, ptx []byte) {
	t.Helper()
	ptx = bytes.TrimRight(ptx, "\x00")
	if *updatePTX {
		if !strings.HasPrefix(ver, "11.") {
			t.Fatalf("-update-ptx needs NVRTC 11.8 (PTX ISA 7.8, which every driver since CUDA 11.8 loads); this is NVRTC %s", ver)
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write([]byte(ptxStamp(ver)))
		zw.Write(ptx)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("kernels/compute_80.ptx.gz", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote kernels/compute_80.ptx.gz: %d bytes of PTX, %d gzipped", len(ptx), b.Len())
		return
	}
	emb, ever, err := embeddedPTX()
	if err != nil {
		t.Fatal(err)
	}
	if ever != ver {
		t.Logf("the embedded PTX is NVRTC %s's; this is NVRTC %s: not compared", ever, ver)
		return
	}
	_, emb, _ = bytes.Cut(emb, []byte("\n"))
	if !bytes.Equal(emb, ptx) {
		t.Errorf("the embedded PTX differs from what NVRTC %s compiles now (rerun with -update-ptx)", ver)
	}
}

// TestEmbeddedPTX checks the embedded PTX without NVRTC: it was compiled
// from this binary's kernel sources and options (its stamp), and it has
// every kernel with the parameter types the backend packs.
func TestEmbeddedPTX(t *testing.T) {
	ptx, ver, err := embeddedPTX()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded %s PTX from NVRTC %s: %d bytes (%d gzipped)", embeddedTarget, ver, len(ptx), len(embeddedPTXgz))
	if !bytes.Contains(ptx, []byte("\n.target sm_80")) {
		t.Errorf("the embedded PTX does not target sm_80")
	}
	checkPTXParams(t, string(ptx))
}
