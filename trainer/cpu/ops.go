package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/glmkit/glmkit/trainer"
)

// ----------------------------------------------------------------------------
// embeddings

// EncoderForward implements trainer.Backend.
// inp, pos, bpos (N) int32; wte (V,C), wpe (P,C), wbpe (P,C) → out (N,C)
func (be *Backend[T]) EncoderForward(out, inp, pos, bpos, wte, wpe, wbpe trainer.Buf, n, c int) {
	e, ok := be.embeddings("encoder forward", need{"out", out, n * c}, inp, pos, bpos, wte, wpe, wbpe, n, c)
	if !ok {
		return
	}
	be.par(n, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := e.x[i*c : i*c+c]
			we := e.wte[int(e.tok[i])*c : int(e.tok[i])*c+c]
			pe := e.wpe[int(e.pos[i])*c : int(e.pos[i])*c+c]
			bb := e.wbpe[int(e.bpos[i])*c : int(e.bpos[i])*c+c]
			for j := range row {
				row[j] = we[j] + pe[j] + bb[j]
			}
		}
	})
}

// EncoderBackward implements trainer.Backend. Each goroutine owns a block of
// channels and walks every row in order, so the scatter-add needs no
// reduction and is deterministic.
// dout (N,C); inp, pos, bpos (N) → dwte (V,C), dwpe (P,C), dwbpe (P,C) +=
func (be *Backend[T]) EncoderBackward(dwte, dwpe, dwbpe, dout, inp, pos, bpos trainer.Buf, n, c int) {
	e, ok := be.embeddings("encoder backward", need{"dout", dout, n * c}, inp, pos, bpos, dwte, dwpe, dwbpe, n, c)
	if !ok {
		return
	}
	be.par(c, 16, func(lo, hi int) {
		for i := range n {
			g := e.x[i*c+lo : i*c+hi]
			we := e.wte[int(e.tok[i])*c+lo : int(e.tok[i])*c+hi]
			pe := e.wpe[int(e.pos[i])*c+lo : int(e.pos[i])*c+hi]
			bpe := e.wbpe[int(e.bpos[i])*c+lo : int(e.bpos[i])*c+hi]
			for j, x := range g {
				we[j] += x
				pe[j] += x
				bpe[j] += x
			}
		}
	})
}

// embeddingViews are the buffers of the encoder ops: the (N,C) output or
// its gradient, the three id columns (N), and the three tables (or their
// gradients).
type embeddingViews[T Float] struct {
	x              []T
	tok, pos, bpos []int32
	wte, wpe, wbpe []T
}

// embeddings checks the encoder ops' buffers (x the (N,C) one) and that
// every id is a row of its table (C > 0), and returns their views; false
// when a check failed (the error sticks).
func (be *Backend[T]) embeddings(op string, x need, inp, pos, bpos, wte, wpe, wbpe trainer.Buf, n, c int) (embeddingViews[T], bool) {
	if !be.ok(check(op, x, need{"inp", inp, n}, need{"pos", pos, n}, need{"bpos", bpos, n})) {
		return embeddingViews[T]{}, false
	}
	e := embeddingViews[T]{f[T](x.b), ints(inp), ints(pos), ints(bpos), f[T](wte), f[T](wpe), f[T](wbpe)}
	if c == 0 {
		return e, true
	}
	for _, t := range []struct {
		name string
		ids  []int32
		rows int
	}{{"token", e.tok[:n], len(e.wte) / c}, {"position", e.pos[:n], len(e.wpe) / c}, {"block position", e.bpos[:n], len(e.wbpe) / c}} {
		for i, id := range t.ids {
			if id < 0 || int(id) >= t.rows {
				return e, be.ok(fmt.Errorf("cpu: %s: %s id %d at %d is outside the table of %d rows", op, t.name, id, i, t.rows))
			}
		}
	}
	return e, true
}

// ----------------------------------------------------------------------------
// layer norm

const lnEps = 1e-5

