package cuda

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/loader"
)

// updateCurve rewrites testdata/curve_small.json from the CPU backend.
var updateCurve = flag.Bool("update-curve", false, "recompute testdata/curve_small.json on the CPU (pure Go, float32; minutes)")

// resultsEnv names the folder where the GPU tests and benchmarks write
// their results as JSON (the acceptance script sets it).
const resultsEnv = "GLMKIT_RESULTS_DIR"

// curveRun is a training run whose loss curve the tests compare.
type curveRun struct {
	Preset string         `json:"preset"`
	Model  trainer.Config `json:"model"`
	Steps  int            `json:"steps"`
	Batch  int            `json:"batch"`
	MinLen int            `json:"min_len"`
	MaxLen int            `json:"max_len"`
	Data   int            `json:"data_batches"` // distinct batches, cycled
	Seed   uint64         `json:"seed"`
}

// smallCurve is the GPU acceptance run: the small preset (4 layers, hidden
// 256) over a 1024-token vocabulary, 300 steps of 8 rows of learnable
// text (motifText), dropout on.
var smallCurve = curveRun{Preset: "small", Steps: 300, Batch: 8, MinLen: 100, MaxLen: 140, Data: 32, Seed: 7}

// tinyCurve is the emulator's run.
var tinyCurve = curveRun{Preset: "tiny", Steps: 6, Batch: 3, MinLen: 16, MaxLen: 24, Data: 4, Seed: 7}

func (c curveRun) config(t testing.TB) trainer.Config {
	vocab := 1024
	if c.Preset == "tiny" {
		vocab = 64
	}
	cfg, err := trainer.Preset(c.Preset, vocab)
	if err != nil {
		t.Fatal(err)
	}
	if c.Preset == "tiny" {
		cfg.Hidden, cfg.Heads, cfg.MaxPos = 32, 4, 64
	}
	return cfg
}

