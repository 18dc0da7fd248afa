package trainer_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/internal/batchtest"
	"github.com/glmkit/glmkit/trainer/loader"
)

func newCPU[T cpu.Float](t testing.TB, o cpu.Options) *cpu.Backend[T] {
	t.Helper()
	be, err := cpu.New[T](o)
	if err != nil {
		t.Skipf("backend unavailable: %v", err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Error(err)
		}
	})
	return be
}

func newModel(t testing.TB, cfg trainer.Config, be trainer.Backend, seed uint64) *trainer.Model {
	t.Helper()
	m, err := trainer.NewModel(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(seed); err != nil {
		t.Fatal(err)
	}
	return m
}

// gradCheckConfig is a model small enough to finite-difference every
// parameter, with every part present (two layers, two heads, dropout).
var gradCheckConfig = trainer.Config{Layers: 2, Hidden: 16, Heads: 2, Vocab: 31, MaxPos: 24, HiddenDropout: 0.1, AttentionDropout: 0.1}

// TestModelGradCheck differentiates the whole model end to end (token-mean
// loss over a padded batch, dropout on with fixed masks) and compares every
// parameter's gradient with central finite differences in float64.
func TestModelGradCheck(t *testing.T) {
	for _, blas := range []string{"off", "openblas"} {
		t.Run(blas, func(t *testing.T) {
			be := newCPU[float64](t, cpu.Options{BLAS: blas})
			m := newModel(t, gradCheckConfig, be, 3)
			// larger weights than GLM's 0.02 so every path carries signal
			p := cpu.Host[float64](m.Params())
			r := rand.New(rand.NewPCG(1, 2))
			for _, ts := range m.Tensors() {
				for i := ts.Offset; i < ts.Offset+ts.Size(); i++ {
					p[i] += 0.3 * r.NormFloat64()
				}
			}
			b := glmBatch(rand.New(rand.NewPCG(5, 5)), 3, 6, 11, gradCheckConfig.Vocab)
			pass := trainer.Pass{Train: true, Seed: 9, Step: 4, Micro: 1}
			loss := func() float64 {
				l, err := m.Forward(&b, pass)
				if err != nil {
					t.Fatal(err)
				}
				return l.Mean()
			}
			l0, err := m.Forward(&b, pass)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.ZeroGrad(); err != nil {
				t.Fatal(err)
			}
			if err := m.Backward(1 / float64(l0.Tokens)); err != nil {
				t.Fatal(err)
			}
			g := append([]float64(nil), cpu.Host[float64](m.Grads())...)
			t.Logf("batch %d×%d, %d loss positions, loss %.6f", b.B, b.T, l0.Tokens, l0.Mean())

			// every parameter with pure Go; every 5th with OpenBLAS, whose
			// products TestBLASvsGo and the gemm tests cover
			stride := 1
			if blas != "off" {
				stride = 5
			}
			const h = 1e-5
			var worst float64
			for _, ts := range m.Tensors() {
				var idx []int
				for i := ts.Offset; i < ts.Offset+ts.Size(); i += stride {
					idx = append(idx, i)
				}
				maxErr, rel := batchtest.GradError(p, g, idx, h, loss)
				worst = max(worst, rel)
				if rel > 1e-6 {
					t.Errorf("%s: gradient relative error %.3g (max abs %.3g)", ts.Name, rel, maxErr)
				}
			}
			t.Logf("worst relative gradient error (%d parameters, every %d checked): %.3g", m.NumParams(), stride, worst)
		})
	}
}

// TestPaddingInvisible checks that no real position depends on padding:
// changing the padded tail of a row changes neither the loss nor any
// gradient.
func TestPaddingInvisible(t *testing.T) {
	be := newCPU[float64](t, cpu.Options{BLAS: "off"})
	cfg := gradCheckConfig
	cfg.HiddenDropout, cfg.AttentionDropout = 0, 0
	m := newModel(t, cfg, be, 4)
	rows := []batchtest.Row{makeRow(rand.New(rand.NewPCG(1, 1)), 12, cfg.Vocab, false), makeRow(rand.New(rand.NewPCG(2, 1)), 6, cfg.Vocab, true)}
	b := padBatch(rows, 0)
	run := func(b *loader.Batch) (float64, []float64) {
		l, err := m.Forward(b, trainer.Pass{})
		if err != nil {
			t.Fatal(err)
		}
		m.ZeroGrad()
		if err := m.Backward(1); err != nil {
			t.Fatal(err)
		}
		return l.Sum, append([]float64(nil), cpu.Host[float64](m.Grads())...)
	}
	l1, g1 := run(&b)
	var b2 loader.Batch
	b.CopyTo(&b2)
	for i := len(rows[1].Input); i < b.T; i++ { // row 1's padding
		b2.Input[b.T+i] = 7
		b2.Pos[b.T+i] = 3
		b2.BlockPos[b.T+i] = 2
	}
	l2, g2 := run(&b2)
	if l1 != l2 {
		t.Errorf("loss changed with the padding: %v vs %v", l1, l2)
	}
	// the padding's own embeddings rows get gradient only from padding,
	// which has no loss: every gradient must be identical
	for i := range g1 {
		if math.Abs(g1[i]-g2[i]) > 1e-15 {
			t.Fatalf("gradient %d changed with the padding: %v vs %v", i, g1[i], g2[i])
		}
	}
}

// TestOverfit trains the tiny preset (dropout off) on one batch until the
// loss is below 0.05, then checks that Infill reproduces a span it learned.
func TestOverfit(t *testing.T) {
	cfg, err := trainer.Preset("tiny", 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HiddenDropout, cfg.AttentionDropout = 0, 0
	be := newCPU[float32](t, cpu.Options{})
	m, err := trainer.NewModel(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 8))
	rows := []batchtest.Row{makeRow(r, 20, cfg.Vocab, false), makeRow(r, 24, cfg.Vocab, true), makeRow(r, 16, cfg.Vocab, false), makeRow(r, 10, cfg.Vocab, true)}
	b := padBatch(rows, 0)
	tc := trainer.DefaultTrainConfig(400)
	tc.LR, tc.WarmupSteps, tc.MinLRRatio, tc.WeightDecay = 3e-3, 20, 0.1, 0
	tc.Out, tc.LogEvery = t.TempDir(), 50
	var last float64
	res, err := trainer.Train(context.Background(), tc, m, &trainer.SliceSource{Batches: []loader.Batch{b}, Loop: true}, nil,
		trainer.Hooks{OnLog: func(mt trainer.Metrics) error {
			last = mt.Loss
			t.Logf("step %3d loss %.4f", mt.Step, mt.Loss)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	final, err := m.Forward(&b, trainer.Pass{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %d steps: last training loss %.4f, eval-mode loss %.4f", res.Steps, last, final.Mean())
	if final.Mean() >= 0.05 {
		t.Errorf("the tiny model did not overfit one batch: loss %.4f ≥ 0.05", final.Mean())
	}

	// Infill the single-span row: the model generates the span it learned,
	// then eop.
	sp := specialIDs(cfg.Vocab)
	row := rows[1]
	var told [][3]int // OnToken's calls
	spans, err := m.Infill(context.Background(), row.Input[:row.Sep], trainer.InfillOptions{Blanks: []int32{sp.mask}, SOP: sp.sop, EOP: sp.eop, MaxTokens: 30,
		OnToken: func(blank, blanks, tokens int) { told = append(told, [3]int{blank, blanks, tokens}) }})
	if err != nil {
		t.Fatal(err)
	}
	want := row.Input[row.Sep+1:] // Part B inputs after sop
	if len(spans) != 1 || !slices.Equal(spans[0].Tokens, want) || spans[0].Pos != int(row.Pos[row.Sep]) {
		t.Errorf("Infill = %+v; want one span at %d: %v", spans, row.Pos[row.Sep], want)
	}
	// A call per token generated, then one at the span's end.
	var wantTold [][3]int
	for k := range len(spans[0].Tokens) {
		wantTold = append(wantTold, [3]int{0, 1, k + 1})
	}
	if wantTold = append(wantTold, [3]int{1, 1, 0}); !slices.Equal(told, wantTold) {
		t.Errorf("OnToken was told %v; want %v", told, wantTold)
	}
}

// noKV is a backend without the CPU backend's KVDecoder: Infill then runs
// the whole sequence for every token, as it did before the cache.
type noKV struct{ trainer.Backend }

// countKV counts the CPU backend's AttentionDecode calls.
type countKV struct {
	*cpu.Backend[float32]
	calls int
}

func (c *countKV) AttentionDecode(out, qkv trainer.Buf, t, n, sep, ch, nh int) {
	c.calls++
	c.Backend.AttentionDecode(out, qkv, t, n, sep, ch, nh)
}

// Infill with the key/value cache generates what running the whole
// sequence for every token generates: the same spans, greedy or sampled,
// over several blanks whose spans later blanks see.
func TestInfillKeyValueCache(t *testing.T) {
	cfg := tinyConfig(t)
	sp := specialIDs(cfg.Vocab)
	ids := []int32{sp.cls, 11, 12, sp.mask, 13, 14, 15, sp.mask, 16, sp.mask, 17, 18}
	for _, o := range []trainer.InfillOptions{
		{Blanks: []int32{sp.mask}, SOP: sp.sop, EOP: sp.eop, MaxTokens: 12},
		{Blanks: []int32{sp.mask}, SOP: sp.sop, EOP: sp.eop, MaxTokens: 9, Temperature: 0.9, TopK: 20, Seed: 3},
	} {
		var got [2][]trainer.Span
		kv := &countKV{Backend: newCPU[float32](t, cpu.Options{})}
		for i, be := range []trainer.Backend{kv, noKV{newCPU[float32](t, cpu.Options{})}} {
			m, err := trainer.NewModel(cfg, be)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Init(7); err != nil {
				t.Fatal(err)
			}
			if got[i], err = m.Infill(context.Background(), ids, o); err != nil {
				t.Fatal(err)
			}
			m.Close()
		}
		tokens := 0
		for _, s := range got[0] {
			tokens += len(s.Tokens) + 1
		}
		if kv.calls != tokens*cfg.Layers {
			t.Errorf("AttentionDecode ran %d times; want one a layer for each of the %d rows generated", kv.calls, tokens)
		}
		if fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
			t.Errorf("temperature %v: with the cache %v; without %v", o.Temperature, got[0], got[1])
		}
	}
}