// LayerNormForward implements trainer.Backend.
// inp (N,C); w, b (C) → out (N,C), mean (N), rstd (N)
func (be *Backend[T]) LayerNormForward(out, mean, rstd, inp, w, b trainer.Buf, n, c int) {
	if !be.ok(check("layernorm forward", need{"out", out, n * c}, need{"mean", mean, n}, need{"rstd", rstd, n},
		need{"inp", inp, n * c}, need{"w", w, c}, need{"b", b, c})) {
		return
	}
	o, mu, rs, x, wt, bs := f[T](out), f[T](mean), f[T](rstd), f[T](inp), f[T](w)[:c], f[T](b)[:c]
	be.par(n, 32, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := x[i*c : i*c+c]
			var s float64
			for _, v := range row {
				s += float64(v)
			}
			m := s / float64(c)
			var ss float64
			for _, v := range row {
				d := float64(v) - m
				ss += d * d
			}
			r := 1 / math.Sqrt(ss/float64(c)+lnEps)
			mT, rT := T(m), T(r)
			dst := o[i*c : i*c+c]
			for j, v := range row {
				dst[j] = (v-mT)*rT*wt[j] + bs[j]
			}
			mu[i], rs[i] = mT, rT
		}
	})
}

// LayerNormBackward implements trainer.Backend: rows in parallel for dinp,
// then blocks of channels in parallel for dw and db.
// dout, inp (N,C); w (C); mean, rstd (N) → dinp (N,C), dw, db (C) +=
func (be *Backend[T]) LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd trainer.Buf, n, c int) {
	if !be.ok(check("layernorm backward", need{"dinp", dinp, n * c}, need{"dw", dw, c}, need{"db", db, c},
		need{"dout", dout, n * c}, need{"inp", inp, n * c}, need{"w", w, c}, need{"mean", mean, n}, need{"rstd", rstd, n})) {
		return
	}
	dx, dwt, dbs, dy, x, wt, mu, rs := f[T](dinp), f[T](dw), f[T](db), f[T](dout), f[T](inp), f[T](w)[:c], f[T](mean), f[T](rstd)
	be.par(n, 32, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, gr, dr := x[i*c:i*c+c], dy[i*c:i*c+c], dx[i*c:i*c+c]
			m, r := mu[i], rs[i]
			var dmean, dnormMean T
			for j, g := range gr {
				dnorm := wt[j] * g
				dmean += dnorm
				dnormMean += dnorm * (xr[j] - m) * r
			}
			dmean /= T(c)
			dnormMean /= T(c)
			for j, g := range gr {
				norm := (xr[j] - m) * r
				dr[j] += (wt[j]*g - dmean - norm*dnormMean) * r
			}
		}
	})
	be.par(c, 16, func(lo, hi int) {
		gw, gb := dwt[lo:hi], dbs[lo:hi]
		for i := range n {
			xr, gr := x[i*c+lo:i*c+hi], dy[i*c+lo:i*c+hi]
			m, r := mu[i], rs[i]
			for j, g := range gr {
				gw[j] += (xr[j] - m) * r * g
				gb[j] += g
			}
		}
	})
}

// ----------------------------------------------------------------------------
// linear layers

// MatmulForward implements trainer.Backend: out is set to the bias, then
// the product is added (PyTorch's addmm).
// inp (N,C); w (OC,C); bias (OC) → out (N,OC) = inp·wᵀ + bias
func (be *Backend[T]) MatmulForward(out, inp, w, bias trainer.Buf, n, c, oc int) {
	nb := oc
	if bias == nil {
		nb = 0
	}
	if !be.ok(check("matmul forward", need{"out", out, n * oc}, need{"inp", inp, n * c}, need{"w", w, oc * c}, need{"bias", bias, nb})) {
		return
	}
	o, x, wt := f[T](out), f[T](inp), f[T](w)
	var beta T
	if bias != nil {
		bs := f[T](bias)[:oc]
		be.par(n, 64, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				copy(o[i*oc:i*oc+oc], bs)
			}
		})
		beta = 1
	}
	be.gemm(false, true, n, oc, c, 1, x, c, wt, c, beta, o, oc)
}

