package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/internal/batchtest"
	"github.com/glmkit/glmkit/trainer/loader"
)

// Every backend test runs on up to four targets:
//
//	emu/fp32, emu/bf16  the stand-in library: the real kernel sources run
//	                    by the emulator, GEMMs in double (bf16 operands
//	                    rounded as cuBLAS would receive them)
//	gpu/fp32, gpu/bf16  the real driver, cuBLAS and NVRTC, when a GPU is
//	                    present; skipped otherwise, and a failure when
//	                    GLM_REQUIRE_CUDA=1
//
// The tolerances are the issue's: relative error (max |Δ| / max |ref|)
// under 1e-5 with float32 GEMMs and under 1e-2 with bf16 operands.

// target is one way to run the backend.
type target struct {
	name string
	gpu  bool
	fp32 bool
}

var targets = []target{{"emu/fp32", false, true}, {"emu/bf16", false, false}, {"gpu/fp32", true, true}, {"gpu/bf16", true, false}}

func (tg target) tol() float64 {
	if tg.fp32 {
		return 1e-5
	}
	return 1e-2
}

// requireCUDA reports whether GLM_REQUIRE_CUDA=1 turns a missing GPU into
// a failure.
func requireCUDA() bool { return os.Getenv("GLM_REQUIRE_CUDA") == "1" }

// openTarget returns a backend for tg (closed at the end of the test), or
// skips. For the stand-in it also checks, at the end, that nothing leaked
// and that the stand-in's checks (guard bytes, operand bounds, barriers)
// found nothing.
func openTarget(t testing.TB, tg target) *Backend {
	t.Helper()
	if tg.gpu {
		be, err := New(Options{FP32: tg.fp32})
		if err != nil {
			if (errors.Is(err, ErrNoDriver) || errors.Is(err, ErrNoDevice)) && !requireCUDA() {
				t.Skipf("no GPU (set GLM_REQUIRE_CUDA=1 to fail instead): %v", err)
			}
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := be.Close(); err != nil {
				t.Error(err)
			}
		})
		t.Logf("%s", be.Name())
		return be
	}
	f := newFake(t)
	before := f.counts()
	be, err := New(Options{LibDir: f.dir, FP32: tg.fp32, CacheDir: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Error(err)
		}
		f.assertClean(t)
		after := f.counts()
		// the primary context stays retained (one reference per New: other
		// backends the test opened since keep theirs too)
		if after[liveCtxRefs] <= before[liveCtxRefs] {
			t.Errorf("after Close: %d primary context references, %d before New; want the backend's kept", after[liveCtxRefs], before[liveCtxRefs])
		}
		after[liveCtxRefs] = before[liveCtxRefs]
		for i, name := range liveNames {
			if n := after[i] - before[i]; n != 0 {
				t.Errorf("after Close: %d %s more than before New", n, name)
			}
		}
	})
	return be
}

// forTargets runs f as a subtest on every target.
func forTargets(t *testing.T, f func(t *testing.T, tg target, be *Backend)) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) { f(t, tg, openTarget(t, tg)) })
	}
}

// env pairs a CUDA backend with the CPU float64 oracle for op tests.
type env struct {
	t   *testing.T
	be  *Backend
	ref *cpu.Backend[float64]
	r   *rand.Rand
	tol float64
}

func newEnv(t *testing.T, tg target, be *Backend, seed uint64) *env {
	ref, err := cpu.New[float64](cpu.Options{BLAS: "off", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Close() })
	return &env{t: t, be: be, ref: ref, r: rand.New(rand.NewPCG(seed, 99)), tol: tg.tol()}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// randn returns n normal float32 values times std.
func (e *env) randn(n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(std * e.r.NormFloat64())
	}
	return x
}

// pair is a float tensor on both backends with the values x.
type pair struct {
	g, c trainer.Buf
	n    int
}

func (e *env) floats(x []float32) pair {
	e.t.Helper()
	return e.both(len(x), trainer.Backend.Floats, func(be trainer.Backend, b trainer.Buf) { be.Upload(b, x) })
}

func (e *env) int32s(x []int32) pair {
	e.t.Helper()
	return e.both(len(x), trainer.Backend.Int32s, func(be trainer.Backend, b trainer.Buf) { be.UploadInt32(b, x) })
}

// both makes a tensor of n elements with alloc on each backend, the GPU
// side first, and fills it with upload.
func (e *env) both(n int, alloc func(trainer.Backend, int) (trainer.Buf, error), upload func(trainer.Backend, trainer.Buf)) pair {
	e.t.Helper()
	p := pair{n: n}
	for _, side := range []struct {
		be  trainer.Backend
		buf *trainer.Buf
	}{{e.be, &p.g}, {e.ref, &p.c}} {
		b, err := alloc(side.be, n)
		e.must(err)
		upload(side.be, b)
		*side.buf = b
	}
	return p
}

