package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/internal/batchtest"
)

// The gradient checks run every op's forward and backward in float64 and
// compare the backward against central finite differences of
// L = Σ out·R for a fixed random R. The error of a tensor is
// max|analytic − numeric| / max|numeric|.

const (
	fdStep = 1e-5
	fdTol  = 1e-6
)

// gradCheck perturbs every element of every input (or 400 random ones of a
// larger input), and returns the worst relative error per input.
func gradCheck(t *testing.T, inputs map[string][]float64, fwd func() []float64, bwd func(dout []float64) map[string][]float64) map[string]float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	out := fwd()
	R := make([]float64, len(out))
	for i := range R {
		R[i] = r.NormFloat64()
	}
	grads := bwd(R)
	loss := func() float64 {
		var s float64
		for i, v := range fwd() {
			s += v * R[i]
		}
		return s
	}
	errs := map[string]float64{}
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		x, g := inputs[name], grads[name]
		if len(g) != len(x) {
			t.Fatalf("%s: gradient of %d elements for %d inputs", name, len(g), len(x))
		}
		idx := make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
		if len(idx) > 400 {
			r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			idx = idx[:400]
		}
		maxErr, rel := batchtest.GradError(x, g, idx, fdStep, loss)
		errs[name] = rel
		t.Logf("%-8s max |analytic − numeric| = %.3g, relative %.3g", name, maxErr, rel)
		if rel > fdTol {
			t.Errorf("%s: gradient relative error %.3g > %g", name, rel, fdTol)
		}
	}
	return errs
}

func newBE64(t testing.TB, blas string) *Backend[float64] {
	be, err := New[float64](Options{BLAS: blas, Threads: 2})
	if err != nil {
		t.Skipf("backend %q unavailable: %v", blas, err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func randn(r *rand.Rand, n int, std float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = std * r.NormFloat64()
	}
	return x
}

func fl(x []float64) trainer.Buf { return floats[float64](x) }

func zeros(n int) []float64 { return make([]float64, n) }

// must fails the test if an op of be failed (errors stick: the first one
// is reported).
func must[T Float](t *testing.T, be *Backend[T]) {
	t.Helper()
	if err := be.Err(); err != nil {
		t.Fatal(err)
	}
}

// forEachBLAS runs a float64 check with pure Go and with OpenBLAS.
func forEachBLAS(t *testing.T, f func(t *testing.T, be *Backend[float64])) {
	for _, mode := range []string{"off", "openblas"} {
		t.Run(mode, func(t *testing.T) { f(t, newBE64(t, mode)) })
	}
}

func TestGradEncoder(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(1, 1))
	n, c, v, p := 7, 5, 6, 9
	inp, pos, bpos := int32s{1, 3, 3, 0, 5, 1, 2}, int32s{0, 1, 2, 3, 8, 2, 2}, int32s{0, 0, 1, 2, 1, 1, 3}
	wte, wpe, wbpe := randn(r, v*c, 1), randn(r, p*c, 1), randn(r, p*c, 1)
	gradCheck(t, map[string][]float64{"wte": wte, "wpe": wpe, "wbpe": wbpe},
		func() []float64 {
			out := zeros(n * c)
			be.EncoderForward(fl(out), inp, pos, bpos, fl(wte), fl(wpe), fl(wbpe), n, c)
			must(t, be)
			return out
		},
		func(dout []float64) map[string][]float64 {
			g := map[string][]float64{"wte": zeros(v * c), "wpe": zeros(p * c), "wbpe": zeros(p * c)}
			be.EncoderBackward(fl(g["wte"]), fl(g["wpe"]), fl(g["wbpe"]), fl(dout), inp, pos, bpos, n, c)
			must(t, be)
			return g
		})
}

func TestGradLayerNorm(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(2, 1))
	n, c := 6, 40
	x, w, b := randn(r, n*c, 2), randn(r, c, 1), randn(r, c, 1)
	for i := range x {
		x[i] += 0.5 // a non-zero mean
	}
	gradCheck(t, map[string][]float64{"inp": x, "w": w, "b": b},
		func() []float64 {
			out := zeros(n * c)
			be.LayerNormForward(fl(out), fl(zeros(n)), fl(zeros(n)), fl(x), fl(w), fl(b), n, c)
			must(t, be)
			return out
		},
		func(dout []float64) map[string][]float64 {
			out, mean, rstd := zeros(n*c), zeros(n), zeros(n)
			be.LayerNormForward(fl(out), fl(mean), fl(rstd), fl(x), fl(w), fl(b), n, c)
			must(t, be)
			g := map[string][]float64{"inp": zeros(n * c), "w": zeros(c), "b": zeros(c)}
			be.LayerNormBackward(fl(g["inp"]), fl(g["w"]), fl(g["b"]), fl(dout), fl(x), fl(w), fl(mean), fl(rstd), n, c)
			must(t, be)
			return g
		})
}

