package cuda

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/internal/batchtest"
	"github.com/glmkit/glmkit/trainer/loader"
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
// with N = 12·L·d² + V·d, the attention counted over the full T×T and the
// head (V·d) at every position.
func flopsPerToken(cfg trainer.Config, t int) float64 {
	L, d := float64(cfg.Layers), float64(cfg.Hidden)
	n := 12*L*d*d + float64(cfg.Vocab)*d
	return 6*n + 12*L*d*float64(t)
}

// flopsStep counts a training step's matrix work two ways: with the head
// at every position (flopsPerToken, the convention MFU figures use), and
// as this model does it, the head only at the loss positions.
func flopsStep(cfg trainer.Config, b *loader.Batch) (all, lossOnly float64) {
	L, d, v := float64(cfg.Layers), float64(cfg.Hidden), float64(cfg.Vocab)
	tokens := float64(b.B * b.T)
	all = tokens * flopsPerToken(cfg, b.T)
	lossOnly = tokens*(6*12*L*d*d+12*L*d*float64(b.T)) + float64(b.LossTokens())*6*v*d
	return all, lossOnly
}

// benchBatch is a batch of rows of exactly benchSeq positions (token and
// document rows, padded), from a fixed seed.
func benchBatch(rows, vocab int) loader.Batch {
	r := rand.New(rand.NewPCG(2024, 512))
	out := make([]batchtest.Row, rows)
	for i := range out {
		for n := 420; ; n -= 10 {
			row := makeRow(r, randomText(r, n, vocab), vocab, i%3 == 2)
			if len(row.Input) <= benchSeq {
				out[i] = row
				break
			}
		}
	}
	return padBatch(out, benchSeq)
}

// benchConfig is a preset at sequence length benchSeq.
func benchConfig(t testing.TB, preset string) trainer.Config {
	cfg, err := trainer.Preset(preset, benchVocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxPos = benchSeq
	return cfg
}

// BenchmarkTrainStep times training steps of GLM-Base and GLM-Large at
// sequence length 512 on the GPU, bf16 GEMMs: forward, backward, gradient
// norm and AdamW, dropout on (GLM's 0.1). It reports batch positions per
// second and the MFU against 989 TFLOP/s (and against the measured 798),
// counted with the head at every position and at the loss positions only,
// then runs one more step with a sync after every op for the time per op.
//
// With GLMKIT_RESULTS_DIR set it writes bench-<preset>.json there.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.preset, func(b *testing.B) {
			be := openTarget(b, target{name: "gpu/bf16", gpu: true})
			cfg := benchConfig(b, c.preset)
			sb := newStepBench(b, be, cfg, benchBatch(c.batch, cfg.Vocab))
			defer sb.close()
			for range 3 { // warm-up: allocations, cuBLAS's choices
				sb.step(b)
			}
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				sb.step(b)
			}
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
			res := sb.report(b, b.Elapsed(), b.N)
			b.ReportMetric(res["tokens_per_s"].(float64), "tokens/s")
			b.ReportMetric(100*res["mfu_989"].(float64), "MFU%")
			b.ReportMetric(100*res["mfu_loss_989"].(float64), "MFUloss%")
			res["preset"] = c.preset
			writeResult(b, "bench-"+c.preset+".json", res)
		})
	}
}

// stepBench is a model, its optimizer and a batch for timing training
// steps.
type stepBench struct {
	be    *Backend
	cfg   trainer.Config
	m     *trainer.Model
	opt   *trainer.AdamW
	batch loader.Batch
	n     int
	setup time.Duration
}

func newStepBench(t testing.TB, be *Backend, cfg trainer.Config, batch loader.Batch) *stepBench {
	t.Helper()
	t0 := time.Now()
	m, err := trainer.NewModel(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		t.Fatal(err)
	}
	opt, err := trainer.NewAdamW(m)
	if err != nil {
		t.Fatal(err)
	}
	return &stepBench{be: be, cfg: cfg, m: m, opt: opt, batch: batch, setup: time.Since(t0)}
}

