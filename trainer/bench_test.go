package trainer_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/loader"
)

// benchCase is a model and batch shape for BenchmarkTrainStep.
type benchCase struct {
	preset string
	vocab  int
	b, len int // rows, source tokens per row (rows grow by 2 per span when masked)
}

var benchCases = []benchCase{
	{"tiny", 512, 8, 64},
	{"small", 30592, 8, 128}, // BERT-uncased vocabulary
}

// benchBatch is the batch of a bench case: a fixed seed, token and
// document rows, padded.
func benchBatch(c benchCase, vocab int) loader.Batch {
	return glmBatch(rand.New(rand.NewPCG(2024, 1)), c.b, c.len, c.len, vocab)
}

// BenchmarkTrainStep times one training step (forward, backward, gradient
// norm, AdamW) on the CPU backend in float32, dropout on, and reports
// batch positions (B·T) per second.
//
// With GLMKIT_BENCH_DIR set it also writes config.json and
// batch.safetensors there, for trainer/testdata/bench_torch.py (see
// bench_vs_torch.sh).
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			cfg, err := trainer.Preset(c.preset, c.vocab)
			if err != nil {
				b.Fatal(err)
			}
			be := newCPU[float32](b, cpu.Options{})
			m := newModel(b, cfg, be, 1)
			opt, err := trainer.NewAdamW(m)
			if err != nil {
				b.Fatal(err)
			}
			batch := benchBatch(c, cfg.Vocab)
			if dir := os.Getenv("GLMKIT_BENCH_DIR"); dir != "" {
				js, _ := json.Marshal(map[string]any{"model": cfg, "backend": be.Name()})
				if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
					b.Fatal(err)
				}
				writeBatch(b, filepath.Join(dir, "batch.safetensors"), &batch)
			}
			b.Logf("%s: %d params, batch %d×%d (%d loss positions), %s", c.preset, m.NumParams(), batch.B, batch.T, batch.LossTokens(), be.Name())
			step := 0
			for b.Loop() {
				if err := m.ZeroGrad(); err != nil {
					b.Fatal(err)
				}
				l, err := m.Forward(&batch, trainer.Pass{Train: true, Seed: 1, Step: step})
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Backward(1 / float64(l.Tokens)); err != nil {
					b.Fatal(err)
				}
				norm, err := m.GradNorm()
				if err != nil {
					b.Fatal(err)
				}
				step++
				err = opt.Step(m, trainer.AdamWStep{LR: 1e-4, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.1, GradScale: min(1, 1/(norm+1e-6)), T: step})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch.B*batch.T*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