func TestGradMatmul(t *testing.T) {
	forEachBLAS(t, func(t *testing.T, be *Backend[float64]) {
		r := rand.New(rand.NewPCG(3, 1))
		n, c, oc := 150, 9, 13 // more rows than one gemm block
		x, w, b := randn(r, n*c, 1), randn(r, oc*c, 1), randn(r, oc, 1)
		gradCheck(t, map[string][]float64{"inp": x, "w": w, "bias": b},
			func() []float64 {
				out := zeros(n * oc)
				be.MatmulForward(fl(out), fl(x), fl(w), fl(b), n, c, oc)
				must(t, be)
				return out
			},
			func(dout []float64) map[string][]float64 {
				g := map[string][]float64{"inp": zeros(n * c), "w": zeros(oc * c), "bias": zeros(oc)}
				be.MatmulBackward(fl(g["inp"]), fl(g["w"]), fl(g["bias"]), fl(dout), fl(x), fl(w), n, c, oc)
				must(t, be)
				return g
			})
	})
}

// attnCase is a padded GLM batch for the attention checks: row 0 has Part A
// of 3 and 2 padding positions at the end, row 1 sep 0 (all causal), row 2
// sep T (all bidirectional).
var attnSeps = []int32{3, 0, 7}

func TestGradAttention(t *testing.T) {
	for _, p := range []float32{0, 0.3} {
		t.Run(fmt.Sprintf("dropout=%v", p), func(t *testing.T) {
			forEachBLAS(t, func(t *testing.T, be *Backend[float64]) {
				r := rand.New(rand.NewPCG(4, 1))
				b, tt, c, nh := 3, 7, 8, 2
				qkv := randn(r, b*tt*3*c, 1)
				sep := int32s(attnSeps)
				key := trainer.RNGKey{Seed: 5, Stream: 6}
				ns, nsc := be.AttentionSizes(b, tt, c, nh, p > 0)
				gradCheck(t, map[string][]float64{"qkv": qkv},
					func() []float64 {
						out := zeros(b * tt * c)
						be.AttentionForward(fl(out), fl(zeros(ns)), fl(qkv), sep, b, tt, c, nh, p, key)
						must(t, be)
						return out
					},
					func(dout []float64) map[string][]float64 {
						out, saved := zeros(b*tt*c), zeros(ns)
						be.AttentionForward(fl(out), fl(saved), fl(qkv), sep, b, tt, c, nh, p, key)
						must(t, be)
						g := zeros(len(qkv))
						be.AttentionBackward(fl(g), fl(zeros(nsc)), fl(dout), fl(qkv), fl(saved), sep, b, tt, c, nh, p, key)
						must(t, be)
						return map[string][]float64{"qkv": g}
					})
			})
		})
	}
}

// TestAttentionMask checks the visibility pattern of the probabilities:
// row i of a batch row with Part A length sep sees exactly the keys
// j < sep or j ≤ i.
func TestAttentionMask(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(4, 2))
	b, tt, c, nh := 3, 7, 8, 2
	qkv := randn(r, b*tt*3*c, 1)
	att := zeros(b * nh * tt * tt)
	be.AttentionForward(fl(zeros(b*tt*c)), fl(att), fl(qkv), int32s(attnSeps), b, tt, c, nh, 0, trainer.RNGKey{})
	must(t, be)
	for bi, sep := range attnSeps {
		for h := range nh {
			for i := range tt {
				var sum float64
				for j := range tt {
					v := att[((bi*nh+h)*tt+i)*tt+j]
					sum += v
					if vis := j < int(sep) || j <= i; vis != (v > 0) {
						t.Errorf("row %d head %d: query %d key %d has probability %v; visible = %v", bi, h, i, j, v, vis)
					}
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Errorf("row %d head %d query %d: probabilities sum to %v", bi, h, i, sum)
				}
			}
		}
	}
}