// MatmulBackward implements trainer.Backend.
// dout (N,OC); inp (N,C); w (OC,C) → dinp (N,C), dw (OC,C), dbias (OC) +=
func (be *Backend[T]) MatmulBackward(dinp, dw, dbias, dout, inp, w trainer.Buf, n, c, oc int) {
	ni, nb := n*c, oc
	if dinp == nil {
		ni = 0
	}
	if dbias == nil {
		nb = 0
	}
	if !be.ok(check("matmul backward", need{"dinp", dinp, ni}, need{"dw", dw, oc * c}, need{"dbias", dbias, nb},
		need{"dout", dout, n * oc}, need{"inp", inp, n * c}, need{"w", w, oc * c})) {
		return
	}
	dy, x, wt := f[T](dout), f[T](inp), f[T](w)
	if dinp != nil {
		// dinp (N,C) += dout (N,OC) · w (OC,C)
		be.gemm(false, false, n, c, oc, 1, dy, oc, wt, c, 1, f[T](dinp), c)
	}
	// dw (OC,C) += doutᵀ (OC,N) · inp (N,C)
	be.gemm(true, false, oc, c, n, 1, dy, oc, x, c, 1, f[T](dw), c)
	if dbias != nil {
		db := f[T](dbias)
		be.par(oc, 64, func(lo, hi int) {
			acc := make([]T, hi-lo)
			for i := range n {
				for j, g := range dy[i*oc+lo : i*oc+hi] {
					acc[j] += g
				}
			}
			for j, a := range acc {
				db[lo+j] += a
			}
		})
	}
}

// ----------------------------------------------------------------------------
// elementwise

// geluK is √(2/π), the constant of GLM's gelu_impl (mpu/transformer.py
// writes 0.7978845608028654; glm-reference.md rounds it to 0.79788456,
// the same float32).
const geluK = 0.7978845608028654

// geluBlock is the number of elements GeLU handles at a time (its tanh
// runs over a slice).
const geluBlock = 256

// GeluForward implements trainer.Backend.
// inp (N) → out (N) = 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³)))
func (be *Backend[T]) GeluForward(out, inp trainer.Buf, n int) {
	if !be.ok(check("gelu forward", need{"out", out, n}, need{"inp", inp, n})) {
		return
	}
	o, x := f[T](out), f[T](inp)
	be.par(n, 1<<14, func(lo, hi int) {
		var buf [geluBlock]T
		for b := lo; b < hi; b += geluBlock {
			xs := x[b:min(b+geluBlock, hi)]
			t := geluTanh(buf[:len(xs)], xs)
			dst := o[b : b+len(xs)]
			for i, v := range xs {
				dst[i] = 0.5 * v * (1 + t[i])
			}
		}
	})
}

// GeluBackward implements trainer.Backend.
// inp, dout (N) → dinp (N) +=
func (be *Backend[T]) GeluBackward(dinp, inp, dout trainer.Buf, n int) {
	if !be.ok(check("gelu backward", need{"dinp", dinp, n}, need{"inp", inp, n}, need{"dout", dout, n})) {
		return
	}
	dx, x, dy := f[T](dinp), f[T](inp), f[T](dout)
	be.par(n, 1<<14, func(lo, hi int) {
		var buf [geluBlock]T
		for b := lo; b < hi; b += geluBlock {
			xs := x[b:min(b+geluBlock, hi)]
			t := geluTanh(buf[:len(xs)], xs)
			gs, ds := dy[b:b+len(xs)], dx[b:b+len(xs)]
			for i, v := range xs {
				du := geluK * (1 + 3*0.044715*v*v)
				ds[i] += gs[i] * (0.5*(1+t[i]) + 0.5*v*(1-t[i]*t[i])*du)
			}
		}
	})
}

// geluTanh sets t (len(xs)) to tanh(√(2/π)·(x+0.044715·x³)) of each x of
// xs and returns it.
func geluTanh[T Float](t, xs []T) []T {
	for i, v := range xs {
		t[i] = geluK * (v + 0.044715*v*v*v)
	}
	tanhInPlace(t)
	return t
}

// ResidualForward implements trainer.Backend.
// a, b (N) → out (N) = a + b
func (be *Backend[T]) ResidualForward(out, a, b trainer.Buf, n int) {
	if !be.ok(check("residual forward", need{"out", out, n}, need{"a", a, n}, need{"b", b, n})) {
		return
	}
	o, x, y := f[T](out), f[T](a), f[T](b)
	be.par(n, 1<<15, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = x[i] + y[i]
		}
	})
}

// dropBlock is the number of elements that share one PCG stream in Dropout.
const dropBlock = 1 << 12

