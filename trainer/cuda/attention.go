package cuda

import (
	"fmt"
	"math"

	"github.com/glmkit/glmkit/trainer"
)

// Attention is naive: q, k and v are permuted to (B,NH,T,hs), the scores
// (B,NH,T,T) come from one strided batched GEMM, a kernel applies GLM's
// mask, the softmax and the dropout row by row, and a second batched GEMM
// multiplies by v. The saved state is the CPU backend's: the probabilities
// and, with dropout, the dropped-out probabilities.

// AttentionSizes implements trainer.Backend: the saved state is att
// (B,NH,T,T) and, with dropout, attd (B,NH,T,T) after it; the backward
// scratch holds the (B,NH,T,T) gradient of the probabilities.
func (be *Backend) AttentionSizes(b, t, c, nh int, dropout bool) (saved, scratch int) {
	n := b * nh * t * t
	if dropout {
		return 2 * n, n
	}
	return n, n
}

// attnArgs checks what both directions share.
func attnArgs(ck *checker, sep buf, b, t, c, nh int, p float32) {
	if ck.err != nil {
		return
	}
	switch {
	case nh <= 0 || c%nh != 0:
		ck.err = fmt.Errorf("cuda: attention: %d channels do not split into %d heads", c, nh)
	case !(p >= 0 && p < 1):
		ck.err = fmt.Errorf("cuda: attention dropout probability %v; want 0 ≤ p < 1", p)
	}
	if ck.err != nil {
		return
	}
	for i, s := range sep.ints()[:b] {
		if s < 0 || int(s) > t {
			ck.err = fmt.Errorf("cuda: attention: sep %d of row %d is outside [0, %d]", s, i, t)
			return
		}
	}
}

// attnDims is what both directions derive from their arguments.
type attnDims struct {
	hs, nt  int     // the head size; the elements of one (B,NH,T,T) tensor
	btc     uint64  // the elements of one (B,T,C) tensor
	att     uint64  // the saved probabilities (B,NH,T,T)
	attd    uint64  // with dropout, the dropped-out ones after them; else 0
	dropout int     // the kernels' dropout flag, 1 with dropout
	scale   float32 // of the scores, 1/√hs
	dscale  float32 // of the kept probabilities, 1/(1−p)
}

func newAttnDims(saved buf, b, t, c, nh int, p float32) attnDims {
	d := attnDims{hs: c / nh, nt: b * nh * t * t, btc: uint64(b * t * c), att: saved.ptr()}
	if p > 0 {
		d.attd, d.dropout = d.att+4*uint64(d.nt), 1
	}
	d.scale = float32(1 / math.Sqrt(float64(d.hs)))
	d.dscale = float32(1 / (1 - float64(p)))
	return d
}

// AttentionForward implements trainer.Backend.
// qkv (B,T,3C); sep (B) → out (B,T,C), saved = att (B,NH,T,T) [+ attd (B,NH,T,T)]
func (be *Backend) AttentionForward(out, saved, qkv, sep trainer.Buf, b, t, c, nh int, p float32, key trainer.RNGKey) {
	ck := checker{op: "attention forward"}
	ns, _ := be.AttentionSizes(b, t, c, nh, p > 0)
	o, sv, x, sp := ck.f("out", out, b*t*c), ck.f("saved", saved, ns), ck.f("qkv", qkv, b*t*3*c), ck.i("sep", sep, b)
	attnArgs(&ck, sp, b, t, c, nh, p)
	if be.failed(ck.err) || b*t*c == 0 {
		return
	}
	d := newAttnDims(sv, b, t, c, nh, p)
	hs, nt, btc, att, attd := d.hs, d.nt, d.btc, d.att, d.attd
	be.do(ck.op, func(g *gpu) error {
		_, es := g.operand()
		pbytes := uint64(0)
		if !g.fp32 {
			pbytes = 2 * uint64(nt)
		}
		sc, err := g.scratch(es*btc, es*btc, es*btc, pbytes, 4*btc)
		if err != nil {
			return err
		}
		q, k, v, pm, y := sc[0], sc[1], sc[2], sc[3], sc[4]
		bf := boolInt(!g.fp32)
		block := rowBlock(t, 4)
		jump, err := g.attnJump(t, block)
		if err != nil {
			return err
		}
		pmat, pv := uint64(0), att // the P·V operand: bf16 copy, or the float32 probabilities
		if !g.fp32 {
			pmat, pv = pm, pm
		} else if p > 0 {
			pv = attd
		}
		return firstErr(
			func() error { return g.permuteQKV(q, k, v, x.ptr(), b, t, nh, hs, bf) },
			// scores: S (T,T) = scale·q·kᵀ, i.e. Sᵀ = scale·(kᵀ)ᵀ·qᵀ per head
			func() error {
				return g.gemmBatched(opT, opN, t, t, hs, d.scale, k, hs, int64(t*hs), q, hs, int64(t*hs),
					0, att, t, int64(t*t), b*nh)
			},
			func() error {
				return g.launch(kAttnSoftmaxForward, b*nh*t, 1, block, att, attd, pmat, sp.ptr(), nh, t,
					d.dropout, dropThreshold(p), d.dscale, key.Seed, key.Stream, jump)
			},
			// y (T,hs) = P·v, i.e. yᵀ = vᵀ·Pᵀ
			func() error {
				return g.gemmBatched(opN, opN, hs, t, t, 1, v, hs, int64(t*hs), pv, t, int64(t*t),
					0, y, hs, int64(t*hs), b*nh)
			},
			func() error { return g.launch1(kUnpermuteHeads, int64(btc), o.ptr(), y, b, t, nh, hs, c, 0) },
		)
	})
}