func TestGradGelu(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(5, 1))
	n := 300
	x := randn(r, n, 2)
	gradCheck(t, map[string][]float64{"inp": x},
		func() []float64 {
			out := zeros(n)
			be.GeluForward(fl(out), fl(x), n)
			must(t, be)
			return out
		},
		func(dout []float64) map[string][]float64 {
			g := zeros(n)
			be.GeluBackward(fl(g), fl(x), fl(dout), n)
			must(t, be)
			return map[string][]float64{"inp": g}
		})
}

func TestGradCrossEntropy(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(6, 1))
	n, v := 5, 11
	logits := randn(r, n*v, 3)
	tg := int32s{0, 10, 3, 3, 7}
	const scale = 0.25
	gradCheck(t, map[string][]float64{"logits": logits},
		func() []float64 {
			l := zeros(n)
			be.CrossEntropyForward(fl(l), nil, fl(logits), tg, n, v)
			must(t, be)
			for i := range l {
				l[i] *= scale
			}
			return l
		},
		func(dout []float64) map[string][]float64 {
			// dlogits = scale·dout_i·(softmax − onehot); the op takes one scale,
			// so run it per row.
			g := append([]float64(nil), logits...)
			be.CrossEntropyForward(fl(zeros(n)), fl(g), fl(g), tg, n, v)
			must(t, be)
			for i := range n {
				row := g[i*v : i*v+v]
				be.CrossEntropyBackward(fl(row), fl(row), tg[i:i+1], 1, v, scale*dout[i])
				must(t, be)
			}
			return map[string][]float64{"logits": g}
		})
}

// TestGradCrossEntropyMasked checks the loss GLM uses, Σ(CE·mask)/Σ mask,
// through the model's path: gather the masked rows, cross entropy with
// scale 1/Σ mask, scatter back.
func TestGradCrossEntropyMasked(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(7, 1))
	rows, c := 6, 4
	mask := []uint8{0, 1, 1, 0, 0, 1}
	var sel int32s
	for i, m := range mask {
		if m == 1 {
			sel = append(sel, int32(i))
		}
	}
	n := len(sel)
	h := randn(r, rows*c, 1)
	wte := randn(r, 9*c, 1)
	tg := int32s{4, 8, 0}
	scale := 1 / float64(n)
	gradCheck(t, map[string][]float64{"h": h, "wte": wte},
		func() []float64 {
			hs, lg, l := zeros(n*c), zeros(n*9), zeros(n)
			be.GatherRows(fl(hs), fl(h), sel, n, c)
			must(t, be)
			be.MatmulForward(fl(lg), fl(hs), fl(wte), nil, n, c, 9)
			must(t, be)
			be.CrossEntropyForward(fl(l), nil, fl(lg), tg, n, 9)
			must(t, be)
			var s float64
			for _, x := range l {
				s += x
			}
			return []float64{s * scale}
		},
		func(dout []float64) map[string][]float64 {
			hs, lg := zeros(n*c), zeros(n*9)
			be.GatherRows(fl(hs), fl(h), sel, n, c)
			must(t, be)
			be.MatmulForward(fl(lg), fl(hs), fl(wte), nil, n, c, 9)
			must(t, be)
			be.CrossEntropyForward(fl(zeros(n)), fl(lg), fl(lg), tg, n, 9)
			must(t, be)
			be.CrossEntropyBackward(fl(lg), fl(lg), tg, n, 9, scale*dout[0])
			must(t, be)
			dhs, dh, dw := zeros(n*c), zeros(rows*c), zeros(9*c)
			be.MatmulBackward(fl(dhs), fl(dw), nil, fl(lg), fl(hs), fl(wte), n, c, 9)
			must(t, be)
			be.ScatterAddRows(fl(dh), fl(dhs), sel, n, c)
			must(t, be)
			return map[string][]float64{"h": dh, "wte": dw}
		})
}

