package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/internal/testhooks"
	"github.com/glmkit/glmkit/trainer"
)

// hookedGlmtrain is glmtrain built with the hooks of internal/testhooks on,
// so the tests can kill and interrupt a real training process.
var hookedGlmtrain = testhooks.NewBinary("glmtrain")

func TestMain(m *testing.M) { testhooks.Main(m, hookedGlmtrain) }

// glmtrainProcess starts that glmtrain with args, its environment this
// process's plus env.
func glmtrainProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, err := hookedGlmtrain.Command(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// sameCheckpoint compares what a checkpoint holds (config.json names the
// run's --out, so it is left out).
func sameCheckpoint(t *testing.T, a, b string) {
	t.Helper()
	for _, f := range []string{"model.safetensors", "optimizer.safetensors", "trainer_state.json"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between %s and %s (%v, %v)", f, a, b, err1, err2)
		}
	}
}

func noTrainTemps(t *testing.T, out string) {
	t.Helper()
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), atomicfile.Prefix) {
			t.Errorf("temporary %s left behind", p)
		}
		return nil
	})
}

// After SIGKILL at any moment of training, --resume ends with the
// checkpoint an uninterrupted run writes, bitwise, and no temporary left.
func TestTrainKilledThenResumed(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	common := []string{"train", "--data", data, "--preset", "tiny", "--steps", "8", "--batch", "4", "--lr", "3e-3", "--quiet",
		"--backend", "cpu", "--checkpoint-every", "2", "--threads", "1"}
	ref := t.TempDir()
	if _, err := glmtrain(t, append(common, "--out", ref)...); err != nil {
		t.Fatal(err)
	}
	final := trainer.CheckpointDir(ref, 8)
	for _, point := range []string{"checkpoint-written:2", "checkpoint-written:4", "checkpoint-written:8", "timed"} {
		t.Run(point, func(t *testing.T) {
			out := t.TempDir()
			env := []string{"GLMKIT_TEST_CRASH=" + point}
			cmd, buf := glmtrainProcess(t, env, append(common, "--out", out)...)
			if point == "timed" {
				for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
					if ck, _ := trainer.LatestCheckpoint(out); ck != "" || time.Now().After(deadline) {
						break
					}
				}
				time.Sleep(15 * time.Millisecond)
				cmd.Process.Signal(syscall.SIGKILL)
			}
			cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				if point != "timed" {
					t.Fatalf("not killed: %v\n%s", cmd.ProcessState, buf)
				}
				t.Logf("the run finished before the kill")
			}
			if _, err := glmtrain(t, append(common, "--out", out, "--resume")...); err != nil {
				t.Fatal(err)
			}
			sameCheckpoint(t, final, trainer.CheckpointDir(out, 8))
			noTrainTemps(t, out)
			if ms := readMetrics(t, out); len(ms) != 8 {
				t.Errorf("%d metric lines after the resume, want one per step (8)", len(ms))
			}
		})
	}
}

// SIGINT stops training within a second, with a checkpoint of the last
// complete step and the command that continues, which ends where an
// uninterrupted run ends.
func TestTrainInterrupted(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	common := []string{"train", "--data", data, "--preset", "tiny", "--steps", "24", "--batch", "4", "--quiet",
		"--backend", "cpu", "--checkpoint-every", "6", "--threads", "1"}
	ref := t.TempDir()
	if _, err := glmtrain(t, append(common, "--out", ref)...); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd, buf := glmtrainProcess(t, nil, append(common, "--out", out)...)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if ck, _ := trainer.LatestCheckpoint(out); ck != "" || time.Now().After(deadline) {
			break
		}
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	took := time.Since(start)
	msg := buf.String()
	t.Logf("exit %d after %v: %s", cmd.ProcessState.ExitCode(), took, msg)
	if cmd.ProcessState.ExitCode() == 0 {
		t.Skip("the run finished before the signal")
	}
	if took > 3*time.Second || cmd.ProcessState.ExitCode() != 130 || !strings.Contains(msg, "interrupted by SIGINT") || !strings.Contains(msg, "ckpt-") {
		t.Fatalf("exit %d after %v: %s", cmd.ProcessState.ExitCode(), took, msg)
	}
	_, line, ok := strings.Cut(msg, "continue with:\n  ")
	if !ok || !strings.Contains(line, "--resume") {
		t.Fatalf("no command to continue: %s", msg)
	}
	args := strings.Fields(strings.TrimSpace(line))[1:]
	if _, err := glmtrain(t, args...); err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, trainer.CheckpointDir(ref, 24), trainer.CheckpointDir(out, 24))
	noTrainTemps(t, out)
}
