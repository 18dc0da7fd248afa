package cuda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/glmkit/glmkit/trainer/internal/dynlib"
)

// The stand-in library (testdata/fakecuda.cpp) is built once per test
// binary, with the kernel program compiled against testdata/emu.h and a
// dispatch table generated from kernelSigs, into a temporary folder that
// holds it under the names the backend looks for.

// fakeBuild is the stand-in, built once on first use into a folder that
// TestMain removes.
var fakeBuild struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeBuild.dir != "" {
		os.RemoveAll(fakeBuild.dir)
	}
	os.Exit(code)
}

// fake is the stand-in library's test interface.
type fake struct {
	dir        string
	log        func(buf []byte, capacity int32) int32 `sym:"fake_log"`
	last       func(buf []byte, capacity int32) int32 `sym:"fake_last"`
	errors     func(buf []byte, capacity int32) int32 `sym:"fake_errors"`
	reset      func()                                 `sym:"fake_reset"`
	fail       func(fn string, code int32)            `sym:"fake_fail"`
	failTimes  func(fn string, code, n int32)         `sym:"fake_fail_times"`
	compileLog func(log string)                       `sym:"fake_compile_log"`
	setDriver  func(version int32)                    `sym:"fake_set_driver_version"`
	live       func(what int32) int32                 `sym:"fake_live"`
	check      func() int32                           `sym:"fake_check"`
	setDevices func(n int32)                          `sym:"fake_set_devices"`
	lastParams func(buf []byte, capacity int32) int32 `sym:"fake_last_params"`
}