func TestGradDropoutResidual(t *testing.T) {
	be := newBE64(t, "off")
	r := rand.New(rand.NewPCG(8, 1))
	n := 10000 // more than one dropout block
	a, b := randn(r, n, 1), randn(r, n, 1)
	key := trainer.RNGKey{Seed: 1, Stream: 2}
	gradCheck(t, map[string][]float64{"a": a, "b": b},
		func() []float64 {
			d, out := zeros(n), zeros(n)
			be.Dropout(fl(d), fl(b), n, 0.25, key)
			must(t, be)
			be.ResidualForward(fl(out), fl(a), fl(d), n)
			must(t, be)
			return out
		},
		func(dout []float64) map[string][]float64 {
			da, db := zeros(n), zeros(n)
			copy(da, dout) // out = a + …: d a = d out, which the model passes on as it is
			be.Dropout(fl(db), fl(dout), n, 0.25, key)
			must(t, be)
			return map[string][]float64{"a": da, "b": db}
		})
	// the kept fraction is about 1 − p
	d := zeros(n)
	ones := make([]float64, n)
	for i := range ones {
		ones[i] = 1
	}
	be.Dropout(fl(d), fl(ones), n, 0.25, key)
	must(t, be)
	kept := 0
	for _, v := range d {
		if v != 0 {
			kept++
		}
	}
	if frac := float64(kept) / float64(n); math.Abs(frac-0.75) > 0.02 {
		t.Errorf("dropout 0.25 kept %.3f of the elements", frac)
	}
}

// TestThreadsDeterministic runs every reducing op with 1 and 3 threads and
// wants bitwise equal float32 results.
func TestThreadsDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 1))
	run := func(threads int, blas string) [][]float32 {
		be, err := New[float32](Options{Threads: threads, BLAS: blas})
		if err != nil {
			t.Skip(err)
		}
		defer be.Close()
		r := rand.New(rand.NewPCG(9, 1))
		f32 := func(n int) floats[float32] {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			return x
		}
		n, c, oc, v := 300, 48, 70, 50
		x, w, dy := f32(n*c), f32(oc*c), f32(n*oc)
		dx, dw, db := make(floats[float32], n*c), make(floats[float32], oc*c), make(floats[float32], oc)
		be.MatmulBackward(dx, dw, db, dy, x, w, n, c, oc)
		must(t, be)
		lnw, lnb, mean, rstd, lnout := f32(c), f32(c), make(floats[float32], n), make(floats[float32], n), make(floats[float32], n*c)
		be.LayerNormForward(lnout, mean, rstd, x, lnw, lnb, n, c)
		must(t, be)
		dlnw, dlnb := make(floats[float32], c), make(floats[float32], c)
		be.LayerNormBackward(make(floats[float32], n*c), dlnw, dlnb, x, x, lnw, mean, rstd, n, c)
		must(t, be)
		ids := make(int32s, n)
		for i := range ids {
			ids[i] = int32(i % v)
		}
		dwte := make(floats[float32], v*c)
		be.EncoderBackward(dwte, make(floats[float32], v*c), make(floats[float32], v*c), x, ids, ids, ids, n, c)
		must(t, be)
		ss, _ := be.SumSquares(dy)
		return [][]float32{dx, dw, db, dlnw, dlnb, dwte, {float32(ss)}}
	}
	_ = r
	for _, blas := range []string{"off", "openblas"} {
		a, b := run(1, blas), run(3, blas)
		for i := range a {
			for j := range a[i] {
				if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
					t.Fatalf("%s: result %d element %d: %v with 1 thread, %v with 3", blas, i, j, a[i][j], b[i][j])
				}
			}
		}
	}
}

