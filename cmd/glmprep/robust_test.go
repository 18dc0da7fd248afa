package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/sharding"
)

// Process-level tests of issue 11 with the glmprep binary (this test
// binary run as glmprep): kills at any point of build and run-task are
// finished by --resume with the bytes of an uninterrupted build and no
// temporary left; SIGINT and SIGTERM stop a command within a second with
// what was kept and the command that continues; compressed and JSON Lines
// stdin; peak memory of a long record; no stack trace from bad input.

// noTemps fails if any glmkit temporary is left under dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), atomicfile.Prefix) {
			t.Errorf("temporary %s left behind", p)
		}
		return nil
	})
}

// waitKilled waits for cmd and checks SIGKILL ended it.
func waitKilled(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the process was not killed: %v\n%s", cmd.ProcessState, out)
	}
}

func smallInputs(t *testing.T) (string, []string) {
	src := t.TempDir()
	var a, b bytes.Buffer
	for i := range 1500 {
		fmt.Fprintf(&a, "Document %d of the first input. It has two sentences, this is the second.\n", i)
		fmt.Fprintf(&b, "{\"text\": \"record %d of the second input: %x\"}\n", i, i*7919)
	}
	os.WriteFile(filepath.Join(src, "a.txt"), a.Bytes(), 0o644)
	os.WriteFile(filepath.Join(src, "b.jsonl"), b.Bytes(), 0o644)
	return src, []string{"--input", filepath.Join(src, "a.txt"), "--input", filepath.Join(src, "b.jsonl"),
		"--tokenizer", "gpt2", "--shard-rows", "10", "--seq-len", "128", "--quiet", "--workers", "2"}
}

func TestKillAnywhereThenResume(t *testing.T) {
	_, flags := smallInputs(t)
	ref := t.TempDir()
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)
	want := readDir(t, ref)
	for _, point := range []string{"shard-written:0/0", "shard-committed:0/3", "record-written:0/3", "shard-committed:1/2"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			cmd, out := glmprepProcess(t, []string{"GLMKIT_TEST_CRASH=" + point}, append([]string{"build", "--out", dir}, flags...)...)
			waitKilled(t, cmd, out)
			if _, err := os.Stat(filepath.Join(dir, sharding.ManifestName)); err == nil {
				t.Fatal("a killed build left a manifest")
			}
			_, se, err := glmprep(t, append([]string{"build", "--out", dir, "--resume"}, flags...)...)
			if err != nil {
				t.Fatalf("resume: %v\n%s", err, se)
			}
			glmtest.SameFiles(t, "build resumed after a kill at "+point, want, readDir(t, dir))
			noTemps(t, dir)
		})
	}
	// run-task, killed between commit and record, then run again and
	// merged: the same bytes.
	dir := t.TempDir()
	mustGlmprep(t, append([]string{"plan", "--out", dir}, flags...)...)
	for task, point := range []string{"shard-committed:0/2", "record-written:1/1"} {
		cmd, out := glmprepProcess(t, []string{"GLMKIT_TEST_CRASH=" + point}, "run-task", dir, "--task", fmt.Sprint(task))
		waitKilled(t, cmd, out)
		mustGlmprep(t, "run-task", dir, "--task", fmt.Sprint(task))
	}
	mustGlmprep(t, "merge", dir)
	got := readDir(t, dir)
	glmtest.SameFiles(t, "merged build of killed tasks run again", want, got)
	noTemps(t, dir)
}

