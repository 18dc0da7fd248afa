package cuda

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
)

// modelConfig is a model with every part present (two layers, four heads,
// dropout) small enough for the emulator.
var modelConfig = trainer.Config{Layers: 2, Hidden: 32, Heads: 4, Vocab: 97, MaxPos: 64, HiddenDropout: 0.1, AttentionDropout: 0.1}

// modelTol is the whole model's tolerance: the op tolerances compound over
// the layers (each bf16 GEMM rounds its operands).
func modelTol(tg target) float64 {
	if tg.fp32 {
		return 1e-4
	}
	return 3e-2
}

// TestModel runs the whole model's forward and backward pass (a padded
// batch of token and document rows, dropout on) on the CUDA backend and on
// the CPU's float64 oracle from the same weights, and compares the loss and
// every parameter's gradient. A second pass must give the same gradients
// bit for bit (no atomics anywhere).
func TestModel(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		cfg := modelConfig
		ref, err := cpu.New[float64](cpu.Options{BLAS: "off", Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		mg, err := trainer.NewModel(cfg, be)
		if err != nil {
			t.Fatal(err)
		}
		defer mg.Close()
		mc, err := trainer.NewModel(cfg, ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Init(3); err != nil {
			t.Fatal(err)
		}
		host, err := mc.ParamsHost()
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		for i := range host { // larger than GLM's 0.02, so every path carries signal
			host[i] += float32(0.1 * r.NormFloat64())
		}
		if err := mg.SetParams(host); err != nil {
			t.Fatal(err)
		}
		if err := mc.SetParams(host); err != nil {
			t.Fatal(err)
		}
		b := glmBatch(rand.New(rand.NewPCG(5, 5)), 4, 20, 40, cfg.Vocab, randomText)
		pass := trainer.Pass{Train: true, Seed: 9, Step: 4, Micro: 1}
		run := func(m *trainer.Model) (trainer.Loss, []float32) {
			l, err := m.Forward(&b, pass)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.ZeroGrad(); err != nil {
				t.Fatal(err)
			}
			if err := m.Backward(1 / float64(l.Tokens)); err != nil {
				t.Fatal(err)
			}
			g := make([]float32, m.NumParams())
			if err := m.Backend().Download(g, m.Grads()); err != nil {
				t.Fatal(err)
			}
			return l, g
		}
		lg, gg := run(mg)
		lc, _ := run(mc)
		tol := modelTol(tg)
		t.Logf("batch %d×%d, %d loss positions: loss %.6f here, %.6f on the CPU", b.B, b.T, lg.Tokens, lg.Mean(), lc.Mean())
		if lg.Tokens != lc.Tokens || math.Abs(lg.Mean()-lc.Mean()) > tol*lc.Mean() {
			t.Errorf("loss %v (%d tokens); want %v (%d tokens)", lg.Mean(), lg.Tokens, lc.Mean(), lc.Tokens)
		}
		ref64 := cpu.Host[float64](mc.Grads())
		var worst float64
		for _, ts := range mg.Tensors() {
			lo, hi := ts.Offset, ts.Offset+ts.Size()
			e := relErr(gg[lo:hi], ref64[lo:hi])
			worst = max(worst, e)
			if !(e <= tol) {
				t.Errorf("%s: gradient relative error %.3g > %g", ts.Name, e, tol)
			}
		}
		t.Logf("worst gradient relative error over %d tensors: %.3g", len(mg.Tensors()), worst)
		_, again := run(mg)
		for i := range gg {
			if math.Float32bits(gg[i]) != math.Float32bits(again[i]) {
				t.Fatalf("gradient %d differs between two identical passes: %v, %v", i, gg[i], again[i])
			}
		}
	})
}
