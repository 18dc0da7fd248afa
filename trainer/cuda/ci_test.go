// The GPU CI script is bash, and these tests signal its processes: Unix only.

//go:build unix

package cuda

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of .ci/gpu, the GPU acceptance run, on a machine without a
// GPU: a dry run with the real test binary (this one), and runs against
// testdata/fakegpu, a stand-in for the test binary (and for PyTorch and
// compute-sanitizer) that answers as a GPU machine would: every stage,
// the deadline, and a kill in the middle of a stage.

// scriptResults is what the script writes to results.json.
type scriptResults struct {
	Meta struct {
		DryRun      bool    `json:"dry_run"`
		Final       bool    `json:"final"`
		Exit        *int    `json:"exit"`
		Interrupted string  `json:"interrupted"`
		Elapsed     float64 `json:"elapsed_s"`
		Deadline    int     `json:"deadline_s"`
	} `json:"meta"`
	Stages []struct {
		Name    string  `json:"name"`
		Status  string  `json:"status"`
		Reason  string  `json:"reason"`
		Seconds float64 `json:"seconds"`
		Timeout int     `json:"timeout_s"`
	} `json:"stages"`
	Results map[string]json.RawMessage `json:"results"`
}

// stage returns "status: reason" of the named stage.
func (r *scriptResults) stage(name string) string {
	for _, s := range r.Stages {
		if s.Name == name {
			if s.Reason == "" {
				return s.Status
			}
			return s.Status + ": " + s.Reason
		}
	}
	return "missing"
}

var scriptStages = []string{"preflight", "bench", "model", "ops", "torch", "sanitizer"}

// expect checks each named stage's "status: reason" against the start
// given; "…" as a key stands for every stage not named.
func (r *scriptResults) expect(t *testing.T, want map[string]string) {
	t.Helper()
	for _, s := range scriptStages {
		w, ok := want[s]
		if !ok {
			if w, ok = want["…"]; !ok {
				continue
			}
		}
		if got := r.stage(s); !strings.HasPrefix(got, w) {
			t.Errorf("stage %s: %s; want %s…", s, got, w)
		}
	}
}

// gpuScript prepares a run of .ci/gpu with args (the results folder is
// appended) in an environment without the variables that would change it,
// plus env.
func gpuScript(t *testing.T, args []string, env ...string) (cmd *exec.Cmd, res string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to run .ci/gpu")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	res = t.TempDir()
	cmd = exec.Command(filepath.Join(root, ".ci", "gpu"), append(args, res)...)
	cmd.Dir = root
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "OUT" || k == "CUDA_VISIBLE_DEVICES" || strings.HasPrefix(k, "GLM") || strings.HasPrefix(k, "FAKE_") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	return cmd, res
}

// fakeGPU returns a folder holding the stand-in test binary as cuda.test,
// and the environment that puts its PyTorch and compute-sanitizer first;
// the stand-in records its process ids in pids.
func fakeGPU(t *testing.T) (bin string, env []string, pids string) {
	t.Helper()
	fake, err := filepath.Abs("testdata/fakegpu")
	if err != nil {
		t.Fatal(err)
	}
	bin = t.TempDir()
	if err := os.Symlink(filepath.Join(fake, "cuda.test.sh"), filepath.Join(bin, "cuda.test")); err != nil {
		t.Fatal(err)
	}
	pids = filepath.Join(t.TempDir(), "pids")
	env = []string{"PATH=" + fake + string(os.PathListSeparator) + os.Getenv("PATH"), "GLMKIT_PYTHON=" + filepath.Join(fake, "fakepython"), "FAKE_PIDS=" + pids}
	return bin, env, pids
}

func readResults(t *testing.T, res string) *scriptResults {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(res, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r scriptResults
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("results.json: %v\n%s", err, b)
	}
	return &r
}