func (s *stepBench) close() {
	s.opt.Close(s.be)
	s.m.Close()
}

// step is one training step, as glmtrain runs it.
func (s *stepBench) step(t testing.TB) {
	if err := s.m.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	l, err := s.m.Forward(&s.batch, trainer.Pass{Train: true, Seed: 1, Step: s.n})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.m.Backward(1 / float64(l.Tokens)); err != nil {
		t.Fatal(err)
	}
	norm, err := s.m.GradNorm()
	if err != nil {
		t.Fatal(err)
	}
	s.n++
	st := trainer.AdamWStep{LR: 1e-4, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.1, GradScale: min(1, 1/(norm+1e-6)), T: s.n}
	if err := s.opt.Step(s.m, st); err != nil {
		t.Fatal(err)
	}
}

// report turns steps timed in elapsed into tokens/s and MFU, runs one
// profiled step (a sync after every op) and returns it all for the
// results file.
func (s *stepBench) report(t testing.TB, elapsed time.Duration, steps int) map[string]any {
	t.Helper()
	be, cfg, batch := s.be, s.cfg, &s.batch
	stepS := elapsed.Seconds() / float64(steps)
	tokS := float64(batch.B*batch.T) / stepS
	all, lossOnly := flopsStep(cfg, batch)
	mfu := func(flops, peak float64) float64 { return flops / stepS / peak }

	t1 := time.Now()
	be.startProfile()
	s.step(t)
	prof := be.stopProfile()
	profiled := time.Since(t1)
	ops, opSum := profileRows(prof, profiled)

	t.Logf("%d parameters, batch %d×%d (%d loss positions), step %.1f ms, %.0f tokens/s, MFU %.1f%% of 989 TFLOP/s "+
		"(%.1f%% of 798) with the head at every position, %.1f%% (%.1f%%) with it at the loss positions only; on %s",
		s.m.NumParams(), batch.B, batch.T, batch.LossTokens(), 1e3*stepS, tokS, 100*mfu(all, peakBF16), 100*mfu(all, measuredBF16),
		100*mfu(lossOnly, peakBF16), 100*mfu(lossOnly, measuredBF16), be.Name())
	t.Logf("one step with a sync after every op: %.1f ms, the ops %.1f ms:", 1e3*profiled.Seconds(), 1e3*opSum.Seconds())
	for _, o := range ops[:min(len(ops), 12)] {
		t.Logf("  %-44s %5d calls %9.2f ms %5.1f%%", o.Op, o.Calls, o.MS, 100*o.Share)
	}
	return map[string]any{
		"model": cfg, "batch": batch.B, "seq": batch.T, "params": s.m.NumParams(),
		"loss_positions": batch.LossTokens(), "steps": steps, "setup_s": s.setup.Seconds(),
		"step_ms": 1e3 * stepS, "tokens_per_s": tokS,
		"flops_step_all_positions": all, "flops_step_loss_positions": lossOnly,
		"mfu_989": mfu(all, peakBF16), "mfu_798": mfu(all, measuredBF16),
		"mfu_loss_989": mfu(lossOnly, peakBF16), "mfu_loss_798": mfu(lossOnly, measuredBF16),
		"profiled_step_ms": 1e3 * profiled.Seconds(), "profiled_ops_ms": 1e3 * opSum.Seconds(), "ops": ops,
		"backend": be.Name(), "info": be.Info(),
	}
}

// opRow is one line of a step's time per op.
type opRow struct {
	Op    string  `json:"op"`
	Calls int     `json:"calls"`
	MS    float64 `json:"ms"`
	Share float64 `json:"share"` // of the profiled step's wall time
}

// profileRows sorts a profile by time, longest first.
func profileRows(p map[string]*opTime, wall time.Duration) ([]opRow, time.Duration) {
	var rows []opRow
	var sum time.Duration
	for op, t := range p {
		sum += t.Time
		rows = append(rows, opRow{Op: op, Calls: t.Calls, MS: 1e3 * t.Time.Seconds(), Share: t.Time.Seconds() / wall.Seconds()})
	}
	slices.SortFunc(rows, func(a, b opRow) int { return cmp.Or(cmp.Compare(b.MS, a.MS), cmp.Compare(a.Op, b.Op)) })
	return rows, sum
}

