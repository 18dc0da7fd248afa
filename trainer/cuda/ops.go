package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/glmkit/glmkit/trainer"
)

// checker collects the buffer checks of one op: the first failure sticks.
type checker struct {
	op  string
	err error
}

// view returns the view of b as elements of kind e, which must have at
// least n of them.
func (c *checker) view(name string, b trainer.Buf, e elem, n int) buf {
	if c.err != nil {
		return buf{}
	}
	v, err := view(c.op, name, b, e, n)
	c.err = err
	return v
}

// f returns the float view of b, which must have at least n elements.
func (c *checker) f(name string, b trainer.Buf, n int) buf { return c.view(name, b, elemFloat, n) }

// fOpt is f for a buffer that may be nil (then the view's ptr is 0).
func (c *checker) fOpt(name string, b trainer.Buf, n int) buf {
	if b == nil {
		return buf{}
	}
	return c.f(name, b, n)
}

// i returns the int32 view of b, which must have at least n elements.
func (c *checker) i(name string, b trainer.Buf, n int) buf { return c.view(name, b, elemInt32, n) }

// ids checks that the first n ids of an int32 view index a table of rows
// rows (on the host copy).
func (c *checker) ids(what string, v buf, n, rows int) {
	if c.err != nil {
		return
	}
	for i, id := range v.ints()[:n] {
		if id < 0 || int(id) >= rows {
			c.err = fmt.Errorf("cuda: %s: %s %d at %d is outside [0, %d)", c.op, what, id, i, rows)
			return
		}
	}
}

// ----------------------------------------------------------------------------
// embeddings

// EncoderForward implements trainer.Backend.
// inp, pos, bpos (N) int32; wte (V,C), wpe (P,C), wbpe (P,C) → out (N,C)
func (be *Backend) EncoderForward(out, inp, pos, bpos, wte, wpe, wbpe trainer.Buf, n, c int) {
	ck := checker{op: "encoder forward"}
	o := ck.f("out", out, n*c)
	ti, pi, bi := ck.i("inp", inp, n), ck.i("pos", pos, n), ck.i("bpos", bpos, n)
	w, p, bp := ck.f("wte", wte, 0), ck.f("wpe", wpe, 0), ck.f("wbpe", wbpe, 0)
	if c > 0 {
		ck.ids("token id", ti, n, w.n/c)
		ck.ids("position id", pi, n, p.n/c)
		ck.ids("block position id", bi, n, bp.n/c)
	}
	be.launch1(&ck, kEncoderForward, int64(n)*int64(c), o.ptr(), ti.ptr(), pi.ptr(), bi.ptr(), w.ptr(), p.ptr(), bp.ptr(), n, c)
}

// embedPiece is the most positions one thread sums in the embedding
// backward before the pieces are added.
const embedPiece = 64

// embedGroups groups the positions i in [0, len(ids)) by id (a stable
// counting sort): rows lists them group by group, each group in increasing
// i, cut into pieces of at most embedPiece positions. Piece q is
// rows[pieceStart[q]:pieceStart[q+1]]; group s is table row groupID[s] and
// its pieces are [groupPiece[s], groupPiece[s+1]).
func embedGroups(ids []int32, tableRows int) (rows, pieceStart, groupPiece, groupID []int32) {
	count := make([]int32, tableRows+1)
	for _, id := range ids {
		count[id+1]++
	}
	for r := range tableRows {
		count[r+1] += count[r]
	}
	rows = make([]int32, len(ids))
	next := count[:tableRows]
	for i, id := range ids {
		rows[next[id]] = int32(i)
		next[id]++
	}
	// next[r] is now the end of row r's group; the groups are consecutive
	pieceStart, groupPiece = []int32{0}, []int32{0}
	lo := int32(0)
	for r := range tableRows {
		hi := next[r]
		if hi == lo {
			continue
		}
		for p := lo + embedPiece; p < hi; p += embedPiece {
			pieceStart = append(pieceStart, p)
		}
		pieceStart = append(pieceStart, hi)
		groupID = append(groupID, int32(r))
		groupPiece = append(groupPiece, int32(len(pieceStart)-1))
		lo = hi
	}
	return rows, pieceStart, groupPiece, groupID
}