// checkOut checks that the results folder holds the script's three files
// (at most 8 come back from the device machine), that the log tarball has
// the logs, and that summary.md has the stage table.
func checkOut(t *testing.T, res string, logs ...string) string {
	t.Helper()
	ents, err := os.ReadDir(res)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "logs.tar.gz results.json summary.md" {
		t.Errorf("the results folder holds %v; want logs.tar.gz results.json summary.md", names)
	}
	out, err := exec.Command("tar", "-tzf", filepath.Join(res, "logs.tar.gz")).Output()
	if err != nil {
		t.Fatalf("logs.tar.gz: %v", err)
	}
	for _, l := range logs {
		if !strings.Contains(string(out), "logs/"+l+"\n") {
			t.Errorf("logs.tar.gz lacks logs/%s:\n%s", l, out)
		}
	}
	sum, err := os.ReadFile(filepath.Join(res, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scriptStages {
		if !strings.Contains(string(sum), "| "+s+" | ") {
			t.Errorf("summary.md has no row for stage %s:\n%s", s, sum)
		}
	}
	return string(sum)
}

// TestGPUScriptDryRun runs `.ci/gpu --dry-run` with this test binary:
// the GPUs hidden, the preflight finds none, every other stage is
// "skipped: no GPU", the results are written, and the exit status is 0,
// within a minute.
func TestGPUScriptDryRun(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "cuda.test")); err != nil {
		t.Fatal(err)
	}
	cmd, res := gpuScript(t, []string{"--dry-run", bin})
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the dry run failed: %v\n%s", err, out)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the dry run took over a minute:\n%s", out)
	}
	r := readResults(t, res)
	if !r.Meta.DryRun || !r.Meta.Final || r.Meta.Exit == nil || *r.Meta.Exit != 0 {
		t.Errorf("meta %+v; want a final dry run with exit 0", r.Meta)
	}
	r.expect(t, map[string]string{"preflight": "passed: no GPU, as a dry run wants", "…": "skipped: no GPU"})
	checkOut(t, res, "preflight.log", "preflight-tests.log", "env.txt")
}

// TestGPUScriptStages runs .ci/gpu against the stand-in GPU: with
// everything passing (an op test that fails only in the shared process is
// rerun alone and passes); with failures (an op test that fails alone too,
// a sanitizer that refuses the device, no CUDA PyTorch); with a backend
// that does not start (only PyTorch runs); and without a GPU.
func TestGPUScriptStages(t *testing.T) {
	t.Parallel()
	t.Run("pass", func(t *testing.T) {
		t.Parallel()
		bin, env, _ := fakeGPU(t)
		cmd, res := gpuScript(t, []string{bin}, append(env, "FAKE_FLAKY=TestDropout/gpu/bf16")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		r := readResults(t, res)
		r.expect(t, map[string]string{"…": "passed"})
		var ops struct{ Tests map[string]string }
		json.Unmarshal(r.Results["optests"], &ops)
		if got := ops.Tests["TestDropout/gpu/bf16"]; got != "failed or did not run in the shared process, passed alone" || ops.Tests["TestEncoder/gpu/fp32"] != "pass" {
			t.Errorf("op tests %v", ops.Tests)
		}
		for _, k := range []string{"preflight", "bench-base", "bench-large", "gemm", "copy", "curve-bf16", "torch-base-sdpa", "sanitizer"} {
			if len(r.Results[k]) == 0 {
				t.Errorf("results.json lacks %s", k)
			}
		}
		sum := checkOut(t, res, "bench.log", "model.log", "ops.log", "torch.log", "sanitizer.log")
		for _, want := range []string{"# .ci/gpu on Fake H200", "| base | 32×512 | 4100 | 165,890 |", "| 150,000 | 210,000 | 0.79 |",
			"| attention forward | 12 | 30.50 | 23.0% |", "| base | qkv forward | 2304×16384×768 | 612 |", "pinned host to device 52.1 GB/s",
			"- gpu/bf16: loss 6.900 → 5.200", "TestDropout/gpu/bf16: failed or did not run in the shared process, passed alone",
			"- memcheck: passed; ERROR SUMMARY: 0 errors", "parameter layout confirmed by the driver for 25 of 25"} {
			if !strings.Contains(sum, want) {
				t.Errorf("summary.md lacks %q:\n%s", want, sum)
			}
		}
	})
	t.Run("failures", func(t *testing.T) {
		t.Parallel()
		bin, env, _ := fakeGPU(t)
		env[1] = "GLMKIT_PYTHON=" // PyTorch: whatever this machine has, without CUDA
		cmd, res := gpuScript(t, []string{bin}, append(env, "FAKE_BROKEN=TestRows/gpu/fp32", "FAKE_SANITIZER=unsupported")...)
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit %v; want 1", err)
		}
		r := readResults(t, res)
		r.expect(t, map[string]string{
			"…":         "passed",
			"ops":       "failed: 1 of 20 op test targets failed alone",
			"torch":     "not run: no CUDA PyTorch (",
			"sanitizer": "not run: the device is not supported by compute-sanitizer",
		})
		if r.Meta.Exit == nil || *r.Meta.Exit != 1 {
			t.Errorf("meta %+v; want exit 1", r.Meta)
		}
		if sum := checkOut(t, res); !strings.Contains(sum, "- TestRows/gpu/fp32: failed alone too: ops_test.go:12: relative error 0.5 > 1e-05") {
			t.Errorf("summary.md lacks the failed op test:\n%s", sum)
		}
	})
	for _, c := range []struct {
		name, env, what string
		want            map[string]string
	}{
		{"backend broken", "FAKE_NONEW=1", "a backend that does not start", map[string]string{
			"preflight": "failed: the backend did not start: bench_test.go:636: New (cycle 1): cuda: kernels for sm_90: no image loaded",
			"torch":     "passed",
			"…":         "skipped: the backend did not start in preflight",
		}},
		{"no gpu", "FAKE_NOGPU=1", "no GPU without --dry-run", map[string]string{"preflight": "failed: no GPU", "…": "skipped: no GPU"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bin, env, _ := fakeGPU(t)
			cmd, res := gpuScript(t, []string{bin}, append(env, c.env)...)
			if err := cmd.Run(); err == nil {
				t.Errorf("%s: exit 0; want a failure", c.what)
			}
			readResults(t, res).expect(t, c.want)
		})
	}
}