// gemmCase is one matrix product of a GLM training step, in cuBLAS's
// column-major terms as the backend calls it (see gemm.go, attention.go).
type gemmCase struct {
	name    string
	ta, tb  blasOp
	m, n, k int
	batch   int // 1: cublasGemmEx; more: cublasGemmStridedBatchedEx
}

func (c gemmCase) flops() float64 {
	return 2 * float64(c.m) * float64(c.n) * float64(c.k) * float64(c.batch)
}

// gemmCases are the products of one layer and the head of cfg on a batch
// of b rows of t positions with loss loss positions: each linear layer's
// forward, input gradient and weight gradient, and the attention's
// batched products.
func gemmCases(cfg trainer.Config, b, t, loss int) []gemmCase {
	c, nh := cfg.Hidden, cfg.Heads
	hs, n := c/nh, b*t
	var out []gemmCase
	linear := func(name string, rows, in, o int) {
		out = append(out,
			gemmCase{name + " forward", opT, opN, o, rows, in, 1},
			gemmCase{name + " d input", opN, opN, in, rows, o, 1},
			gemmCase{name + " d weight", opN, opT, in, o, rows, 1})
	}
	linear("qkv", n, c, 3*c)
	linear("attention out", n, c, c)
	linear("mlp up", n, c, 4*c)
	linear("mlp down", n, 4*c, c)
	linear("head", loss, c, cfg.Vocab)
	bh := b * nh
	out = append(out,
		gemmCase{"attention q·kᵀ", opT, opN, t, t, hs, bh},
		gemmCase{"attention P·v", opN, opN, hs, t, t, bh},
		gemmCase{"attention dP", opT, opN, t, t, hs, bh},
		gemmCase{"attention dv", opN, opT, hs, t, t, bh},
		gemmCase{"attention dq", opN, opN, hs, t, t, bh},
		gemmCase{"attention dk", opN, opT, hs, t, t, bh})
	return out
}

// gemmReps is the number of products queued per timed iteration (then one
// sync), so that the sync's cost is a small part of what is timed.
const gemmReps = 10

// BenchmarkGEMM times cuBLAS on the bf16 products of GLM-Base and
// GLM-Large training steps (BenchmarkTrainStep's batches), random
// operands, and reports TFLOP/s; with GLMKIT_RESULTS_DIR set it writes
// gemm.json there.
func BenchmarkGEMM(b *testing.B) {
	be := openTarget(b, target{name: "gpu/bf16", gpu: true})
	var rows []map[string]any
	for _, bc := range benchCases {
		cfg := benchConfig(b, bc.preset)
		batch := benchBatch(bc.batch, cfg.Vocab)
		for _, gc := range gemmCases(cfg, batch.B, batch.T, batch.LossTokens()) {
			b.Run(bc.preset+"/"+gc.name, func(b *testing.B) {
				run, free, err := gemmRunner(be, gc)
				if err != nil {
					b.Fatal(err)
				}
				defer free()
				if err := run(2); err != nil { // warm-up: cuBLAS's heuristics
					b.Fatal(err)
				}
				for b.Loop() {
					if err := run(gemmReps); err != nil {
						b.Fatal(err)
					}
				}
				tflops := gemmReps * gc.flops() / (b.Elapsed().Seconds() / float64(b.N)) / 1e12
				b.ReportMetric(tflops, "TFLOP/s")
				rows = append(rows, map[string]any{"preset": bc.preset, "gemm": gc.name, "m": gc.m, "n": gc.n, "k": gc.k, "batch": gc.batch,
					"transa": string(opChar(gc.ta)), "transb": string(opChar(gc.tb)), "tflops": tflops,
					"us": 1e6 * b.Elapsed().Seconds() / float64(b.N*gemmReps)})
			})
		}
	}
	writeResult(b, "gemm.json", map[string]any{"backend": be.Name(), "operands": "bf16, float32 accumulation and output", "gemms": rows})
}