// interrupted runs glmprep, sends sig once it has run for after (or once
// ready says so), and returns its output and how long it took to exit.
func interrupted(t *testing.T, sig syscall.Signal, after time.Duration, ready func() bool, stdin io.Reader, env []string, args ...string) (string, int, time.Duration) {
	t.Helper()
	cmd := glmprepCommand(t, env, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &out, stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	time.Sleep(after)
	for ready != nil && !ready() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("never ready: %s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 30 s after %v: %s", sig, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode(), time.Since(start)
}

// endlessLine reads as one line of text that never ends.
type endlessLine struct{}

func (endlessLine) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// The bound checked is loose (the machine is shared); the time taken is
// logged.
const stopBound = 3 * time.Second

func TestSignalsStopEveryCommand(t *testing.T) {
	src, flags := smallInputs(t)
	t.Run("build reading an endless line from stdin", func(t *testing.T) {
		out, code, took := interrupted(t, syscall.SIGINT, 1500*time.Millisecond, nil, endlessLine{}, nil,
			"build", "--input", "-", "--out", t.TempDir(), "--max-doc-bytes", "1MiB", "--quiet")
		t.Logf("exit %d after %v: %s", code, took, out)
		if took > stopBound || code != 130 || !strings.Contains(out, "interrupted by SIGINT") || strings.Contains(out, "goroutine ") {
			t.Errorf("exit %d after %v: %s", code, took, out)
		}
	})
	t.Run("build, then the command it prints", func(t *testing.T) {
		ref := t.TempDir()
		mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)
		dir := t.TempDir()
		ready := func() bool { _, err := os.Stat(filepath.Join(dir, "tasks", "000000.progress.json")); return err == nil }
		out, code, took := interrupted(t, syscall.SIGTERM, 0, ready, nil, []string{"GLMKIT_TEST_COMMIT_DELAY=100ms"},
			append([]string{"build", "--out", dir}, flags...)...)
		t.Logf("exit %d after %v: %s", code, took, out)
		if took > stopBound || code != 143 || !strings.Contains(out, "interrupted by SIGTERM") || !strings.Contains(out, "committed shards") {
			t.Fatalf("exit %d after %v: %s", code, took, out)
		}
		_, line, ok := strings.Cut(out, "continue with:\n  ")
		if !ok || !strings.Contains(line, "--resume") {
			t.Fatalf("no command to continue: %s", out)
		}
		args := strings.Fields(strings.TrimSpace(line))[1:] // as the shell would split it (no quotes here)
		if _, se, err := glmprep(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, se)
		}
		glmtest.SameFiles(t, "build continued with the printed command", readDir(t, ref), readDir(t, dir))
		noTemps(t, dir)
	})
	t.Run("plan hashing a big file", func(t *testing.T) {
		big := filepath.Join(t.TempDir(), "sparse.txt")
		f, _ := os.Create(big)
		f.WriteString(strings.Repeat("A line of text before the hole.\n", 256)) // text where glmprep looks for its encoding
		f.Truncate(16 << 30)                                                    // sparse: reads as zeros, fast, but long to hash
		f.Close()
		out, code, took := interrupted(t, syscall.SIGINT, 700*time.Millisecond, nil, nil, nil, "plan", "--input", big, "--out", t.TempDir(), "--quiet")
		t.Logf("exit %d after %v: %s", code, took, out)
		if took > stopBound || code != 130 || !strings.Contains(out, "run the same command again") {
			t.Errorf("exit %d after %v: %s", code, took, out)
		}
	})
	t.Run("run-task", func(t *testing.T) {
		dir := t.TempDir()
		mustGlmprep(t, append([]string{"plan", "--out", dir}, flags...)...)
		ready := func() bool { _, err := os.Stat(filepath.Join(dir, "tasks", "000000.progress.json")); return err == nil }
		out, code, took := interrupted(t, syscall.SIGINT, 0, ready, nil, []string{"GLMKIT_TEST_COMMIT_DELAY=100ms"}, "run-task", dir, "--task", "0")
		t.Logf("exit %d after %v: %s", code, took, out)
		if took > stopBound || code != 130 || !strings.Contains(out, "run-task "+dir+" --task 0") {
			t.Errorf("exit %d after %v: %s", code, took, out)
		}
	})
	_ = src
}

