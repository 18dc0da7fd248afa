package trainer_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/loader"
	"github.com/glmkit/glmkit/trainer/safetensors"
)

// tinyConfig is the tiny preset over a vocabulary of 300 (more than one
// block of rows in the output layer's products), dropout on.
func tinyConfig(t testing.TB) trainer.Config {
	cfg, err := trainer.Preset("tiny", 300)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func tinyTrainConfig(t testing.TB, steps int) trainer.TrainConfig {
	tc := trainer.DefaultTrainConfig(steps)
	tc.Accum, tc.LR, tc.WarmupSteps, tc.DecaySteps = 2, 2e-3, 2, steps
	tc.Out = t.TempDir()
	return tc
}

// run trains a fresh model and returns the per-step losses and the final
// parameters.
func run(t *testing.T, be trainer.Backend, tc trainer.TrainConfig, stopAt int) ([]float64, []float32, trainer.Result) {
	t.Helper()
	m, err := trainer.NewModel(tinyConfig(t), be)
	if err != nil {
		t.Fatal(err)
	}
	src := &trainer.SliceSource{Batches: glmBatches(21, 7, 4, 20, 40, 300), Loop: true}
	eval := &trainer.SliceSource{Batches: glmBatches(22, 2, 4, 20, 40, 300)}
	var losses []float64
	stop := errors.New("stop")
	res, err := trainer.Train(context.Background(), tc, m, src, eval, trainer.Hooks{OnLog: func(mt trainer.Metrics) error {
		losses = append(losses, mt.Loss)
		if mt.Step == stopAt {
			return stop
		}
		return nil
	}})
	if err != nil && !errors.Is(err, stop) {
		t.Fatal(err)
	}
	p, err := m.ParamsHost()
	if err != nil {
		t.Fatal(err)
	}
	return losses, p, res
}

func sameBits32(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestResume trains N steps straight, and N/2 steps, stop, resume from the
// checkpoint in a fresh model, N/2 steps: the losses and the final weights
// are bitwise identical (dropout on, two micro-batches per step).
func TestResume(t *testing.T) {
	for _, blas := range []string{"off", "openblas"} {
		t.Run(blas, func(t *testing.T) {
			const N = 8
			be := newCPU[float32](t, cpu.Options{BLAS: blas})
			tc := tinyTrainConfig(t, N)
			tc.EvalEvery = 4
			straight, pStraight, _ := run(t, be, tc, -1)

			tc1 := tc
			tc1.Out = t.TempDir()
			first, _, res := run(t, be, tc1, N/2)
			if res.Checkpoint == "" || res.Steps != N/2 {
				t.Fatalf("stopped run: %+v", res)
			}
			latest, err := trainer.LatestCheckpoint(tc1.Out)
			if err != nil || latest != trainer.CheckpointDir(tc1.Out, N/2) {
				t.Fatalf("LatestCheckpoint = %q, %v", latest, err)
			}
			tc2 := tc1
			tc2.Resume = latest
			be2 := newCPU[float32](t, cpu.Options{BLAS: blas}) // fresh state everywhere
			second, pResumed, _ := run(t, be2, tc2, -1)

			resumed := append(first, second...)
			if !slices.Equal(straight, resumed) {
				t.Fatalf("losses differ:\nstraight %v\nresumed  %v", straight, resumed)
			}
			for i := range straight {
				if math.Float64bits(straight[i]) != math.Float64bits(resumed[i]) {
					t.Fatalf("step %d loss %v vs %v", i+1, straight[i], resumed[i])
				}
			}
			if i := sameBits32(pStraight, pResumed); i != -1 {
				t.Fatalf("final parameters differ at %d", i)
			}
			t.Logf("%d steps straight = %d + resume + %d, bitwise; losses %v", N, N/2, N/2, straight)

			// metrics.jsonl holds all N steps, with evaluations at 4 and 8.
			lines := readMetrics(t, filepath.Join(tc1.Out, "metrics.jsonl"))
			if len(lines) != N {
				t.Fatalf("metrics.jsonl has %d lines; want %d", len(lines), N)
			}
			for _, l := range lines {
				for _, k := range []string{"step", "loss", "lr", "tokens_per_s", "grad_norm"} {
					if _, ok := l[k]; !ok {
						t.Errorf("metrics line %v lacks %q", l, k)
					}
				}
				step := int(l["step"].(float64))
				_, hasEval := l["eval_loss"]
				if hasEval != (step%4 == 0) {
					t.Errorf("step %d: eval_loss present = %v", step, hasEval)
				}
				if hasEval {
					for _, k := range []string{"eval_ppl", "eval_loss_token", "eval_loss_document"} {
						if _, ok := l[k]; !ok {
							t.Errorf("step %d lacks %q", step, k)
						}
					}
				}
			}
		})
	}
}

func readMetrics(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestDeterministicThreads wants bitwise equal training with 1 and 2 backend
// threads and with GOMAXPROCS 1.
func TestDeterministicThreads(t *testing.T) {
	for _, blas := range []string{"off", "openblas"} {
		t.Run(blas, func(t *testing.T) {
			tc := tinyTrainConfig(t, 3)
			l1, p1, _ := run(t, newCPU[float32](t, cpu.Options{BLAS: blas, Threads: 1}), tc, -1)
			l2, p2, _ := run(t, newCPU[float32](t, cpu.Options{BLAS: blas, Threads: 2}), tc, -1)
			prev := runtime.GOMAXPROCS(1)
			l3, p3, _ := run(t, newCPU[float32](t, cpu.Options{BLAS: blas}), tc, -1)
			runtime.GOMAXPROCS(prev)
			if !slices.Equal(l1, l2) || !slices.Equal(l1, l3) {
				t.Fatalf("losses differ: 1 thread %v, 2 threads %v, GOMAXPROCS=1 %v", l1, l2, l3)
			}
			if i := sameBits32(p1, p2); i != -1 {
				t.Fatalf("parameters differ between 1 and 2 threads at %d", i)
			}
			if i := sameBits32(p1, p3); i != -1 {
				t.Fatalf("parameters differ with GOMAXPROCS=1 at %d", i)
			}
		})
	}
}

// TestCheckpointRoundTrip saves a trained model and optimizer, reloads both
// into fresh objects, and checks the safetensors layout.
func TestCheckpointRoundTrip(t *testing.T) {
	be := newCPU[float32](t, cpu.Options{})
	tc := tinyTrainConfig(t, 2)
	_, params, res := run(t, be, tc, -1)
	dir := res.Checkpoint
	if dir != trainer.CheckpointDir(tc.Out, 2) {
		t.Fatalf("checkpoint %q", dir)
	}
	for _, f := range []string{"model.safetensors", "optimizer.safetensors", "config.json", "trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	ents, _ := os.ReadDir(tc.Out)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}

	m2, err := trainer.LoadModel(dir, newCPU[float32](t, cpu.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := m2.ParamsHost()
	if i := sameBits32(params, p2); i != -1 {
		t.Fatalf("reloaded parameters differ at %d", i)
	}
	// optimizer round trip through a second save
	opt, err := trainer.NewAdamW(m2)
	if err != nil {
		t.Fatal(err)
	}
	st, err := trainer.LoadCheckpoint(dir, m2, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 2 || st.Seed != tc.Seed || len(st.LoaderState) == 0 {
		t.Errorf("trainer state %+v", st)
	}
	if n, k := binary.Uvarint(st.LoaderState); k <= 0 || n != 4 { // 2 steps × 2 micro-batches
		t.Errorf("loader state %x; want position 4", st.LoaderState)
	}
	dir2 := filepath.Join(t.TempDir(), "again")
	if err := trainer.SaveCheckpoint(dir2, m2, opt, &tc, st); err != nil {
		t.Fatal(err)
	}
	if err := trainer.SaveCheckpoint(dir2, m2, opt, &tc, st); err != nil { // replaces atomically
		t.Fatal(err)
	}
	for _, name := range []string{"model.safetensors", "optimizer.safetensors"} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(dir2, name))
		if !slices.Equal(a, b) {
			t.Errorf("%s differs after a load/save round trip", name)
		}
	}

	checkSafetensorsLayout(t, filepath.Join(dir, "model.safetensors"))
}

// checkSafetensorsLayout checks a model.safetensors of tinyConfig's shape:
// sorted names, contiguous offsets, F32, PyTorch's names and shapes.
func checkSafetensorsLayout(t *testing.T, path string) {
	raw, _ := os.ReadFile(path)
	n := binary.LittleEndian.Uint64(raw)
	if (8+n)%8 != 0 {
		t.Errorf("header of %d bytes is not 8-aligned", n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(f.Tensors))
	for k := range f.Tensors {
		names = append(names, k)
	}
	slices.Sort(names)
	var off int64
	for _, name := range names {
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		json.Unmarshal(hdr[name], &e)
		if e.DType != "F32" || e.Offsets[0] != off {
			t.Errorf("%s: %+v; want F32 at offset %d", name, e, off)
		}
		off = e.Offsets[1]
	}
	if int(off) != len(raw)-8-int(n) {
		t.Errorf("data ends at %d of %d bytes", off, len(raw)-8-int(n))
	}
	cfg := tinyConfig(t)
	for _, want := range []struct {
		name  string
		shape []int
	}{
		{"word_embeddings.weight", []int{cfg.Vocab, cfg.Hidden}},
		{"transformer.position_embeddings.weight", []int{cfg.MaxPos + 1, cfg.Hidden}},
		{"transformer.block_position_embeddings.weight", []int{cfg.MaxPos + 1, cfg.Hidden}},
		{"transformer.layers.1.attention.query_key_value.weight", []int{3 * cfg.Hidden, cfg.Hidden}},
		{"transformer.layers.1.mlp.dense_4h_to_h.weight", []int{cfg.Hidden, 4 * cfg.Hidden}},
		{"transformer.final_layernorm.bias", []int{cfg.Hidden}},
	} {
		if got := f.Tensors[want.name].Shape; !slices.Equal(got, want.shape) {
			t.Errorf("%s has shape %v; want %v", want.name, got, want.shape)
		}
	}
	if len(names) != 3+12*cfg.Layers+2 {
		t.Errorf("%d tensors; want %d", len(names), 3+12*cfg.Layers+2)
	}
}

// TestEvaluate checks the per-objective split and GLM's perplexity.
func TestEvaluate(t *testing.T) {
	be := newCPU[float64](t, cpu.Options{})
	m := newModel(t, tinyConfig(t), be, 1)
	bs := glmBatches(3, 3, 4, 10, 30, 300)
	res, err := trainer.Evaluate(context.Background(), m, &trainer.SliceSource{Batches: bs}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	var toks int
	for _, b := range bs {
		l, err := m.Forward(&b, trainer.Pass{})
		if err != nil {
			t.Fatal(err)
		}
		sum += l.Sum
		toks += l.Tokens
	}
	if res.Batches != 3 || res.Tokens != toks || math.Abs(res.Loss-sum/float64(toks)) > 1e-12 {
		t.Errorf("Evaluate = %+v; want loss %v over %d tokens", res, sum/float64(toks), toks)
	}
	tok, doc := res.Objectives[masking.Token], res.Objectives[masking.Document]
	if tok.Tokens+doc.Tokens != toks || tok.Tokens == 0 || doc.Tokens == 0 {
		t.Errorf("objective split %+v %+v of %d tokens", tok, doc, toks)
	}
	mix := (tok.Loss*float64(tok.Tokens) + doc.Loss*float64(doc.Tokens)) / float64(toks)
	if math.Abs(mix-res.Loss) > 1e-12 || math.Abs(res.PPL-math.Exp(res.Loss)) > 1e-9 {
		t.Errorf("loss %v ppl %v; objectives give %v", res.Loss, res.PPL, mix)
	}
	// an untrained model over 300 ids has loss ≈ ln 300
	if math.Abs(res.Loss-math.Log(300)) > 0.2 {
		t.Errorf("initial loss %v; want ≈ ln 300 = %v", res.Loss, math.Log(300))
	}
	if trainer.Perplexity(25) != math.Exp(20) {
		t.Errorf("Perplexity(25) = %v; want exp(20)", trainer.Perplexity(25))
	}
}

// Evaluate refuses a negative batch count, and a pass with no loss
// position is an error, not a loss of 0 and a perplexity of 1; Infill
// refuses a negative token limit or top-k and a temperature that is not a
// finite number ≥ 0.
func TestEvaluateInfillRefuse(t *testing.T) {
	be := newCPU[float32](t, cpu.Options{Threads: 1})
	m := newModel(t, tinyConfig(t), be, 1)
	bs := glmBatches(3, 1, 4, 10, 30, 300)
	if _, err := trainer.Evaluate(context.Background(), m, &trainer.SliceSource{Batches: bs}, -1); err == nil {
		t.Error("Evaluate of -1 batches: no error")
	}
	if res, err := trainer.Evaluate(context.Background(), m, &trainer.SliceSource{}, 0); err == nil {
		t.Errorf("Evaluate of no batches = %+v; want an error", res)
	}
	ids := []int32{1, 5, 7, 2, 9}
	for _, o := range []trainer.InfillOptions{{MaxTokens: -1}, {TopK: -3}, {Temperature: math.NaN()}, {Temperature: -0.5}, {Temperature: math.Inf(1)}} {
		o.Blanks, o.SOP, o.EOP = []int32{2}, 3, 4
		if spans, err := m.Infill(context.Background(), ids, o); err == nil {
			t.Errorf("Infill(%+v) = %v; want an error", o, spans)
		}
	}
}

// TestCancel cancels training after step 3: Train returns the context's
// error after writing the checkpoint of step 3, which resumes.
func TestCancel(t *testing.T) {
	be := newCPU[float32](t, cpu.Options{})
	tc := tinyTrainConfig(t, 6)
	m, err := trainer.NewModel(tinyConfig(t), be)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &trainer.SliceSource{Batches: glmBatches(21, 7, 4, 20, 40, 300), Loop: true}
	res, err := trainer.Train(ctx, tc, m, src, nil, trainer.Hooks{OnLog: func(mt trainer.Metrics) error {
		if mt.Step == 3 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) || res.Steps != 3 || res.Checkpoint != trainer.CheckpointDir(tc.Out, 3) {
		t.Fatalf("Train = %+v, %v; want 3 steps, a checkpoint and context.Canceled", res, err)
	}
	tc.Resume = res.Checkpoint
	res, err = trainer.Train(context.Background(), tc, m, src, nil, trainer.Hooks{})
	if err != nil || res.Steps != 6 {
		t.Fatalf("resumed Train = %+v, %v", res, err)
	}
}

// failingSource is a source whose call fail of Next (counted from 1) fails
// as a corrupt row would.
type failingSource struct {
	*trainer.SliceSource
	calls, fail int
}

var errCorrupt = errors.New("corrupt row")

func (s *failingSource) Next(b *loader.Batch) error {
	if s.calls++; s.calls == s.fail {
		return errCorrupt
	}
	return s.SliceSource.Next(b)
}

// Bad data in the middle of a step (its second micro-batch) ends the run
// with the error and a checkpoint of the last complete step, whose loader
// position is where that step began: resuming on good data gives the
// straight run's weights, bitwise.
func TestDataErrorCheckpoint(t *testing.T) {
	be := newCPU[float32](t, cpu.Options{})
	const N = 6
	tc := tinyTrainConfig(t, N) // two micro-batches a step
	_, pStraight, _ := run(t, be, tc, -1)

	tc.Out = t.TempDir()
	m, err := trainer.NewModel(tinyConfig(t), be)
	if err != nil {
		t.Fatal(err)
	}
	src := &failingSource{SliceSource: &trainer.SliceSource{Batches: glmBatches(21, 7, 4, 20, 40, 300), Loop: true}, fail: 2*3 + 2}
	eval := &trainer.SliceSource{Batches: glmBatches(22, 2, 4, 20, 40, 300)}
	res, err := trainer.Train(context.Background(), tc, m, src, eval, trainer.Hooks{})
	if !errors.Is(err, errCorrupt) || res.Steps != 3 || res.Checkpoint != trainer.CheckpointDir(tc.Out, 3) {
		t.Fatalf("Train = %+v, %v; want 3 steps, their checkpoint and the corrupt row", res, err)
	}
	tc.Resume = res.Checkpoint
	_, pResumed, _ := run(t, newCPU[float32](t, cpu.Options{}), tc, -1)
	if i := sameBits32(pStraight, pResumed); i != -1 {
		t.Fatalf("resumed after the bad data: parameters differ from the straight run at %d", i)
	}
}

// TestBLASvsGo trains the same steps with OpenBLAS and with the pure-Go
// matrix products: the float32 losses agree closely (not bitwise).
func TestBLASvsGo(t *testing.T) {
	tc := tinyTrainConfig(t, 4)
	lGo, pGo, _ := run(t, newCPU[float32](t, cpu.Options{BLAS: "off"}), tc, -1)
	lBLAS, pBLAS, _ := run(t, newCPU[float32](t, cpu.Options{BLAS: "openblas"}), tc, -1)
	for i := range lGo {
		if d := math.Abs(lGo[i]-lBLAS[i]) / lGo[i]; d > 1e-5 {
			t.Errorf("step %d: loss %v (go) vs %v (openblas)", i+1, lGo[i], lBLAS[i])
		}
	}
	var worst float64
	for i := range pGo {
		worst = max(worst, math.Abs(float64(pGo[i]-pBLAS[i])))
	}
	t.Logf("losses go %v\n       openblas %v; max |Δparam| %.3g", lGo, lBLAS, worst)
	if worst > 1e-4 {
		t.Errorf("parameters differ by %.3g after %d steps", worst, len(lGo))
	}
}

// A batch whose activations pass the CPU backend's memory bound is an
// error naming the batch and the bound, not the Go runtime's fatal crash,
// and a smaller batch then trains on the same backend.
func TestBatchOverMemory(t *testing.T) {
	be, err := cpu.New[float32](cpu.Options{Threads: 1, Memory: 48 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m, err := trainer.NewModel(tinyConfig(t), be)
	if err != nil {
		t.Fatal(err)
	}
	tc := tinyTrainConfig(t, 2)
	big := &trainer.SliceSource{Batches: glmBatches(21, 1, 300, 200, 240, 300), Loop: true}
	_, err = trainer.Train(context.Background(), tc, m, big, nil, trainer.Hooks{})
	if err == nil || !strings.Contains(err.Error(), "300×") || !strings.Contains(err.Error(), "0.05 GiB of Options.Memory") {
		t.Fatalf("a 300-row batch within 48 MiB: %v; want the memory bound's error", err)
	}
	small := &trainer.SliceSource{Batches: glmBatches(21, 2, 4, 20, 40, 300), Loop: true}
	tc.Out = t.TempDir()
	if _, err := trainer.Train(context.Background(), tc, m, small, nil, trainer.Hooks{}); err != nil {
		t.Fatalf("a 4-row batch after it: %v", err)
	}
}