func TestExp32(t *testing.T) {
	var worst float64
	for x := -87.0; x < 88; x += 0.001 {
		got := float64(exp32(float32(x)))
		want := math.Exp(float64(float32(x)))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 3e-7 {
		t.Errorf("exp32 relative error %.3g", worst)
	}
	if exp32(-100) != 0 || !math.IsInf(float64(exp32(100)), 1) {
		t.Errorf("exp32 limits: exp32(-100) = %v, exp32(100) = %v", exp32(-100), exp32(100))
	}
	// the inlined loop gives the same values
	xs := []float32{-1000, -87.4, -87.3, -20, -1, -1e-8, 0, 0.5, 10, 88.7, 89, 1000}
	ys := make([]float32, len(xs))
	exp32s(ys, xs)
	for i, x := range xs {
		if want := exp32(x); ys[i] != want && !(math.IsInf(float64(ys[i]), 1) && x > 88.37) {
			t.Errorf("exp32s(%v) = %v; exp32 gives %v", x, ys[i], want)
		}
	}
}

// TestStickyErrors checks the backend's error semantics: the first error
// of an op is kept, the ops after it do nothing, and Download, SumSquares,
// Sync and Err report it; Close leaves a backend whose ops fail.
func TestStickyErrors(t *testing.T) {
	be, err := New[float32](Options{BLAS: "off", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := be.Floats(4)
	if err := be.Err(); err != nil {
		t.Fatalf("a new backend has error %v", err)
	}
	be.Upload(x, []float32{1, 2, 3})
	want := "cpu: upload 3 floats into a buffer of 4"
	if err := be.Err(); err == nil || err.Error() != want {
		t.Fatalf("Err after a bad upload: %v; want %s", err, want)
	}
	be.Upload(x, []float32{1, 2, 3, 4}) // does nothing now
	be.GeluForward(x, x, 9)             // a second error: not kept
	got := []float32{-1, -1, -1, -1}
	for _, err := range []error{be.Download(got, x), be.Sync(), be.Err()} {
		if err == nil || err.Error() != want {
			t.Errorf("after the bad upload: %v; want the first error %s", err, want)
		}
	}
	if ss, err := be.SumSquares(x); err == nil || ss != 0 {
		t.Errorf("SumSquares after the bad upload: %v, %v", ss, err)
	}
	if got[0] != -1 || Host[float32](x)[0] != 0 {
		t.Errorf("ops ran after the error: downloaded %v, buffer %v", got, Host[float32](x))
	}
	if err := be.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	fresh, _ := New[float32](Options{BLAS: "off", Threads: 1})
	y, _ := fresh.Floats(2)
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}
	fresh.Zero(y)
	if err := fresh.Err(); err == nil || err.Error() != "cpu: the backend is closed" {
		t.Errorf("an op after Close: %v", err)
	}
}

// TestArgumentErrors checks the errors of the ops that validate their
// indices and shapes before touching memory: each leaves its output as it
// was and sticks the error named here.
func TestArgumentErrors(t *testing.T) {
	const b, tt, c, nh = 2, 4, 8, 2
	attn := func(be *Backend[float32], sep int32s, c, nh int, p float32, backward bool) {
		ns, nsc := be.AttentionSizes(b, tt, c, nh, p > 0)
		qkv, out, saved := floats[float32](make([]float32, b*tt*3*c)), floats[float32](make([]float32, b*tt*c)), floats[float32](make([]float32, ns))
		if backward {
			be.AttentionBackward(floats[float32](make([]float32, b*tt*3*c)), floats[float32](make([]float32, nsc)), out, qkv, saved, sep, b, tt, c, nh, p, trainer.RNGKey{})
			return
		}
		be.AttentionForward(out, saved, qkv, sep, b, tt, c, nh, p, trainer.RNGKey{})
	}
	src, dst := floats[float32]([]float32{1, 2, 3, 4, 5, 6}), floats[float32](make([]float32, 4))
	for _, tc := range []struct {
		name string
		op   func(be *Backend[float32])
		want string
	}{
		{"gather past the source", func(be *Backend[float32]) { be.GatherRows(dst, src, int32s{0, 3}, 2, 2) },
			"cpu: gather rows: row 3 outside a source of 3 rows"},
		{"gather negative row", func(be *Backend[float32]) { be.GatherRows(dst, src, int32s{-1, 0}, 2, 2) },
			"cpu: gather rows: row -1 outside a source of 3 rows"},
		{"scatter past the destination", func(be *Backend[float32]) { be.ScatterAddRows(dst, src, int32s{2, 0, 1}, 3, 2) },
			"cpu: scatter rows: row 2 outside a destination of 2 rows"},
		{"attention heads", func(be *Backend[float32]) { attn(be, int32s{1, 2}, c, 3, 0.1, false) },
			"cpu: attention: 8 channels do not split into 3 heads"},
		{"attention heads backward", func(be *Backend[float32]) { attn(be, int32s{1, 2}, c, 0, 0.1, true) },
			"cpu: attention: 8 channels do not split into 0 heads"},
		{"attention dropout", func(be *Backend[float32]) { attn(be, int32s{1, 2}, c, nh, 1, false) },
			"cpu: attention dropout probability 1; want 0 ≤ p < 1"},
		{"attention dropout backward", func(be *Backend[float32]) { attn(be, int32s{1, 2}, c, nh, -0.5, true) },
			"cpu: attention dropout probability -0.5; want 0 ≤ p < 1"},
		{"attention sep", func(be *Backend[float32]) { attn(be, int32s{1, 5}, c, nh, 0.1, false) },
			"cpu: attention: sep 5 of row 1 is outside [0, 4]"},
		{"attention sep backward", func(be *Backend[float32]) { attn(be, int32s{-1, 2}, c, nh, 0.1, true) },
			"cpu: attention: sep -1 of row 0 is outside [0, 4]"},
	} {
		be, err := New[float32](Options{BLAS: "off", Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		clear(dst)
		tc.op(be)
		if err := be.Err(); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v; want %s", tc.name, err, tc.want)
		}
		if dst[0] != 0 || dst[1] != 0 || src[0] != 1 {
			t.Errorf("%s: the op wrote after its error: dst %v, src %v", tc.name, dst, src)
		}
		be.Close()
	}
}

// The memory bound counts the buffers held: an allocation past it fails
// and leaves the backend usable, and a freed buffer stops counting.
func TestMemoryBound(t *testing.T) {
	be, err := New[float32](Options{Threads: 1, Memory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a, err := be.Floats(1 << 17) // 512 KiB
	if err != nil {
		t.Fatal(err)
	}
	if _, err := be.Int32s(1 << 17); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Floats(1); err == nil || !strings.Contains(err.Error(), "of Options.Memory") {
		t.Fatalf("one float past 1 MiB: %v; want the bound's error", err)
	}
	if _, err := be.Int32s(1 << 62); err == nil {
		t.Fatal("2^62 int32s (their bytes overflow int64): no error")
	}
	be.Free(a)
	if _, err := be.Floats(1 << 16); err != nil {
		t.Fatalf("256 KiB after freeing 512 KiB: %v", err)
	}
	if be.Err() != nil {
		t.Fatalf("a refused allocation stuck as the backend's error: %v", be.Err())
	}
}

// AttentionDecode gives the last n rows of what AttentionForward gives for
// the sequence of the first t rows, for every Part A length: the rows a
// key/value cache adds one at a time.
func TestAttentionDecode(t *testing.T) {
	forEachBLAS(t, func(t *testing.T, be *Backend[float64]) {
		r := rand.New(rand.NewPCG(8, 3))
		tt, c, nh := 9, 8, 2
		qkv := randn(r, tt*3*c, 1)
		for _, sep := range []int{0, 4, tt} {
			for _, n := range []int{1, 3} {
				for rows := n; rows <= tt; rows++ {
					sp := min(sep, rows)
					out := zeros(n * c)
					be.AttentionDecode(fl(out), fl(qkv), rows, n, sp, c, nh)
					must(t, be)
					full := zeros(rows * c)
					ns, _ := be.AttentionSizes(1, rows, c, nh, false)
					be.AttentionForward(fl(full), fl(zeros(ns)), fl(qkv[:rows*3*c]), int32s([]int32{int32(sp)}), 1, rows, c, nh, 0, trainer.RNGKey{})
					must(t, be)
					for i, want := range full[(rows-n)*c:] {
						if math.Abs(out[i]-want) > 1e-12 {
							t.Fatalf("sep %d, rows %d, n %d: element %d is %v; AttentionForward gives %v", sp, rows, n, i, out[i], want)
						}
					}
				}
			}
		}
		// Arguments out of range are errors, not reads past the buffers.
		be.AttentionDecode(fl(zeros(c)), fl(qkv), tt+1, 1, 0, c, nh)
		if be.Err() == nil {
			t.Error("AttentionDecode of more rows than qkv holds did not fail")
		}
	})
}