// stdinBuild runs a build of what is on stdin.
func stdinBuild(t *testing.T, data []byte, args ...string) (string, string, error) {
	t.Helper()
	out := t.TempDir()
	cmd := glmprepCommand(t, nil, append([]string{"build", "--input", "-", "--out", out, "--tokenizer", "gpt2", "--seq-len", "64"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	b, err := cmd.CombinedOutput()
	return out, string(b), err
}

func TestStdinFormats(t *testing.T) {
	var text, jsonl bytes.Buffer
	for i := range 400 {
		fmt.Fprintf(&text, "line %d of standard input, in plain text.\n", i)
		fmt.Fprintf(&jsonl, "{\"text\": \"line %d of standard input, in plain text.\", \"id\": %d}\n", i, i)
	}
	compress := func(name string, args ...string) []byte {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed", name)
		}
		cmd := exec.Command(name, args...)
		cmd.Stdin = bytes.NewReader(text.Bytes())
		b, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	refDir, _, err := stdinBuild(t, text.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := sharding.ReadManifest(refDir)
	for name, data := range map[string][]byte{
		"zstd":  compress("zstd", "-q", "-c"),
		"pzstd": compress("pzstd", "-q", "-c"),
		"gzip":  compress("gzip", "-c"),
		"bzip2": compress("bzip2", "-c"),
		// Zero padding after the stream: found once the stream fails to
		// continue, in the spool.
		"bzip2, zero padded": append(compress("bzip2", "-c"), make([]byte, 100)...),
	} {
		dir, out, err := stdinBuild(t, data)
		if err != nil {
			t.Fatalf("%s on stdin: %v\n%s", name, err, out)
		}
		m, _ := sharding.ReadManifest(dir)
		if m.Totals != ref.Totals || m.Inputs[0].Size != int64(len(data)) {
			t.Errorf("%s on stdin: totals %+v (input %d bytes), plain text %+v", name, m.Totals, m.Inputs[0].Size, ref.Totals)
		}
	}
	// JSON Lines on stdin is recognised, and said so; with --format jsonl
	// it is read as such without a word.
	dir, out, err := stdinBuild(t, jsonl.Bytes())
	if err != nil || !strings.Contains(out, "reading it as JSON Lines") {
		t.Fatalf("JSON Lines on stdin: %v\n%s", err, out)
	}
	if m, _ := sharding.ReadManifest(dir); m.Totals != ref.Totals {
		t.Errorf("JSON Lines on stdin: totals %+v, want %+v", m.Totals, ref.Totals)
	}
	if _, out, err := stdinBuild(t, jsonl.Bytes(), "--format", "jsonl"); err != nil || strings.Contains(out, "warning") {
		t.Errorf("--format jsonl: %v\n%s", err, out)
	}
	// Text that looks like JSON but is not JSON Lines: read as text, with
	// a warning that names the flag.
	if _, out, err := stdinBuild(t, []byte("{ this is not json, a config dump perhaps\nmore text\n")); err != nil || !strings.Contains(out, "--format jsonl") {
		t.Errorf("JSON-looking text: %v\n%s", err, out)
	}
}

// Peak memory is at most twice the longest record plus a constant (the
// README's table has the figure for a 200 MB line).
func TestPeakMemoryOfALongRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const size = 60 << 20
	words := []string{"river ", "stone ", "house ", "quiet ", "number ", "system ", "alpha ", "gamma "}
	var b bytes.Buffer
	b.WriteString("a short line first.\n")
	for i := 0; b.Len() < size; i++ {
		b.WriteString(words[(i*7+i/3)%len(words)])
	}
	b.WriteString("\nand a short line after.\n")
	in := filepath.Join(t.TempDir(), "long.txt")
	os.WriteFile(in, b.Bytes(), 0o644)
	cmd := glmprepCommand(t, nil, "build", "--input", in, "--out", t.TempDir(), "--quiet", "--max-doc-bytes", "64MiB")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	peak, ok := glmtest.PeakRSS(cmd.ProcessState)
	if !ok {
		t.Skip("this system does not report a process's peak memory")
	}
	const constant = 120 << 20
	t.Logf("peak RSS %.0f MB for a %d MB record (bound: 2 × record + %d MB)", float64(peak)/1e6, size>>20, constant>>20)
	if peak > 2*size+constant {
		t.Errorf("peak RSS %d MB, over twice the %d MB record plus %d MB", peak>>20, size>>20, constant>>20)
	}
}

// No input, flag or damaged build file makes glmprep panic or print a
// stack trace: every error names the file.
func TestNoStackTraces(t *testing.T) {
	src := t.TempDir()
	bad := map[string][]byte{
		"trunc.gz":     {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2},
		"trunc.zst":    {0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x10},
		"bad.parquet":  []byte("PAR1 this is not parquet at all PAR1"),
		"binary.jsonl": {0, 1, 2, 3, 0xff, '{', '\n', '}', '\n'},
		"deep.jsonl":   append(bytes.Repeat([]byte("["), 100000), '\n'),
	}
	for n, b := range bad {
		os.WriteFile(filepath.Join(src, n), b, 0o644)
	}
	build := t.TempDir()
	mustGlmprep(t, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", build, "--quiet")
	os.WriteFile(filepath.Join(build, "plan.json"), []byte(`{"format_version": 1, "tasks": [{"input": 5}]}`), 0o644)
	for _, args := range [][]string{
		{"build", "--input", filepath.Join(src, "trunc.gz"), "--out", t.TempDir(), "--quiet"},
		{"build", "--input", filepath.Join(src, "trunc.zst"), "--out", t.TempDir(), "--quiet"},
		{"build", "--input", filepath.Join(src, "bad.parquet"), "--out", t.TempDir(), "--quiet"},
		{"build", "--input", filepath.Join(src, "binary.jsonl"), "--out", t.TempDir(), "--quiet"},
		{"build", "--input", filepath.Join(src, "deep.jsonl"), "--out", t.TempDir(), "--quiet"},
		{"run-task", build, "--task", "0"},
		{"merge", build},
		{"build", "--input", src, "--out", build, "--resume", "--quiet"},
		{"build", "--input", src, "--out", build, "--force", "--quiet"},
	} {
		out, _ := glmprepCommand(t, nil, args...).CombinedOutput()
		if bytes.Contains(out, []byte("goroutine ")) || bytes.Contains(out, []byte("panic")) {
			t.Errorf("glmprep %s:\n%s", strings.Join(args, " "), out)
		}
	}
}