// poisoned is an output tensor of n elements: NaN on the GPU side (every
// element must be written), zeros on the CPU side.
func (e *env) poisoned(n int) pair {
	e.t.Helper()
	x := make([]float32, n)
	p := e.floats(x)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	e.be.Upload(p.g, x)
	return p
}

// get downloads both sides; it fails the test if an op of either failed
// (errors stick: the first one is reported).
func (e *env) get(p pair) (g []float32, c []float64) {
	e.t.Helper()
	g = make([]float32, p.n)
	e.must(e.be.Download(g, p.g))
	e.must(e.ref.Err())
	return g, cpu.Host[float64](p.c)
}

// relErr is max |got − want| / max |want|; NaN gives +Inf.
func relErr(got []float32, want []float64) float64 {
	var d, m float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.Inf(1)
		}
		d = max(d, math.Abs(g-w))
		m = max(m, math.Abs(w))
	}
	if m == 0 {
		return d
	}
	return d / m
}

// check compares a tensor with the oracle within the target's tolerance.
func (e *env) check(name string, p pair) {
	e.t.Helper()
	e.checkTol(name, p, e.tol)
}

func (e *env) checkTol(name string, p pair, tol float64) {
	e.t.Helper()
	g, c := e.get(p)
	if err := relErr(g, c); !(err <= tol) {
		e.t.Errorf("%s: relative error %.3g > %g", name, err, tol)
	} else {
		e.t.Logf("%s: relative error %.3g", name, err)
	}
}

// ----------------------------------------------------------------------------
// GLM batches (as trainer's tests make them; a little copying)

// makeRow masks spans of text in GLM's layout (glm-reference.md §2.2),
// spans 1 to 12 tokens apart (see batchtest.MakeRow).
func makeRow(r *rand.Rand, text []int32, vocab int, document bool) batchtest.Row {
	return batchtest.MakeRow(r, text, vocab, document, 12)
}

// padBatch pads rows to t positions (the longest row when t is 0):
// id 0, loss 0, positions 0.
func padBatch(rows []batchtest.Row, t int) loader.Batch { return batchtest.Pad(rows, t, 0) }

// randomText is [CLS] then n−1 uniform ordinary ids (2 … vocab−4).
func randomText(r *rand.Rand, n, vocab int) []int32 { return batchtest.RandomText(r, n, vocab) }

// motifText is learnable text: [CLS], then a random motif of 3 to 8
// ordinary ids repeated, so a masked span can be copied from another
// repetition.
func motifText(r *rand.Rand, n, vocab int) []int32 {
	x := make([]int32, n)
	x[0] = 1
	m := make([]int32, 3+r.IntN(6))
	for i := range m {
		m[i] = 2 + int32(r.IntN(vocab-5))
	}
	for i := 1; i < n; i++ {
		x[i] = m[(i-1)%len(m)]
	}
	return x
}

// glmBatch is a padded batch of b rows of source lengths in [minLen,
// maxLen], every third a document-level row.
func glmBatch(r *rand.Rand, b, minLen, maxLen, vocab int, text func(*rand.Rand, int, int) []int32) loader.Batch {
	rows := make([]batchtest.Row, b)
	for i := range rows {
		n := minLen + r.IntN(maxLen-minLen+1)
		rows[i] = makeRow(r, text(r, n, vocab), vocab, i%3 == 2)
	}
	return padBatch(rows, 0)
}

// gemmCheck runs one MatmulForward with bias (64 rows, 96 → 80) of random
// values on be and returns its relative error against float64.
func gemmCheck(be *Backend, seed uint64) (float64, error) {
	r := rand.New(rand.NewPCG(seed, 7))
	n, c, oc := 64, 96, 80
	rnd := func(k int) []float32 {
		x := make([]float32, k)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	x, w, b := rnd(n*c), rnd(oc*c), rnd(oc)
	var bufs []trainer.Buf
	defer func() {
		for _, p := range bufs {
			be.Free(p)
		}
	}()
	up := func(v []float32) (trainer.Buf, error) {
		p, err := be.Floats(len(v))
		if err != nil {
			return nil, err
		}
		bufs = append(bufs, p)
		be.Upload(p, v)
		return p, be.Err()
	}
	px, err := up(x)
	if err != nil {
		return 0, err
	}
	pw, err := up(w)
	if err != nil {
		return 0, err
	}
	pb, err := up(b)
	if err != nil {
		return 0, err
	}
	po, err := up(make([]float32, n*oc))
	if err != nil {
		return 0, err
	}
	be.MatmulForward(po, px, pw, pb, n, c, oc)
	got := make([]float32, n*oc)
	if err := be.Download(got, po); err != nil {
		return 0, err
	}
	want := make([]float64, n*oc)
	for i := range n {
		for o := range oc {
			acc := float64(b[o])
			for k := range c {
				acc += float64(x[i*c+k]) * float64(w[o*c+k])
			}
			want[i*oc+o] = acc
		}
	}
	return relErr(got, want), nil
}