// gemmRunner allocates random bf16 operands and a float32 output for c and
// returns a function that queues reps products and waits for them.
func gemmRunner(be *Backend, c gemmCase) (run func(reps int) error, free func(), err error) {
	rowsA, colsA := c.m, c.k
	if c.ta == opT {
		rowsA, colsA = c.k, c.m
	}
	rowsB, colsB := c.k, c.n
	if c.tb == opT {
		rowsB, colsB = c.n, c.k
	}
	na, nb, nc := rowsA*colsA*c.batch, rowsB*colsB*c.batch, c.m*c.n*c.batch
	var a, bb, out uint64
	err = be.dev.do(func() error {
		g := be.g
		if !g.fp32 {
			var err error
			if a, err = randomBF16(g, na, 1); err != nil {
				return err
			}
			if bb, err = randomBF16(g, nb, 2); err != nil {
				return err
			}
		}
		var err error
		out, err = g.alloc(4 * uint64(nc))
		return err
	})
	free = func() {
		be.dev.do(func() error {
			for _, p := range []uint64{a, bb, out} {
				be.g.free(p)
			}
			return nil
		})
	}
	if err != nil {
		free()
		return nil, nil, err
	}
	run = func(reps int) error {
		return be.dev.do(func() error {
			g := be.g
			for range reps {
				var err error
				if c.batch == 1 {
					err = g.gemm(c.ta, c.tb, c.m, c.n, c.k, 1, a, rowsA, bb, rowsB, 0, out, c.m)
				} else {
					err = g.gemmBatched(c.ta, c.tb, c.m, c.n, c.k, 1, a, rowsA, int64(rowsA*colsA), bb, rowsB, int64(rowsB*colsB),
						0, out, c.m, int64(c.m*c.n), c.batch)
				}
				if err != nil {
					return err
				}
			}
			return g.syncStreams()
		})
	}
	return run, free, nil
}

// randomBF16 allocates n bf16 values N(0, 1) on the device, rounded from
// float32 by the backend's kernel.
func randomBF16(g *gpu, n int, seed uint64) (uint64, error) {
	r := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	f, err := g.alloc(4 * uint64(n))
	if err != nil {
		return 0, err
	}
	defer g.free(f)
	if err := g.upload(f, unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*n)); err != nil {
		return 0, err
	}
	p, err := g.alloc(2 * uint64(n))
	if err != nil {
		return 0, err
	}
	return p, g.launch1(kToBF16, int64(n), p, f, int64(n))
}

// copyBytes is the size of BenchmarkCopy's transfers.
const copyBytes = 256 << 20

// BenchmarkCopy measures the bandwidths the backend moves data at:
// host to device from ordinary Go memory through Upload (the staging
// ring: a copy into pinned memory, then the transfer), from pinned memory
// alone (the link), and device to device (read plus write counted, the
// memory's rate). With GLMKIT_RESULTS_DIR set it writes copy.json there.
func BenchmarkCopy(b *testing.B) {
	be := openTarget(b, target{name: "gpu/fp32", gpu: true, fp32: true})
	cb, err := newCopyBench(be, copyBytes)
	if err != nil {
		b.Fatal(err)
	}
	defer cb.close()
	res := map[string]any{"bytes": copyBytes}
	for _, k := range copyKinds {
		b.Run(k, func(b *testing.B) {
			for b.Loop() {
				if err := cb.run(k); err != nil {
					b.Fatal(err)
				}
			}
			moved := float64(copyBytes)
			if k == "device to device" {
				moved *= 2 // read and written
			}
			v := moved / (b.Elapsed().Seconds() / float64(b.N)) / 1e9
			b.ReportMetric(v, "GB/s")
			res[strings.ReplaceAll(k, " ", "_")+"_gbs"] = v
		})
	}
	writeResult(b, "copy.json", res)
}