// EncoderBackward implements trainer.Backend. Each table's positions are
// grouped by id on the host (from the ids' host copy), and two kernels sum
// each group in fixed pieces and add the pieces in order: deterministic,
// no atomics.
// dout (N,C); inp, pos, bpos (N) → dwte (V,C), dwpe (P,C), dwbpe (P,C) +=
func (be *Backend) EncoderBackward(dwte, dwpe, dwbpe, dout, inp, pos, bpos trainer.Buf, n, c int) {
	ck := checker{op: "encoder backward"}
	d := ck.f("dout", dout, n*c)
	ids := [3]buf{ck.i("inp", inp, n), ck.i("pos", pos, n), ck.i("bpos", bpos, n)}
	tabs := [3]buf{ck.f("dwte", dwte, 0), ck.f("dwpe", dwpe, 0), ck.f("dwbpe", dwbpe, 0)}
	if c > 0 {
		for k, what := range []string{"token id", "position id", "block position id"} {
			ck.ids(what, ids[k], n, tabs[k].n/c)
		}
	}
	if be.failed(ck.err) || n == 0 || c == 0 {
		return
	}
	var groups [3][4][]int32 // per table: rows, pieceStart, groupPiece, groupID
	var sizes []uint64
	for k := range groups {
		r, ps, gp, gid := embedGroups(ids[k].ints()[:n], tabs[k].n/c)
		groups[k] = [4][]int32{r, ps, gp, gid}
		for _, a := range groups[k] {
			sizes = append(sizes, 4*uint64(len(a)))
		}
		sizes = append(sizes, 4*uint64(len(ps)-1)*uint64(c)) // the pieces' sums
	}
	be.do(ck.op, func(g *gpu) error {
		sc, err := g.scratch(sizes...)
		if err != nil {
			return err
		}
		const block = 128
		cb := (c + block - 1) / block
		for k, gr := range groups {
			p := sc[5*k : 5*k+5] // rows, pieceStart, groupPiece, groupID, partials
			for j, a := range gr {
				if err := g.upload(p[j], int32Bytes(a)); err != nil {
					return err
				}
			}
			err := firstErr(
				func() error {
					return g.launch(kEmbedBackwardPartial, len(gr[1])-1, cb, block, p[4], d.ptr(), p[0], p[1], c)
				},
				func() error {
					return g.launch(kEmbedBackwardAdd, len(gr[3]), cb, block, tabs[k].ptr(), p[4], p[2], p[3], c)
				},
			)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func int32Bytes(a []int32) []byte {
	if len(a) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), 4*len(a))
}

// ----------------------------------------------------------------------------
// layer norm

// colsumChunks cuts n rows into at most 256 chunks of at least 32 rows for
// the column-sum kernels: a function of n alone.
func colsumChunks(n int) (rowsPerChunk, chunks int) {
	rowsPerChunk = max(32, (n+255)/256)
	return rowsPerChunk, (n + rowsPerChunk - 1) / rowsPerChunk
}

// LayerNormForward implements trainer.Backend.
// inp (N,C); w, b (C) → out (N,C), mean (N), rstd (N)
func (be *Backend) LayerNormForward(out, mean, rstd, inp, w, b trainer.Buf, n, c int) {
	ck := checker{op: "layernorm forward"}
	o, mu, rs := ck.f("out", out, n*c), ck.f("mean", mean, n), ck.f("rstd", rstd, n)
	x, wt, bs := ck.f("inp", inp, n*c), ck.f("w", w, c), ck.f("b", b, c)
	if be.failed(ck.err) || n == 0 {
		return
	}
	be.do(ck.op, func(g *gpu) error {
		return g.launch(kLayerNormForward, n, 1, rowBlock(c, 4), o.ptr(), mu.ptr(), rs.ptr(), x.ptr(), wt.ptr(), bs.ptr(), n, c)
	})
}

// LayerNormBackward implements trainer.Backend: a block per row for dinp,
// then dw and db summed over fixed chunks of rows and the chunks added in
// order.
// dout, inp (N,C); w (C); mean, rstd (N) → dinp (N,C), dw, db (C) +=
func (be *Backend) LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd trainer.Buf, n, c int) {
	ck := checker{op: "layernorm backward"}
	dx, dwt, dbs := ck.f("dinp", dinp, n*c), ck.f("dw", dw, c), ck.f("db", db, c)
	dy, x, wt := ck.f("dout", dout, n*c), ck.f("inp", inp, n*c), ck.f("w", w, c)
	mu, rs := ck.f("mean", mean, n), ck.f("rstd", rstd, n)
	if be.failed(ck.err) || n == 0 || c == 0 {
		return
	}
	rpc, chunks := colsumChunks(n)
	be.do(ck.op, func(g *gpu) error {
		sc, err := g.scratch(4*uint64(chunks*c), 4*uint64(chunks*c))
		if err != nil {
			return err
		}
		const block = 128
		return firstErr(
			func() error {
				return g.launch(kLayerNormBackwardInput, n, 1, rowBlock(c, 4), dx.ptr(), dy.ptr(), x.ptr(), wt.ptr(), mu.ptr(), rs.ptr(), n, c)
			},
			func() error {
				return g.launch(kLayerNormBackwardParamsPartial, (c+block-1)/block, chunks, block,
					sc[0], sc[1], dy.ptr(), x.ptr(), mu.ptr(), rs.ptr(), n, c, rpc)
			},
			func() error { return g.launch1(kColsumAdd, int64(c), dwt.ptr(), sc[0], chunks, c) },
			func() error { return g.launch1(kColsumAdd, int64(c), dbs.ptr(), sc[1], chunks, c) },
		)
	})
}

// firstErr runs fs in order and stops at the first error.
func firstErr(fs ...func() error) error {
	for _, f := range fs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// launch1 queues kernel k over n threads (launch1's grid) with args, once
// ck has found every buffer fit; else ck's error sticks.
func (be *Backend) launch1(ck *checker, k kernel, n int64, args ...any) {
	if be.failed(ck.err) {
		return
	}
	be.do(ck.op, func(g *gpu) error { return g.launch1(k, n, args...) })
}

// ----------------------------------------------------------------------------
// elementwise

// GeluForward implements trainer.Backend.
// inp (N) → out (N) = 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³)))
func (be *Backend) GeluForward(out, inp trainer.Buf, n int) {
	ck := checker{op: "gelu forward"}
	o, x := ck.f("out", out, n), ck.f("inp", inp, n)
	be.launch1(&ck, kGeluForward, int64(n), o.ptr(), x.ptr(), int64(n))
}

// GeluBackward implements trainer.Backend.
// inp, dout (N) → dinp (N) +=
func (be *Backend) GeluBackward(dinp, inp, dout trainer.Buf, n int) {
	ck := checker{op: "gelu backward"}
	dx, x, dy := ck.f("dinp", dinp, n), ck.f("inp", inp, n), ck.f("dout", dout, n)
	be.launch1(&ck, kGeluBackward, int64(n), dx.ptr(), x.ptr(), dy.ptr(), int64(n))
}

// ResidualForward implements trainer.Backend.
// a, b (N) → out (N) = a + b
func (be *Backend) ResidualForward(out, a, b trainer.Buf, n int) {
	ck := checker{op: "residual forward"}
	o, x, y := ck.f("out", out, n), ck.f("a", a, n), ck.f("b", b, n)
	be.launch1(&ck, kResidualForward, int64(n), o.ptr(), x.ptr(), y.ptr(), int64(n))
}

// Dropout implements trainer.Backend with the CPU backend's masks, bit for
// bit: element i is kept by draw i mod 4096 of the PCG stream of block
// i/4096 (see trainer/cpu).
// src (N) → dst (N)
func (be *Backend) Dropout(dst, src trainer.Buf, n int, p float32, key trainer.RNGKey) {
	ck := checker{op: "dropout"}
	d, s := ck.f("dst", dst, n), ck.f("src", src, n)
	if be.failed(ck.err) {
		return
	}
	if !(p >= 0 && p < 1) {
		be.failed(fmt.Errorf("cuda: dropout probability %v; want 0 ≤ p < 1", p))
		return
	}
	if n == 0 {
		return
	}
	if p == 0 {
		if d.ptr() == s.ptr() {
			return
		}
		be.do(ck.op, func(g *gpu) error {
			return g.check(g.drv.memcpyDtoDAsync(d.ptr(), s.ptr(), 4*uint64(n), g.compute), "cuMemcpyDtoDAsync_v2")
		})
		return
	}
	scale := float32(1 / (1 - float64(p)))
	be.do(ck.op, func(g *gpu) error {
		return g.launch1(kDropout, (int64(n)+dropPerThread-1)/dropPerThread, d.ptr(), s.ptr(), int64(n),
			dropThreshold(p), scale, key.Seed, key.Stream, g.dropJump)
	})
}

// GatherRows implements trainer.Backend.
// src (M,C); idx (N) → dst (N,C)
func (be *Backend) GatherRows(dst, src, idx trainer.Buf, n, c int) {
	ck := checker{op: "gather rows"}
	d, s, ix := ck.f("dst", dst, n*c), ck.f("src", src, 0), ck.i("idx", idx, n)
	if c > 0 {
		ck.ids("row", ix, n, s.n/c)
	}
	be.launch1(&ck, kGatherRows, int64(n)*int64(c), d.ptr(), s.ptr(), ix.ptr(), n, c)
}

// ScatterAddRows implements trainer.Backend. idx must not repeat.
// src (N,C); idx (N) → dst (M,C) +=
func (be *Backend) ScatterAddRows(dst, src, idx trainer.Buf, n, c int) {
	ck := checker{op: "scatter rows"}
	d, s, ix := ck.f("dst", dst, 0), ck.f("src", src, n*c), ck.i("idx", idx, n)
	if c > 0 {
		ck.ids("row", ix, n, d.n/c)
	}
	be.launch1(&ck, kScatterAddRows, int64(n)*int64(c), d.ptr(), s.ptr(), ix.ptr(), n, c)
}

// ----------------------------------------------------------------------------
// loss

// CrossEntropyForward implements trainer.Backend: a block per row, the sum
// of exponentials in double.
// logits (N,V); targets (N) → losses (N), probs (N,V)
func (be *Backend) CrossEntropyForward(losses, probs, logits, targets trainer.Buf, n, v int) {
	ck := checker{op: "cross entropy forward"}
	ls, pr := ck.f("losses", losses, n), ck.fOpt("probs", probs, n*v)
	lg, tg := ck.f("logits", logits, n*v), ck.i("targets", targets, n)
	ck.ids("target", tg, n, v)
	if be.failed(ck.err) || n == 0 {
		return
	}
	be.do(ck.op, func(g *gpu) error {
		return g.launch(kCrossEntropyForward, n, 1, rowBlock(v, 32), ls.ptr(), pr.ptr(), lg.ptr(), tg.ptr(), n, v)
	})
}

// CrossEntropyBackward implements trainer.Backend.
// probs (N,V); targets (N) → dlogits (N,V) = scale·(probs − onehot)
func (be *Backend) CrossEntropyBackward(dlogits, probs, targets trainer.Buf, n, v int, scale float64) {
	ck := checker{op: "cross entropy backward"}
	dl, pr, tg := ck.f("dlogits", dlogits, n*v), ck.f("probs", probs, n*v), ck.i("targets", targets, n)
	ck.ids("target", tg, n, v)
	be.launch1(&ck, kCrossEntropyBackward, int64(n)*int64(v), dl.ptr(), pr.ptr(), tg.ptr(), n, v, float32(scale))
}

// ----------------------------------------------------------------------------
// optimizer

// sumChunk is the number of elements one block of SumSquares sums.
const sumChunk = 1 << 16

// SumSquares implements trainer.Backend: double partial sums over fixed
// chunks, added on the host in order.
func (be *Backend) SumSquares(x trainer.Buf) (float64, error) {
	ck := checker{op: "sum of squares"}
	s := ck.f("x", x, 0)
	if be.failed(ck.err) {
		return 0, be.err
	}
	if s.n == 0 {
		return 0, nil
	}
	blocks := (s.n + sumChunk - 1) / sumChunk
	parts := make([]float64, blocks)
	err := be.do(ck.op, func(g *gpu) error {
		sc, err := g.scratch(8 * uint64(blocks))
		if err != nil {
			return err
		}
		if err := g.launch(kSumSqPartial, blocks, 1, 256, sc[0], s.ptr(), int64(s.n), int64(sumChunk)); err != nil {
			return err
		}
		return g.download(unsafe.Pointer(&parts[0]), sc[0], 8*uint64(blocks))
	})
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, p := range parts {
		sum += p
	}
	return sum, nil
}

// AdamW implements trainer.Backend with the CPU backend's float32 update
// (bias corrections in float64 on the host).
func (be *Backend) AdamW(p, g, m, v trainer.Buf, s trainer.AdamWStep) {
	ck := checker{op: "adamw"}
	ps := ck.f("p", p, 0)
	gs, ms, vs := ck.f("g", g, ps.n), ck.f("m", m, ps.n), ck.f("v", v, ps.n)
	if be.failed(ck.err) {
		return
	}
	if s.T < 1 {
		be.failed(fmt.Errorf("cuda: adamw step %d; want ≥ 1", s.T))
		return
	}
	bc1 := 1 - math.Pow(s.Beta1, float64(s.T))
	bc2 := 1 - math.Pow(s.Beta2, float64(s.T))
	n := ps.n
	be.do(ck.op, func(gp *gpu) error {
		return gp.launch1(kAdamW, int64(n), ps.ptr(), gs.ptr(), ms.ptr(), vs.ptr(), int64(n),
			float32(s.Beta1), float32(s.Beta2), float32(s.Eps), float32(s.LR/bc1), float32(1/math.Sqrt(bc2)),
			float32(1-s.LR*s.WeightDecay), float32(s.GradScale))
	})
}