// newFake builds (once) and opens the stand-in library, or skips the test
// when there is no g++.
func newFake(t testing.TB) *fake {
	t.Helper()
	fakeBuild.once.Do(func() { fakeBuild.dir, fakeBuild.err = buildFake() })
	if fakeBuild.err != nil {
		if strings.Contains(fakeBuild.err.Error(), "no g++") {
			t.Skip(fakeBuild.err)
		}
		t.Fatal(fakeBuild.err)
	}
	dir := fakeBuild.dir
	h, err := dynlib.Open(filepath.Join(dir, "libcuda.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{dir: dir}
	if err := (library{path: "fake libcuda.so.1", handle: h}).bind(f); err != nil {
		t.Fatal(err)
	}
	f.reset()
	f.setDevices(1)
	return f
}

func (f *fake) text(get func([]byte, int32) int32) string {
	n := get(nil, 0)
	buf := make([]byte, n+1)
	get(buf, int32(len(buf)))
	return string(buf[:n])
}

// lastCall is the log line of the last call into the stand-in.
func (f *fake) lastCall() string { return f.text(f.last) }

// calls is the whole log since the last reset.
func (f *fake) calls() string { return f.text(f.log) }

// errs is what the stand-in's checks found (bounds, guards, barriers).
func (f *fake) errs() string { return f.text(f.errors) }

// params is the last launch's packed parameter buffer.
func (f *fake) params() []byte {
	buf := make([]byte, 4096)
	return buf[:f.lastParams(buf, int32(len(buf)))]
}

// assertClean fails the test if the stand-in's checks found anything.
func (f *fake) assertClean(t testing.TB) {
	t.Helper()
	if n := f.check(); n > 0 {
		t.Errorf("%d allocations had their guard bytes overwritten", n)
	}
	if e := f.errs(); e != "" {
		t.Errorf("the stand-in library reports:\n%s", e)
	}
}

// Indexes of fake.live.
const (
	liveAllocs = iota
	liveHostAllocs
	liveStreams
	liveEvents
	liveModules
	liveHandles
	liveCtxRefs
	liveContexts // primary contexts created so far
)

// liveNames names the counts of fake.live up to liveCtxRefs.
var liveNames = [...]string{"device allocations", "host allocations", "streams", "events", "modules", "cuBLAS handles", "context references"}

// counts returns the live-object counts of liveNames.
func (f *fake) counts() [len(liveNames)]int32 {
	var n [len(liveNames)]int32
	for i := range n {
		n[i] = f.live(int32(i))
	}
	return n
}

// buildFake compiles the stand-in into a new temporary folder and links it
// there as libcuda.so.1, libcublas.so.13, libcublasLt.so.13 and
// libnvrtc.so.13, and as the CUDA 12 libcublas.so.12, libcublasLt.so.12 and
// libnvrtc.so.12 (the same library: the tests check which file is chosen).
func buildFake() (string, error) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		return "", fmt.Errorf("no g++ to build the stand-in CUDA library (apt-get install g++): %v", err)
	}
	dir, err := os.MkdirTemp("", "glmkit-fakecuda-")
	if err != nil {
		return "", err
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		return "", err
	}
	gen := filepath.Join(dir, "kernels_emu.cpp")
	if err := os.WriteFile(gen, []byte(emuSource()), 0o644); err != nil {
		return "", err
	}
	lib := filepath.Join(dir, "libfakecuda.so")
	cmd := exec.Command(gxx, "-std=c++17", "-O1", "-g", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Wno-unused-function",
		"-I", testdata, "-o", lib, filepath.Join(testdata, "fakecuda.cpp"), gen)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the stand-in library: %v\n%s", err, out)
	}
	for _, n := range []string{"libcuda.so.1", "libcublas.so.13", "libcublasLt.so.13", "libnvrtc.so.13",
		"libcublas.so.12", "libcublasLt.so.12", "libnvrtc.so.12"} {
		if err := os.Symlink(lib, filepath.Join(dir, n)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// emuSource is the kernel program for the emulator: emu.h, the kernels,
// and for every kernel of kernelSigs an argument struct (whose layout the
// compiler computes: the kernel ABI), a call through a function pointer of
// exactly the signature kernelSigs gives (a mismatch with the source does
// not compile), and the table fakecuda.cpp looks kernels up in.
func emuSource() string {
	var b strings.Builder
	b.WriteString("#pragma GCC visibility push(hidden)\n#include \"emu.h\"\n#include <stddef.h>\n")
	b.WriteString(kernelSource())
	b.WriteString(`
struct emu_kernel {
	const char* name;
	void (*call)(const char* params);
	size_t args_size, args_end;
	int nparams;
	const size_t* offsets;
	const size_t* sizes;
};
`)
	var table strings.Builder
	for k := range numKernels {
		sig := kernelSigs[k]
		types := strings.Split(sig.params, ",")
		var fields, args, offs, sizes []string
		for i, ty := range types {
			ty = strings.TrimSpace(ty)
			types[i] = ty
			fields = append(fields, fmt.Sprintf("\t%s a%d;\n", ty, i))
			args = append(args, fmt.Sprintf("a.a%d", i))
			offs = append(offs, fmt.Sprintf("offsetof(args_%s, a%d)", sig.name, i))
			sizes = append(sizes, fmt.Sprintf("sizeof(%s)", ty))
		}
		last := len(types) - 1
		fmt.Fprintf(&b, "struct args_%s {\n%s};\n", sig.name, strings.Join(fields, ""))
		fmt.Fprintf(&b, "static void call_%s(const char* p) {\n\targs_%s a;\n\tmemcpy(&a, p, sizeof a);\n", sig.name, sig.name)
		fmt.Fprintf(&b, "\tvoid (*const fn)(%s) = %s;\n\tfn(%s);\n}\n", strings.Join(types, ", "), sig.name, strings.Join(args, ", "))
		fmt.Fprintf(&b, "static const size_t off_%s[] = {%s};\n", sig.name, strings.Join(offs, ", "))
		fmt.Fprintf(&b, "static const size_t size_%s[] = {%s};\n", sig.name, strings.Join(sizes, ", "))
		fmt.Fprintf(&table, "\t{\"%s\", call_%s, sizeof(args_%s), offsetof(args_%s, a%d) + sizeof(%s), %d, off_%s, size_%s},\n",
			sig.name, sig.name, sig.name, sig.name, last, types[last], len(types), sig.name, sig.name)
	}
	b.WriteString("#pragma GCC visibility pop\n")
	fmt.Fprintf(&b, "extern \"C\" __attribute__((visibility(\"default\"))) const emu_kernel emu_kernels[] = {\n%s};\n", table.String())
	fmt.Fprintf(&b, "extern \"C\" __attribute__((visibility(\"default\"))) const int emu_nkernels = %d;\n", numKernels)
	return b.String()
}