// copyKinds are BenchmarkCopy's transfers.
var copyKinds = []string{"upload", "pinned to device", "device to device"}

// copyBench holds the buffers of BenchmarkCopy.
type copyBench struct {
	be       *Backend
	bytes    int
	host     []float32      // ordinary Go memory
	pinned   unsafe.Pointer // cuMemHostAlloc
	dst      trainer.Buf
	src, raw uint64
}

func newCopyBench(be *Backend, bytes int) (*copyBench, error) {
	cb := &copyBench{be: be, bytes: bytes, host: make([]float32, bytes/4)}
	for i := range cb.host {
		cb.host[i] = float32(i)
	}
	var err error
	if cb.dst, err = be.Floats(bytes / 4); err != nil {
		return nil, err
	}
	err = be.dev.do(func() error {
		g := be.g
		var err error
		if cb.src, err = g.alloc(uint64(bytes)); err != nil {
			return err
		}
		if cb.raw, err = g.alloc(uint64(bytes)); err != nil {
			return err
		}
		if err := g.memsetZero(cb.src, bytes/4); err != nil {
			return err
		}
		if err := g.check(g.drv.memHostAlloc(&cb.pinned, uint64(bytes), memHostAllocPortable), "cuMemHostAlloc"); err != nil {
			cb.pinned = nil
			return err
		}
		copy(unsafe.Slice((*float32)(cb.pinned), bytes/4), cb.host)
		return nil
	})
	if err != nil {
		cb.close()
		return nil, err
	}
	return cb, nil
}

// run makes one transfer of the kind and waits for it.
func (cb *copyBench) run(kind string) error {
	if kind == "upload" {
		cb.be.Upload(cb.dst, cb.host)
		return cb.be.Sync()
	}
	return cb.be.dev.do(func() error {
		g, n := cb.be.g, uint64(cb.bytes)
		if kind == "pinned to device" {
			return errors.Join(g.check(g.drv.memcpyHtoDAsync(cb.raw, cb.pinned, n, g.copy), "cuMemcpyHtoDAsync_v2"), g.syncStreams())
		}
		return errors.Join(g.check(g.drv.memcpyDtoDAsync(cb.raw, cb.src, n, g.compute), "cuMemcpyDtoDAsync_v2"), g.syncStreams())
	})
}

func (cb *copyBench) close() {
	if cb.dst != nil {
		cb.be.Free(cb.dst)
	}
	cb.be.dev.do(func() error {
		g := cb.be.g
		if cb.pinned != nil {
			g.drv.memFreeHost(cb.pinned)
		}
		return errors.Join(g.free(cb.src), g.free(cb.raw))
	})
}