// dropPCG starts the PCG stream of one block of a dropout mask: element i of
// a mask is decided by draw i mod dropBlock of stream i / dropBlock.
func dropPCG(key trainer.RNGKey, block uint64) *rand.PCG {
	return rand.NewPCG(key.Block(block))
}

// dropThreshold turns p into a threshold on 24-bit draws: an element is kept
// iff draw>>40 ≥ threshold.
func dropThreshold(p float32) uint64 { return uint64(math.Round(float64(p) * (1 << 24))) }

// Dropout implements trainer.Backend.
// src (N) → dst (N)
func (be *Backend[T]) Dropout(dst, src trainer.Buf, n int, p float32, key trainer.RNGKey) {
	if !be.ok(check("dropout", need{"dst", dst, n}, need{"src", src, n})) {
		return
	}
	if !(p >= 0 && p < 1) {
		be.ok(fmt.Errorf("cpu: dropout probability %v; want 0 ≤ p < 1", p))
		return
	}
	d, s := f[T](dst), f[T](src)
	if p == 0 {
		copy(d[:n], s[:n])
		return
	}
	thr := dropThreshold(p)
	scale := T(1 / (1 - float64(p)))
	be.par(n, dropBlock, func(lo, hi int) {
		r := dropPCG(key, uint64(lo/dropBlock))
		for i := lo; i < hi; i++ {
			if r.Uint64()>>40 >= thr {
				d[i] = s[i] * scale
			} else {
				d[i] = 0
			}
		}
	})
}

// GatherRows implements trainer.Backend.
// src (M,C); idx (N) → dst (N,C)
func (be *Backend[T]) GatherRows(dst, src, idx trainer.Buf, n, c int) {
	be.rowPairs("gather rows", need{"dst", dst, n * c}, src, "source", idx, n, c, func(dr, sr []T) { copy(dr, sr) })
}

// ScatterAddRows implements trainer.Backend. idx must not repeat.
// src (N,C); idx (N) → dst (M,C) +=
func (be *Backend[T]) ScatterAddRows(dst, src, idx trainer.Buf, n, c int) {
	be.rowPairs("scatter rows", need{"src", src, n * c}, dst, "destination", idx, n, c, func(sr, dr []T) {
		for j, x := range sr {
			dr[j] += x
		}
	})
}

// rowPairs runs a gather or a scatter: row i of the dense matrix (N,C)
// pairs with row idx[i] of table (M,C), which op gathers from or scatters
// into (its side), and fn gets each pair of rows, in parallel over i (so
// a scatter's idx must not repeat). An index outside table is an error.
func (be *Backend[T]) rowPairs(op string, dense need, table trainer.Buf, side string, idx trainer.Buf, n, c int, fn func(dr, tr []T)) {
	if !be.ok(check(op, dense, need{"idx", idx, n})) {
		return
	}
	d, t, ix := f[T](dense.b), f[T](table), ints(idx)
	for _, r := range ix[:n] {
		if r < 0 || (int(r)+1)*c > len(t) {
			rows := 0
			if c > 0 {
				rows = len(t) / c
			}
			be.ok(fmt.Errorf("cpu: %s: row %d outside a %s of %d rows", op, r, side, rows))
			return
		}
	}
	be.par(n, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := int(ix[i])
			fn(d[i*c:i*c+c], t[r*c:r*c+c])
		}
	})
}

// ----------------------------------------------------------------------------
// loss

// CrossEntropyForward implements trainer.Backend; sums run in float64.
// logits (N,V); targets (N) → losses (N), probs (N,V)
func (be *Backend[T]) CrossEntropyForward(losses, probs, logits, targets trainer.Buf, n, v int) {
	np := n * v
	if probs == nil {
		np = 0
	}
	if !be.ok(check("cross entropy forward", need{"losses", losses, n}, need{"probs", probs, np},
		need{"logits", logits, n * v}, need{"targets", targets, n})) {
		return
	}
	ls, pr, lg, tg := f[T](losses), f[T](probs), f[T](logits), ints(targets)
	if !be.ok(checkTargets(tg[:n], v)) {
		return
	}
	f64 := is64[T]()
	be.par(n, 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := lg[i*v : i*v+v]
			mx := row[0]
			for _, x := range row {
				mx = max(mx, x)
			}
			target := row[tg[i]]
			var s float64
			switch {
			case pr != nil: // exp into probs, then normalise
				dst := pr[i*v : i*v+v]
				for j, x := range row {
					dst[j] = x - mx
				}
				expInPlace(dst)
				for _, e := range dst {
					s += float64(e)
				}
				inv := T(1 / s)
				for j := range dst {
					dst[j] *= inv
				}
			case f64:
				for _, x := range row {
					s += math.Exp(float64(x - mx))
				}
			default:
				for _, x := range row {
					s += float64(exp32(float32(x - mx)))
				}
			}
			ls[i] = T(float64(mx) + math.Log(s) - float64(target))
		}
	})
}