// AttentionBackward implements trainer.Backend.
// dout (B,T,C); qkv (B,T,3C); saved; scratch (B,NH,T,T) → dqkv (B,T,3C) +=
func (be *Backend) AttentionBackward(dqkv, scratch, dout, qkv, saved, sep trainer.Buf, b, t, c, nh int, p float32, key trainer.RNGKey) {
	ck := checker{op: "attention backward"}
	ns, nsc := be.AttentionSizes(b, t, c, nh, p > 0)
	dx, scr, dy := ck.f("dqkv", dqkv, b*t*3*c), ck.f("scratch", scratch, nsc), ck.f("dout", dout, b*t*c)
	x, sv, sp := ck.f("qkv", qkv, b*t*3*c), ck.f("saved", saved, ns), ck.i("sep", sep, b)
	attnArgs(&ck, sp, b, t, c, nh, p)
	if be.failed(ck.err) || b*t*c == 0 {
		return
	}
	d := newAttnDims(sv, b, t, c, nh, p)
	hs, nt, btc, att := d.hs, d.nt, d.btc, d.att
	pr := att // the probabilities P·v used: dropped-out ones with dropout
	if p > 0 {
		pr = d.attd
	}
	dp := scr.ptr() // (B,NH,T,T): dP, then dS in place
	be.do(ck.op, func(g *gpu) error {
		_, es := g.operand()
		pbytes := uint64(0)
		if !g.fp32 {
			pbytes = 2 * uint64(nt)
		}
		sc, err := g.scratch(es*btc, es*btc, es*btc, es*btc, pbytes, 4*btc, 4*btc, 4*btc)
		if err != nil {
			return err
		}
		q, k, v, dyp, pm, dq, dk, dv := sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7]
		bf := boolInt(!g.fp32)
		block := rowBlock(t, 4)
		jump, err := g.attnJump(t, block)
		if err != nil {
			return err
		}
		prOp, dsOp, dsmat := pr, dp, uint64(0)
		if !g.fp32 {
			prOp, dsOp, dsmat = pm, pm, pm // P's bf16 copy, then dS's in the same place
		}
		return firstErr(
			func() error { return g.permuteQKV(q, k, v, x.ptr(), b, t, nh, hs, bf) },
			func() error { return g.launch1(kPermuteHeads, int64(btc), dyp, dy.ptr(), b, t, nh, hs, c, bf) },
			// dP (T,T) = dy·vᵀ, i.e. dPᵀ = (vᵀ)ᵀ·dyᵀ
			func() error {
				return g.gemmBatched(opT, opN, t, t, hs, 1, v, hs, int64(t*hs), dyp, hs, int64(t*hs),
					0, dp, t, int64(t*t), b*nh)
			},
			func() error {
				if g.fp32 {
					return nil
				}
				return g.launch1(kToBF16, int64(nt), pm, pr, int64(nt))
			},
			// dv (T,hs) = Pᵀ·dy, i.e. dvᵀ = dyᵀ·P
			func() error {
				return g.gemmBatched(opN, opT, hs, t, t, 1, dyp, hs, int64(t*hs), prOp, t, int64(t*t),
					0, dv, hs, int64(t*hs), b*nh)
			},
			func() error {
				return g.launch(kAttnSoftmaxBackward, b*nh*t, 1, block, dp, dsmat, att, sp.ptr(), nh, t,
					d.dropout, dropThreshold(p), d.dscale, key.Seed, key.Stream, jump)
			},
			// dq (T,hs) = scale·dS·k, i.e. dqᵀ = scale·kᵀ·dSᵀ
			func() error {
				return g.gemmBatched(opN, opN, hs, t, t, d.scale, k, hs, int64(t*hs), dsOp, t, int64(t*t),
					0, dq, hs, int64(t*hs), b*nh)
			},
			// dk (T,hs) = scale·dSᵀ·q, i.e. dkᵀ = scale·qᵀ·dS
			func() error {
				return g.gemmBatched(opN, opT, hs, t, t, d.scale, q, hs, int64(t*hs), dsOp, t, int64(t*t),
					0, dk, hs, int64(t*hs), b*nh)
			},
			func() error { return g.accumulateQKV(dx.ptr(), dq, dk, dv, b, t, nh, hs) },
		)
	})
}

// permuteQKV copies the q, k and v thirds of qkv (B,T,3C), at x, into
// head-major (B,NH,T,hs) operands, in bf16 when bf is 1.
func (g *gpu) permuteQKV(q, k, v, x uint64, b, t, nh, hs, bf int) error {
	c := nh * hs
	btc := int64(b * t * c)
	return firstErr(
		func() error { return g.launch1(kPermuteHeads, btc, q, x, b, t, nh, hs, 3*c, bf) },
		func() error { return g.launch1(kPermuteHeads, btc, k, x+4*uint64(c), b, t, nh, hs, 3*c, bf) },
		func() error { return g.launch1(kPermuteHeads, btc, v, x+8*uint64(c), b, t, nh, hs, 3*c, bf) },
	)
}

// accumulateQKV adds the head-major gradients dq, dk and dv (B,NH,T,hs)
// into the q, k and v thirds of dqkv (B,T,3C), at dx.
func (g *gpu) accumulateQKV(dx, dq, dk, dv uint64, b, t, nh, hs int) error {
	c := nh * hs
	btc := int64(b * t * c)
	return firstErr(
		func() error { return g.launch1(kUnpermuteHeads, btc, dx, dq, b, t, nh, hs, 3*c, 1) },
		func() error { return g.launch1(kUnpermuteHeads, btc, dx+4*uint64(c), dk, b, t, nh, hs, 3*c, 1) },
		func() error { return g.launch1(kUnpermuteHeads, btc, dx+8*uint64(c), dv, b, t, nh, hs, 3*c, 1) },
	)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