// train runs c on be and returns the loss of every step.
func (c curveRun) train(t testing.TB, be trainer.Backend, steps int) []float64 {
	t.Helper()
	cfg := c.config(t)
	m, err := trainer.NewModel(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r := rand.New(rand.NewPCG(c.Seed, 1))
	batches := make([]loader.Batch, c.Data)
	for i := range batches {
		batches[i] = glmBatch(r, c.Batch, c.MinLen, c.MaxLen, cfg.Vocab, motifText)
	}
	tc := trainer.DefaultTrainConfig(c.Steps)
	tc.LR, tc.WarmupSteps, tc.MinLRRatio, tc.Seed = 5e-4, c.Steps/10, 0.1, c.Seed
	tc.Out, tc.LogEvery = t.TempDir(), 1
	var losses []float64
	stop := errors.New("stop")
	_, err = trainer.Train(context.Background(), tc, m, &trainer.SliceSource{Batches: batches, Loop: true}, nil,
		trainer.Hooks{OnLog: func(mt trainer.Metrics) error {
			losses = append(losses, mt.Loss)
			if mt.Step >= steps {
				return stop
			}
			return nil
		}})
	if err != nil && !errors.Is(err, stop) {
		t.Fatal(err)
	}
	return losses
}

// curveFile is testdata/curve_small.json.
type curveFile struct {
	Run     curveRun  `json:"run"`
	Backend string    `json:"backend"`
	Losses  []float64 `json:"losses"`
}

const curvePath = "testdata/curve_small.json"

// cpuCurveBackend is the CPU backend of the reference curve: OpenBLAS
// when installed (the committed curve was computed with it), else pure Go.
func cpuCurveBackend(t testing.TB) *cpu.Backend[float32] {
	be, err := cpu.New[float32](cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// TestCurveGolden recomputes the CPU reference curve with -update-curve,
// and otherwise checks the committed one: its run is smallCurve, and its
// first steps are what the CPU computes now (within float32 rounding: the
// curve may have been computed with OpenBLAS, this run may be pure Go).
func TestCurveGolden(t *testing.T) {
	if *updateCurve {
		be := cpuCurveBackend(t)
		run := smallCurve
		run.Model = run.config(t)
		losses := run.train(t, be, run.Steps)
		b, _ := json.MarshalIndent(curveFile{Run: run, Backend: be.Name(), Losses: losses}, "", " ")
		if err := os.WriteFile(curvePath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: loss %.4f → %.4f", curvePath, losses[0], losses[len(losses)-1])
		return
	}
	golden := readCurve(t)
	steps := 2
	if testing.Short() {
		steps = 1
	}
	got := smallCurve.train(t, cpuCurveBackend(t), steps)
	for i, l := range got {
		if math.Abs(l-golden.Losses[i]) > 1e-4*golden.Losses[i] {
			t.Errorf("step %d: the CPU computes loss %v; %s holds %v (rerun with -update-curve if the trainer changed on purpose)", i+1, l, curvePath, golden.Losses[i])
		}
	}
}

func readCurve(t testing.TB) curveFile {
	t.Helper()
	b, err := os.ReadFile(curvePath)
	if err != nil {
		t.Fatal(err)
	}
	var f curveFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	want := smallCurve
	want.Model = want.config(t)
	if f.Run != want || len(f.Losses) != want.Steps {
		t.Fatalf("%s is for %+v with %d losses; the test runs %+v (rerun with -update-curve)", curvePath, f.Run, len(f.Losses), want)
	}
	return f
}

// TestTrainCurve trains on the CUDA backend and compares the loss curve
// with the CPU's on the same data, weights and dropout masks. On a GPU it
// runs smallCurve (300 steps) against testdata/curve_small.json; on the
// emulator a few steps of tinyCurve against a live CPU run.
func TestTrainCurve(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		if !tg.gpu {
			want := tinyCurve.train(t, cpuCurveBackend(t), tinyCurve.Steps)
			got := tinyCurve.train(t, be, tinyCurve.Steps)
			for i := range want {
				if d := math.Abs(got[i] - want[i]); !(d <= modelTol(tg)*want[i]) {
					t.Errorf("step %d: loss %.6f; the CPU's %.6f", i+1, got[i], want[i])
				}
			}
			t.Logf("losses %.5f; the CPU's %.5f", got, want)
			return
		}
		golden := readCurve(t)
		got := smallCurve.train(t, be, smallCurve.Steps)
		want := golden.Losses
		if len(got) != len(want) {
			t.Fatalf("%d steps; want %d", len(got), len(want))
		}
		// per step early on, then windows of 25 steps: the runs may drift
		// apart in the rounding, not in the trend
		early, window := 2e-3, 5e-3
		if !tg.fp32 {
			early, window = 2e-2, 3e-2
		}
		for i := range 10 {
			if d := math.Abs(got[i] - want[i]); !(d <= early*want[i]) {
				t.Errorf("step %d: loss %.5f; the CPU's %.5f", i+1, got[i], want[i])
			}
		}
		var report []string
		for lo := 0; lo < len(want); lo += 25 {
			hi := min(lo+25, len(want))
			var g, w float64
			for i := lo; i < hi; i++ {
				g += got[i] / float64(hi-lo)
				w += want[i] / float64(hi-lo)
			}
			report = append(report, fmt.Sprintf("steps %3d-%3d: %.4f vs CPU %.4f", lo+1, hi, g, w))
			if math.Abs(g-w) > window*w {
				t.Errorf("steps %d-%d: mean loss %.5f; the CPU's %.5f", lo+1, hi, g, w)
			}
		}
		for _, l := range report {
			t.Log(l)
		}
		if got[len(got)-1] > 0.85*got[0] {
			t.Errorf("the loss fell only from %.4f to %.4f", got[0], got[len(got)-1])
		}
		writeResult(t, fmt.Sprintf("curve-%s.json", filepath.Base(tg.name)), map[string]any{
			"target": tg.name, "backend": be.Name(), "run": golden.Run, "losses": got, "cpu_losses": want, "cpu_backend": golden.Backend,
		})
	})
}

// writeResult writes v as JSON into $GLMKIT_RESULTS_DIR, if set.
func writeResult(t testing.TB, name string, v any) {
	dir := os.Getenv(resultsEnv)
	if dir == "" {
		return
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Error(err)
		return
	}
	// atomically: the acceptance script may be killed at any moment
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Error(err)
	}
}