// CrossEntropyBackward implements trainer.Backend.
// probs (N,V); targets (N) → dlogits (N,V) = scale·(probs − onehot)
func (be *Backend[T]) CrossEntropyBackward(dlogits, probs, targets trainer.Buf, n, v int, scale float64) {
	if !be.ok(check("cross entropy backward", need{"dlogits", dlogits, n * v}, need{"probs", probs, n * v}, need{"targets", targets, n})) {
		return
	}
	dl, pr, tg := f[T](dlogits), f[T](probs), ints(targets)
	if !be.ok(checkTargets(tg[:n], v)) {
		return
	}
	k := T(scale)
	be.par(n, 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			src, dst := pr[i*v:i*v+v], dl[i*v:i*v+v]
			for j, p := range src {
				dst[j] = k * p
			}
			dst[tg[i]] -= k
		}
	})
}

func checkTargets(tg []int32, v int) error {
	for i, t := range tg {
		if t < 0 || int(t) >= v {
			return fmt.Errorf("cpu: cross entropy: target %d at row %d is outside the vocabulary of %d", t, i, v)
		}
	}
	return nil
}

// ----------------------------------------------------------------------------
// optimizer

// sumBlock is the number of elements summed into one partial in SumSquares.
const sumBlock = 1 << 15

// SumSquares implements trainer.Backend: float64 partials over fixed
// blocks, added in block order.
func (be *Backend[T]) SumSquares(x trainer.Buf) (float64, error) {
	if !be.ok(nil) {
		return 0, be.err
	}
	s := f[T](x)
	parts := make([]float64, (len(s)+sumBlock-1)/sumBlock)
	be.par(len(s), sumBlock, func(lo, hi int) {
		var acc float64
		for _, v := range s[lo:hi] {
			acc += float64(v) * float64(v)
		}
		parts[lo/sumBlock] = acc
	})
	var sum float64
	for _, p := range parts {
		sum += p
	}
	return sum, nil
}

// AdamW implements trainer.Backend with PyTorch's AdamW update in the
// backend's precision (bias corrections in float64).
func (be *Backend[T]) AdamW(p, g, m, v trainer.Buf, s trainer.AdamWStep) {
	n := p.Len()
	if !be.ok(check("adamw", need{"g", g, n}, need{"m", m, n}, need{"v", v, n})) {
		return
	}
	if s.T < 1 {
		be.ok(fmt.Errorf("cpu: adamw step %d; want ≥ 1", s.T))
		return
	}
	ps, gs, ms, vs := f[T](p), f[T](g), f[T](m), f[T](v)
	bc1 := 1 - math.Pow(s.Beta1, float64(s.T))
	bc2 := 1 - math.Pow(s.Beta2, float64(s.T))
	stepSize, invSqrtBC2 := T(s.LR/bc1), T(1/math.Sqrt(bc2))
	decay, scale, eps := T(1-s.LR*s.WeightDecay), T(s.GradScale), T(s.Eps)
	b1, b2 := T(s.Beta1), T(s.Beta2)
	be.par(n, 1<<14, func(lo, hi int) {
		ps, gs, ms, vs := ps[lo:hi], gs[lo:hi], ms[lo:hi], vs[lo:hi]
		for i, gi := range gs {
			gi *= scale
			mi := b1*ms[i] + (1-b1)*gi
			vi := b2*vs[i] + (1-b2)*gi*gi
			ms[i], vs[i] = mi, vi
			ps[i] = ps[i]*decay - stepSize*mi/(T(math.Sqrt(float64(vi)))*invSqrtBC2+eps)
		}
	})
}
