package cpu

import (
	"fmt"
	"math"

	"github.com/glmkit/glmkit/trainer"
)

// visible is the number of keys row i of a batch row with Part A length sep
// sees: key j is visible iff j < sep or j ≤ i, which is the prefix
// [0, max(sep, i+1)). Padding rows (after Part B) are causal, and since
// sep ≤ the real length no real row sees them.
func visible(sep, i, t int) int { return min(max(sep, i+1), t) }

// attnKeep returns the dropout decisions of row i of one head's attention
// probabilities for its n visible keys: the stream of (key, bh·T+i), one
// draw per visible key in order. keep is reused.
func attnKeep(keep []bool, key trainer.RNGKey, row uint64, n int, thr uint64) []bool {
	r := dropPCG(key, row)
	keep = keep[:n]
	for j := range keep {
		keep[j] = r.Uint64()>>40 >= thr
	}
	return keep
}

// attnArgs checks what both directions of attention share, as the CUDA
// backend's attnArgs does: the heads, the dropout probability (before the
// saved state is split by it) and the separators.
func attnArgs(sep []int32, t, c, nh int, p float32) error {
	switch {
	case nh <= 0 || c%nh != 0:
		return fmt.Errorf("cpu: attention: %d channels do not split into %d heads", c, nh)
	case !(p >= 0 && p < 1):
		return fmt.Errorf("cpu: attention dropout probability %v; want 0 ≤ p < 1", p)
	}
	for b, s := range sep {
		if s < 0 || int(s) > t {
			return fmt.Errorf("cpu: attention: sep %d of row %d is outside [0, %d]", s, b, t)
		}
	}
	return nil
}

// attnConsts returns the head size, the scale of the scores and the
// dropout's threshold and scale of both directions.
func attnConsts[T Float](c, nh int, p float32) (hs int, scale T, thr uint64, drop T) {
	hs = c / nh
	return hs, T(1 / math.Sqrt(float64(hs))), dropThreshold(p), T(1 / (1 - float64(p)))
}

// AttentionSizes implements trainer.Backend: the CPU saves the attention
// probabilities att (B,NH,T,T) and, with dropout, the dropped-out ones attd
// (B,NH,T,T) after them; the backward pass needs one (B,NH,T,T) scratch.
func (be *Backend[T]) AttentionSizes(b, t, c, nh int, dropout bool) (saved, scratch int) {
	n := b * nh * t * t
	if dropout {
		return 2 * n, n
	}
	return n, n
}

// attSaved splits the saved state into att and attd (nil without dropout).
func attSaved(saved trainer.Buf, n int, p float32) (att, attd trainer.Buf) {
	if p == 0 {
		return saved.Slice(0, n), nil
	}
	return saved.Slice(0, n), saved.Slice(n, n)
}

// AttentionForward implements trainer.Backend, one (batch row, head) pair
// per task: scores by a matrix product, masked softmax row by row, then the
// product with v.
// qkv (B,T,3C); sep (B) → out (B,T,C), saved = att (B,NH,T,T) [+ attd (B,NH,T,T)]
func (be *Backend[T]) AttentionForward(out, saved, qkv, sep trainer.Buf, b, t, c, nh int, p float32, key trainer.RNGKey) {
	ns, _ := be.AttentionSizes(b, t, c, nh, p > 0)
	if !be.ok(check("attention forward", need{"out", out, b * t * c}, need{"saved", saved, ns},
		need{"qkv", qkv, b * t * 3 * c}, need{"sep", sep, b})) {
		return
	}
	sp := ints(sep)
	if !be.ok(attnArgs(sp[:b], t, c, nh, p)) {
		return
	}
	att, attd := attSaved(saved, b*nh*t*t, p)
	o, a, ad, x := f[T](out), f[T](att), f[T](attd), f[T](qkv)
	hs, scale, thr, drop := attnConsts[T](c, nh, p)
	be.eachHead(b, nh, t, p, func(bh, bi, h int, keep []bool) {
		q := x[bi*t*3*c+h*hs:]
		k := q[c:]
		v := q[2*c:]
		s := a[bh*t*t : (bh+1)*t*t]
		// s (T,T) = scale · q (T,hs) · kᵀ (hs,T)
		be.gemm1(false, true, t, t, hs, scale, q, 3*c, k, 3*c, 0, s, t)
		sepb := int(sp[bi])
		for i := range t {
			row := s[i*t : i*t+t]
			n := visible(sepb, i, t)
			softmaxPrefix(row, n)
		}
		pr := s
		if p > 0 {
			pr = ad[bh*t*t : (bh+1)*t*t]
			for i := range t {
				n := visible(sepb, i, t)
				kp := attnKeep(keep, key, uint64(bh*t+i), n, thr)
				src, dst := s[i*t:i*t+t], pr[i*t:i*t+t]
				for j := range n {
					if kp[j] {
						dst[j] = src[j] * drop
					} else {
						dst[j] = 0
					}
				}
				clear(dst[n:])
			}
		}
		// out (T,hs) = pr (T,T) · v (T,hs), written into columns h·hs of (B,T,C)
		be.gemm1(false, false, t, hs, t, 1, pr, t, v, 3*c, 0, o[bi*t*c+h*hs:], c)
	})
}

// eachHead runs fn for every (batch row bi, head h) pair, bh = bi·nh+h,
// one pair a task; keep is its worker's dropout scratch of t entries (nil
// without dropout).
func (be *Backend[T]) eachHead(b, nh, t int, p float32, fn func(bh, bi, h int, keep []bool)) {
	be.par(b*nh, 1, func(lo, hi int) {
		var keep []bool
		if p > 0 {
			keep = make([]bool, t)
		}
		for bh := lo; bh < hi; bh++ {
			fn(bh, bh/nh, bh%nh, keep)
		}
	})
}