// TestGPUScriptDeadline gives .ci/gpu a 20-second deadline with the
// benchmark hanging: its limit is cut to what is left, it times out, and
// the stages after it are skipped for lack of time.
func TestGPUScriptDeadline(t *testing.T) {
	t.Parallel()
	bin, env, pids := fakeGPU(t)
	cmd, res := gpuScript(t, []string{"--deadline", "20", bin}, append(env, "FAKE_HANG=bench")...)
	t0 := time.Now()
	err := cmd.Run()
	took := time.Since(t0)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit %v; want 1", err)
	}
	r := readResults(t, res)
	r.expect(t, map[string]string{"preflight": "passed", "bench": "timed out", "…": "skipped: out of time"})
	for _, s := range r.Stages {
		if s.Name == "bench" && (s.Timeout > 18 || s.Timeout < 2) {
			t.Errorf("bench: %+v; want its limit cut to the deadline", s)
		}
	}
	// Without the deadline the hanging bench stage alone would run its
	// 150 s limit; the slack is for a busy 2-core machine, where the
	// script's own steps are slow.
	if took > 90*time.Second {
		t.Errorf("the run took %v with a deadline of 20 s", took)
	}
	checkGone(t, pids)
}

// TestGPUScriptKilled stops .ci/gpu in the middle of the benchmark: with
// SIGTERM the trap ends the stage's processes and writes the final
// results (the stage interrupted, the rest not run); with SIGKILL the
// results written when the stage started are there.
func TestGPUScriptKilled(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			bin, env, pids := fakeGPU(t)
			cmd, res := gpuScript(t, []string{bin}, append(env, "FAKE_HANG=bench")...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// wait for the stage's process to hang
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(readFile(pids), "\n") || !strings.Contains(readFile(filepath.Join(res, "results.json")), `"running"`) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatal("the benchmark stage did not start within a minute")
				}
				time.Sleep(50 * time.Millisecond)
			}
			// the benchmark's process is the second: the preflight's came first
			for strings.Count(readFile(pids), "\n") < 2 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			r := readResults(t, res)
			if sig == syscall.SIGKILL {
				killStrays(t, pids)
				if r.Meta.Final || r.stage("preflight") != "passed: GPU Fake H200, sm_90; the backend starts twice and its GEMMs are right" ||
					r.stage("bench") != "running" || r.stage("model") != "pending" {
					t.Errorf("after SIGKILL: meta %+v, stages %+v", r.Meta, r.Stages)
				}
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 143 {
				t.Errorf("exit %v; want 143", err)
			}
			if !r.Meta.Final || r.Meta.Interrupted != "TERM" {
				t.Errorf("meta %+v; want final, interrupted by TERM", r.Meta)
			}
			r.expect(t, map[string]string{"preflight": "passed", "bench": "interrupted: SIGTERM after ", "…": "not run: interrupted (SIGTERM)"})
			checkOut(t, res, "preflight.log", "bench.log")
			checkGone(t, pids)
		})
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// stubPIDs returns the process ids the stand-in recorded.
func stubPIDs(pids string) []int {
	var out []int
	for _, f := range strings.Fields(readFile(pids)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// checkGone checks that no process of the stand-in outlived the script.
func checkGone(t *testing.T, pids string) {
	t.Helper()
	for _, pid := range stubPIDs(pids) {
		for i := 0; syscall.Kill(pid, 0) == nil; i++ {
			if i == 50 {
				t.Errorf("process %d of the stage outlived the script", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// killStrays ends what a SIGKILLed script left running: each stand-in
// process's group (the stage's time limit and the stand-in).
func killStrays(t *testing.T, pids string) {
	t.Helper()
	for _, pid := range stubPIDs(pids) {
		if pg, err := syscall.Getpgid(pid); err == nil && pg > 1 && pg != syscall.Getpgrp() {
			syscall.Kill(-pg, syscall.SIGKILL)
		}
	}
}