// TestBenchOnStandIn runs the benchmarks' code on the stand-in at small
// sizes, so that a first run on a GPU does not find their bugs: a
// training step timed, profiled and reported; every GEMM of gemmCases,
// whose operands the stand-in checks against their allocations; and the
// copies, whose data must arrive.
func TestBenchOnStandIn(t *testing.T) {
	f := newFake(t)
	be := openTarget(t, target{name: "emu/bf16"})
	res := t.TempDir()
	t.Setenv(resultsEnv, res)

	cfg := trainer.Config{Layers: 1, Hidden: 32, Heads: 2, Vocab: 64, MaxPos: 32, HiddenDropout: 0.1, AttentionDropout: 0.1}
	batch := glmBatch(rand.New(rand.NewPCG(3, 3)), 2, 12, 16, cfg.Vocab, randomText)
	sb := newStepBench(t, be, cfg, batch)
	t0 := time.Now()
	sb.step(t)
	rep := sb.report(t, time.Since(t0), 1)
	sb.close()
	if be.prof != nil {
		t.Error("the profile is still on after report")
	}
	writeResult(t, "bench-standin.json", rep)
	var back struct {
		Ops []opRow
		Mfu float64 `json:"mfu_loss_989"`
		Inf Info    `json:"info"`
	}
	if js, err := os.ReadFile(filepath.Join(res, "bench-standin.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, o := range back.Ops {
		ops[o.Op] = o.Calls
	}
	qkv := fmt.Sprintf("matmul forward %d×%d×%d", batch.B*batch.T, cfg.Hidden, 3*cfg.Hidden)
	if ops[qkv] != 1 || ops["attention forward"] != 1 || ops["attention backward"] != 1 || ops["adamw"] == 0 || !(back.Mfu > 0) ||
		back.Inf.KernelCount != int(numKernels) {
		t.Errorf("the report has ops %v, MFU %v, info %+v", ops, back.Mfu, back.Inf)
	}

	for _, gc := range gemmCases(cfg, batch.B, batch.T, batch.LossTokens()) {
		run, free, err := gemmRunner(be, gc)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(1); err != nil {
			t.Errorf("%s: %v", gc.name, err)
		}
		free()
	}

	const n = 1 << 16
	cb, err := newCopyBench(be, 4*n)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range copyKinds {
		if err := cb.run(k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	got := make([]float32, n)
	if err := be.Download(got, cb.dst); err != nil {
		t.Fatal(err)
	}
	var raw [2]float32
	if err := be.dev.do(func() error { return be.g.download(unsafe.Pointer(&raw[0]), cb.raw+4*(n-2), 8) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, cb.host) || raw != [2]float32{0, 0} { // the device-to-device copy of zeros came last
		t.Errorf("the copies moved the wrong data: upload %v…, last raw %v", got[:4], raw)
	}
	cb.close()
	f.assertClean(t)
}

// TestPreflight is .ci/gpu's first check on a GPU machine: what Probe
// finds, then New, a GEMM checked against float64, Close, and the same
// again (the second New must find the primary context and cuBLAS as the
// first left them). It writes preflight.json. Without a GPU it skips (and
// the script skips every GPU stage), unless GLM_REQUIRE_CUDA=1.
func TestPreflight(t *testing.T) {
	rep := Probe(Options{})
	var sb strings.Builder
	rep.Write(&sb, "  ")
	t.Logf("Probe: %s", strings.TrimSpace(sb.String()))
	res := map[string]any{"probe": probeJSON(rep)}
	if rep.DriverErr != nil {
		if requireCUDA() {
			t.Fatalf("GLM_REQUIRE_CUDA=1: %v", rep.DriverErr)
		}
		t.Skipf("no GPU: %v", rep.DriverErr)
	}
	var cycles []map[string]any
	defer func() {
		res["cycles"] = cycles
		writeResult(t, "preflight.json", res)
	}()
	for i := range 2 {
		t0 := time.Now()
		be, err := New(Options{})
		if err != nil {
			t.Fatalf("New (cycle %d): %v", i+1, err)
		}
		start := time.Since(t0)
		in := be.Info()
		t.Logf("cycle %d: New took %.2fs: %s; kernels %s, %d of %d parameter layouts confirmed by the driver", i+1, start.Seconds(), be.Name(),
			in.Kernels, in.ParamsChecked, in.KernelCount)
		for _, n := range in.Notes {
			t.Logf("note: %s", n)
		}
		rel, gerr := gemmCheck(be, uint64(i))
		cerr := be.Close()
		cycles = append(cycles, map[string]any{"new_s": start.Seconds(), "info": in, "gemm_rel_err": rel, "gemm_err": errText(gerr), "close_err": errText(cerr)})
		if gerr != nil || !(rel < 1e-2) {
			t.Errorf("cycle %d: GEMM relative error %g, %v", i+1, rel, gerr)
		}
		if cerr != nil {
			t.Errorf("cycle %d: Close: %v", i+1, cerr)
		}
	}
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probeJSON is a Report with its errors as strings.
func probeJSON(r Report) map[string]any {
	s := errText
	return map[string]any{"dirs": r.Dirs, "driver": r.DriverPath, "driver_cuda": r.DriverVersion, "driver_err": s(r.DriverErr), "devices": r.Devices,
		"cublas": r.CublasPath, "cublas_version": r.CublasVersion, "cublas_err": s(r.CublasErr),
		"nvrtc": r.NVRTCPath, "nvrtc_version": r.NVRTCVersion, "nvrtc_err": s(r.NVRTCErr)}
}

// TestBenchInputs writes the model configs and batches of
// BenchmarkTrainStep for testdata/bench_torch_cuda.py (glm_torch.py's
// formats) into $GLMKIT_BENCH_DIR/<preset>/ (a temporary folder when it is
// not set), and reads each batch back.
func TestBenchInputs(t *testing.T) {
	dir := os.Getenv("GLMKIT_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, c := range benchCases {
		cfg := benchConfig(t, c.preset)
		batch := benchBatch(c.batch, cfg.Vocab)
		d := filepath.Join(dir, c.preset)
		writeBenchInputs(t, d, cfg, &batch)
		f, err := safetensors.ReadFile(filepath.Join(d, "batch.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		ts := f.Tensors
		for name, want := range map[string][]int{"input_ids": {c.batch, benchSeq}, "loss_mask": {c.batch, benchSeq}, "sep": {c.batch}} {
			if got := ts[name].Shape; !slices.Equal(got, want) {
				t.Errorf("%s: %s has shape %v; want %v", c.preset, name, got, want)
			}
		}
		var back struct{ Model trainer.Config }
		js, err := os.ReadFile(filepath.Join(d, "config.json"))
		if err == nil {
			err = json.Unmarshal(js, &back)
		}
		if err != nil || back.Model != cfg {
			t.Errorf("%s: config.json holds %+v (%v); want %+v", c.preset, back.Model, err, cfg)
		}
	}
}

// writeBenchInputs writes the model config and the batch for the PyTorch
// benchmark (glm_torch.py's formats).
func writeBenchInputs(t testing.TB, dir string, cfg trainer.Config, b *loader.Batch) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]any{"model": cfg})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := batchtest.WriteBatch(filepath.Join(dir, "batch.safetensors"), b); err != nil {
		t.Fatal(err)
	}
}

// TestBenchBatch checks the benchmark's batch shape, the FLOP counts
// against gpu-notes.md §3.4 (707 and 2,151 MFLOP per token), and the GEMM
// cases against the model's matrix work.
func TestBenchBatch(t *testing.T) {
	b := benchBatch(4, benchVocab)
	if b.B != 4 || b.T != benchSeq || len(b.Input) != 4*benchSeq || b.LossTokens() == 0 {
		t.Fatalf("batch %d×%d with %d inputs, %d loss positions", b.B, b.T, len(b.Input), b.LossTokens())
	}
	for _, c := range []struct {
		preset string
		mflop  float64
	}{{"base", 707}, {"large", 2151}} {
		cfg, _ := trainer.Preset(c.preset, benchVocab)
		if got := flopsPerToken(cfg, benchSeq) / 1e6; got < c.mflop-1 || got > c.mflop+1 {
			t.Errorf("%s: %.1f MFLOP per token; gpu-notes.md says %.0f", c.preset, got, c.mflop)
		}
		// the GEMM cases of one layer times the layers, plus the head, are
		// the step's matrix work at the loss positions only
		all, lossOnly := flopsStep(cfg, &b)
		var layer, head float64
		for _, gc := range gemmCases(cfg, b.B, b.T, b.LossTokens()) {
			if strings.HasPrefix(gc.name, "head") {
				head += gc.flops()
			} else {
				layer += gc.flops()
			}
		}
		if got := float64(cfg.Layers)*layer + head; got < lossOnly*(1-1e-9) || got > lossOnly*(1+1e-9) {
			t.Errorf("%s: the GEMM cases add up to %.4g FLOP per step; flopsStep counts %.4g", c.preset, got, lossOnly)
		}
		if !(lossOnly < all) {
			t.Errorf("%s: %.4g FLOP at the loss positions, %.4g at all", c.preset, lossOnly, all)
		}
	}
}