// softmaxPrefix replaces row[:n] by its softmax and zeroes row[n:].
func softmaxPrefix[T Float](row []T, n int) {
	mx := row[0]
	for _, x := range row[:n] {
		mx = max(mx, x)
	}
	for j := range row[:n] {
		row[j] -= mx
	}
	expInPlace(row[:n])
	var sum T
	for _, x := range row[:n] {
		sum += x
	}
	inv := 1 / sum
	for j := range row[:n] {
		row[j] *= inv
	}
	clear(row[n:])
}

// AttentionBackward implements trainer.Backend.
// dout (B,T,C); qkv (B,T,3C); saved; scratch (B,NH,T,T) → dqkv (B,T,3C) +=
func (be *Backend[T]) AttentionBackward(dqkv, scratch, dout, qkv, saved, sep trainer.Buf, b, t, c, nh int, p float32, key trainer.RNGKey) {
	ns, nsc := be.AttentionSizes(b, t, c, nh, p > 0)
	if !be.ok(check("attention backward", need{"dqkv", dqkv, b * t * 3 * c}, need{"scratch", scratch, nsc},
		need{"dout", dout, b * t * c}, need{"qkv", qkv, b * t * 3 * c}, need{"saved", saved, ns}, need{"sep", sep, b})) {
		return
	}
	sp := ints(sep)
	if !be.ok(attnArgs(sp[:b], t, c, nh, p)) {
		return
	}
	att, attd := attSaved(saved, b*nh*t*t, p)
	dx, sc, dy, x, a, ad := f[T](dqkv), f[T](scratch), f[T](dout), f[T](qkv), f[T](att), f[T](attd)
	hs, scale, thr, drop := attnConsts[T](c, nh, p)
	be.eachHead(b, nh, t, p, func(bh, bi, h int, keep []bool) {
		off := bi*t*3*c + h*hs
		q, k, v := x[off:], x[off+c:], x[off+2*c:]
		dq, dk, dv := dx[off:], dx[off+c:], dx[off+2*c:]
		do := dy[bi*t*c+h*hs:]
		pa := a[bh*t*t : (bh+1)*t*t]
		pr := pa
		if p > 0 {
			pr = ad[bh*t*t : (bh+1)*t*t]
		}
		ds := sc[bh*t*t : (bh+1)*t*t]
		// dpr (T,T) = dout (T,hs) · vᵀ (hs,T)
		be.gemm1(false, true, t, t, hs, 1, do, c, v, 3*c, 0, ds, t)
		// dv (T,hs) += prᵀ (T,T) · dout (T,hs)
		be.gemm1(true, false, t, hs, t, 1, pr, t, do, c, 1, dv, 3*c)
		sepb := int(sp[bi])
		for i := range t {
			n := visible(sepb, i, t)
			drow, arow := ds[i*t:i*t+t], pa[i*t:i*t+t]
			if p > 0 { // through the dropout mask to the probabilities
				kp := attnKeep(keep, key, uint64(bh*t+i), n, thr)
				for j := range n {
					if kp[j] {
						drow[j] *= drop
					} else {
						drow[j] = 0
					}
				}
			}
			// softmax backward: ds = att ∘ (datt − Σ_j datt·att)
			var dot T
			for j := range n {
				dot += drow[j] * arow[j]
			}
			for j := range n {
				drow[j] = arow[j] * (drow[j] - dot)
			}
			clear(drow[n:])
		}
		// dq (T,hs) += scale · ds (T,T) · k (T,hs)
		be.gemm1(false, false, t, hs, t, scale, ds, t, k, 3*c, 1, dq, 3*c)
		// dk (T,hs) += scale · dsᵀ (T,T) · q (T,hs)
		be.gemm1(true, false, t, hs, t, scale, ds, t, q, 3*c, 1, dk, 3*c)
	})
}

// AttentionDecode implements trainer.KVDecoder: the attention of the last n
// of t rows of one sequence, whose fused q|k|v rows are the first t of
// qkv, as AttentionForward computes those rows (no dropout), one head a
// task.
// qkv (≥t, 3C) → out (n, C)
func (be *Backend[T]) AttentionDecode(out, qkv trainer.Buf, t, n, sep, c, nh int) {
	if !be.ok(check("attention decode", need{"out", out, n * c}, need{"qkv", qkv, t * 3 * c})) {
		return
	}
	switch {
	case n < 1 || n > t:
		be.ok(fmt.Errorf("cpu: attention decode: %d rows of %d", n, t))
		return
	case sep < 0 || sep > t:
		be.ok(fmt.Errorf("cpu: attention decode: sep %d is outside [0, %d]", sep, t))
		return
	}
	if !be.ok(attnArgs(nil, t, c, nh, 0)) {
		return
	}
	o, x := f[T](out), f[T](qkv)
	hs, scale, _, _ := attnConsts[T](c, nh, 0)
	be.par(nh, 1, func(lo, hi int) {
		s := make([]T, n*t)
		for h := lo; h < hi; h++ {
			q := x[(t-n)*3*c+h*hs:]
			// s (n,t) = scale · q (n,hs) · kᵀ (hs,t)
			be.gemm1(false, true, n, t, hs, scale, q, 3*c, x[c+h*hs:], 3*c, 0, s, t)
			for i := range n {
				softmaxPrefix(s[i*t:i*t+t], visible(sep, t-n+i, t))
			}
			// out (n,hs) = s (n,t) · v (t,hs), into columns h·hs of (n,C)
			be.gemm1(false, false, n, hs, t, 1, s, t, x[2*c+h*hs:], 3*c, 0, o[h*hs:], c)
		}
	})
}
