package cuda

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/safetensors"
)

// Peak rates for MFU: the H100/H200 SXM dense bf16 datasheet figure (the
// usual MFU denominator) and the bf16 matrix rate measured on this
// workplace's H100 and H200 (gpu-notes.md §3.1).
const (
	peakBF16     = 989e12
	measuredBF16 = 798e12
)

// benchCase is a model and batch of BenchmarkTrainStep.
type benchCase struct {
	preset string
	batch  int // rows of benchSeq positions
}

// benchSeq is GLM's sequence length.
const benchSeq = 512

// benchVocab is BERT-uncased's padded vocabulary, GLM-Base/Large's.
const benchVocab = 30592

var benchCases = []benchCase{{"base", 32}, {"large", 16}}

// flopsPerToken is the PaLM convention of gpu-notes.md §3.3: 6N + 12·L·d·T
// with N = 12·L·d² + V·d, the attention counted over the full T×T.
func flopsPerToken(cfg trainer.Config, t int) float64 {
	L, d := float64(cfg.Layers), float64(cfg.Hidden)
	n := 12*L*d*d + float64(cfg.Vocab)*d
	return 6*n + 12*L*d*float64(t)
}

// benchBatch is a batch of rows of exactly benchSeq positions (token and
// document rows, padded), from a fixed seed.
func benchBatch(rows, vocab int) sharding.Batch {
	r := rand.New(rand.NewPCG(2024, 512))
	out := make([]glmRow, rows)
	for i := range out {
		for n := 420; ; n -= 10 {
			row := makeRow(r, randomText(r, n, vocab), vocab, i%3 == 2)
			if len(row.input) <= benchSeq {
				out[i] = row
				break
			}
		}
	}
	return padBatch(out, benchSeq)
}

// BenchmarkTrainStep times training steps of GLM-Base and GLM-Large at
// sequence length 512 on the GPU, bf16 GEMMs: forward, backward, gradient
// norm and AdamW, dropout on (GLM's 0.1). It reports batch positions per
// second and the MFU against 989 TFLOP/s (and against the measured 798).
//
// With GLMKIT_RESULTS_DIR set it writes bench-<preset>.json there; with
// GLMKIT_BENCH_DIR set it writes <preset>/config.json and
// <preset>/batch.safetensors there for testdata/bench_torch_cuda.py.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			be := openTarget(b, target{name: "gpu/bf16", gpu: true})
			cfg, err := trainer.Preset(c.preset, benchVocab)
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxPos = benchSeq
			m, err := trainer.NewModel(cfg, be)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			if err := m.Init(1); err != nil {
				b.Fatal(err)
			}
			opt, err := trainer.NewAdamW(m)
			if err != nil {
				b.Fatal(err)
			}
			defer opt.Close(be)
			batch := benchBatch(c.batch, cfg.Vocab)
			if dir := os.Getenv("GLMKIT_BENCH_DIR"); dir != "" {
				writeBenchInputs(b, filepath.Join(dir, c.preset), cfg, &batch)
			}
			n := 0
			step := func() {
				if err := m.ZeroGrad(); err != nil {
					b.Fatal(err)
				}
				l, err := m.Forward(&batch, trainer.Pass{Train: true, Seed: 1, Step: n})
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
				n++
				s := trainer.AdamWStep{LR: 1e-4, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.1, GradScale: min(1, 1/(norm+1e-6)), T: n}
				if err := opt.Step(m, s); err != nil {
					b.Fatal(err)
				}
			}
			for range 3 { // warm-up: allocations, cuBLAS's choices
				step()
			}
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				step()
			}
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			tokS := float64(batch.B*batch.T*b.N) / b.Elapsed().Seconds()
			f := flopsPerToken(cfg, benchSeq)
			b.ReportMetric(tokS, "tokens/s")
			b.ReportMetric(100*tokS*f/peakBF16, "MFU%")
			b.ReportMetric(100*tokS*f/measuredBF16, "MFU798%")
			b.Logf("%s: %d parameters, batch %d×%d (%d loss positions), %.0f tokens/s, MFU %.1f%% of 989 TFLOP/s (%.1f%% of 798) on %s",
				c.preset, m.NumParams(), batch.B, batch.T, batch.Tokens(), tokS, 100*tokS*f/peakBF16, 100*tokS*f/measuredBF16, be.Name())
			writeResult(b, "bench-"+c.preset+".json", map[string]any{
				"preset": c.preset, "batch": batch.B, "seq": batch.T, "params": m.NumParams(), "loss_positions": batch.Tokens(),
				"steps": b.N, "step_ms": 1e3 * b.Elapsed().Seconds() / float64(b.N), "tokens_per_s": tokS,
				"flops_per_token": f, "mfu_989": tokS * f / peakBF16, "mfu_798": tokS * f / measuredBF16, "backend": be.Name(),
			})
		})
	}
}

// writeBenchInputs writes the model config and the batch for the PyTorch
// benchmark (glm_torch.py's formats).
func writeBenchInputs(t testing.TB, dir string, cfg trainer.Config, b *sharding.Batch) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"model": cfg})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	bt := []int{b.B, b.T}
	err := safetensors.WriteFile(filepath.Join(dir, "batch.safetensors"), map[string]safetensors.Tensor{
		"input_ids":          safetensors.FromInt32(bt, b.Input),
		"target_ids":         safetensors.FromInt32(bt, b.Target),
		"position_ids":       safetensors.FromInt32(bt, b.Pos),
		"block_position_ids": safetensors.FromInt32(bt, b.BlockPos),
		"loss_mask":          safetensors.FromUint8(bt, b.LossMask),
		"sep":                safetensors.FromInt32([]int{b.B}, b.Sep),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// TestBenchBatch checks the benchmark's batch shape and the FLOP count
// against gpu-notes.md §3.4 (707 and 2,151 MFLOP per token).
func TestBenchBatch(t *testing.T) {
	b := benchBatch(4, benchVocab)
	if b.B != 4 || b.T != benchSeq || len(b.Input) != 4*benchSeq || b.Tokens() == 0 {
		t.Fatalf("batch %d×%d with %d inputs, %d loss positions", b.B, b.T, len(b.Input), b.Tokens())
	}
	for _, c := range []struct {
		preset string
		mflop  float64
	}{{"base", 707}, {"large", 2151}} {
		cfg, _ := trainer.Preset(c.preset, benchVocab)
		if got := flopsPerToken(cfg, benchSeq) / 1e6; got < c.mflop-1 || got > c.mflop+1 {
			t.Errorf("%s: %.1f MFLOP per token; gpu-notes.md says %.0f", c.preset, got, c.mflop)
		}
	}
}
