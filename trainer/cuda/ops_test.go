package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/trainer"
)

// Every op against the CPU backend's float64 oracle on random inputs, on
// every target (see helpers_test.go). Outputs that an op sets are poisoned
// with NaN first; outputs it accumulates into start random.

func TestEncoder(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 1)
		n, c, v, p := 300, 40, 23, 17
		ids := func(rows int) []int32 {
			x := make([]int32, n)
			for i := range x {
				x[i] = int32(e.r.IntN(rows))
			}
			return x
		}
		hot := ids(p) // mostly 0, as GLM's block positions: groups of more than one piece
		for i := range hot {
			if i%7 != 0 {
				hot[i] = 0
			}
		}
		inp, pos, bpos := e.int32s(ids(v)), e.int32s(ids(p)), e.int32s(hot)
		wte, wpe, wbpe := e.floats(e.randn(v*c, 1)), e.floats(e.randn(p*c, 1)), e.floats(e.randn(p*c, 1))
		out := e.poisoned(n * c)
		be.EncoderForward(out.g, inp.g, pos.g, bpos.g, wte.g, wpe.g, wbpe.g, n, c)
		e.ref.EncoderForward(out.c, inp.c, pos.c, bpos.c, wte.c, wpe.c, wbpe.c, n, c)
		e.check("out", out)

		dout := e.floats(e.randn(n*c, 1))
		dwte, dwpe, dwbpe := e.floats(e.randn(v*c, 1)), e.floats(e.randn(p*c, 1)), e.floats(e.randn(p*c, 1))
		be.EncoderBackward(dwte.g, dwpe.g, dwbpe.g, dout.g, inp.g, pos.g, bpos.g, n, c)
		e.ref.EncoderBackward(dwte.c, dwpe.c, dwbpe.c, dout.c, inp.c, pos.c, bpos.c, n, c)
		e.check("dwte", dwte)
		e.check("dwpe", dwpe)
		e.check("dwbpe", dwbpe)

		bad := e.int32s(append(ids(v)[:n-1], int32(v)))
		be.EncoderForward(out.g, bad.g, pos.g, bpos.g, wte.g, wpe.g, wbpe.g, n, c)
		if err := be.Err(); err == nil || !strings.Contains(err.Error(), "token id") {
			t.Errorf("a token id outside the table: %v", err)
		}
	})
}

func TestLayerNorm(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 2)
		for _, sh := range [][2]int{{70, 48}, {5, 1000}} {
			n, c := sh[0], sh[1]
			t.Run(fmt.Sprintf("%dx%d", n, c), func(t *testing.T) {
				e.t = t
				x := e.randn(n*c, 2)
				for i := range x {
					x[i] += 0.5
				}
				inp, w, b := e.floats(x), e.floats(e.randn(c, 1)), e.floats(e.randn(c, 1))
				out, mean, rstd := e.poisoned(n*c), e.poisoned(n), e.poisoned(n)
				be.LayerNormForward(out.g, mean.g, rstd.g, inp.g, w.g, b.g, n, c)
				e.ref.LayerNormForward(out.c, mean.c, rstd.c, inp.c, w.c, b.c, n, c)
				e.checkTol("out", out, 1e-5) // no GEMM: float32 in both modes
				e.checkTol("mean", mean, 1e-5)
				e.checkTol("rstd", rstd, 1e-5)

				dout := e.floats(e.randn(n*c, 1))
				dinp, dw, db := e.floats(e.randn(n*c, 1)), e.floats(e.randn(c, 1)), e.floats(e.randn(c, 1))
				be.LayerNormBackward(dinp.g, dw.g, db.g, dout.g, inp.g, w.g, mean.g, rstd.g, n, c)
				e.ref.LayerNormBackward(dinp.c, dw.c, db.c, dout.c, inp.c, w.c, mean.c, rstd.c, n, c)
				e.checkTol("dinp", dinp, 1e-5)
				e.checkTol("dw", dw, 1e-5)
				e.checkTol("db", db, 1e-5)
			})
		}
	})
}

func TestMatmul(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 3)
		for _, withBias := range []bool{true, false} {
			t.Run(fmt.Sprintf("bias=%v", withBias), func(t *testing.T) {
				e.t = t
				n, c, oc := 150, 36, 52
				inp, w := e.floats(e.randn(n*c, 1)), e.floats(e.randn(oc*c, 1))
				var bias pair
				var bg, bc trainer.Buf
				if withBias {
					bias = e.floats(e.randn(oc, 1))
					bg, bc = bias.g, bias.c
				}
				out := e.poisoned(n * oc)
				be.MatmulForward(out.g, inp.g, w.g, bg, n, c, oc)
				e.ref.MatmulForward(out.c, inp.c, w.c, bc, n, c, oc)
				e.check("out", out)

				dout := e.floats(e.randn(n*oc, 1))
				dinp, dw := e.floats(e.randn(n*c, 1)), e.floats(e.randn(oc*c, 1))
				var dbias pair
				var dbg, dbc, dig, dic trainer.Buf
				if withBias {
					dbias = e.floats(e.randn(oc, 1))
					dbg, dbc = dbias.g, dbias.c
					dig, dic = dinp.g, dinp.c
				}
				be.MatmulBackward(dig, dw.g, dbg, dout.g, inp.g, w.g, n, c, oc)
				e.ref.MatmulBackward(dic, dw.c, dbc, dout.c, inp.c, w.c, n, c, oc)
				e.check("dinp", dinp)
				e.check("dw", dw)
				if withBias {
					e.checkTol("dbias", dbias, 1e-5)
				}
			})
		}
	})
}

// attnCase is an attention shape; seps cover a Part A of a few tokens, an
// all-causal row (sep 0) and an all-bidirectional one (sep T).
type attnCase struct {
	b, t, c, nh int
	gpuOnly     bool
}

var attnCases = []attnCase{
	{3, 37, 24, 3, false},
	{2, 130, 32, 2, false},
	{2, 512, 256, 4, true}, // GLM's sequence length, head size 64
}

func TestAttention(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 4)
		for _, ac := range attnCases {
			for _, p := range []float32{0, 0.3} {
				t.Run(fmt.Sprintf("B%d_T%d_C%d_NH%d/dropout=%v", ac.b, ac.t, ac.c, ac.nh, p), func(t *testing.T) {
					if ac.gpuOnly && !tg.gpu {
						t.Skip("too slow for the emulator")
					}
					e.t = t
					b, tt, c, nh := ac.b, ac.t, ac.c, ac.nh
					seps := []int32{int32(tt / 3), 0, int32(tt)}[:b]
					sep := e.int32s(seps)
					key := trainer.RNGKey{Seed: 5, Stream: 6}
					ns, nsc := be.AttentionSizes(b, tt, c, nh, p > 0)
					qkv := e.floats(e.randn(b*tt*3*c, 1))
					out, saved := e.poisoned(b*tt*c), e.poisoned(ns)
					be.AttentionForward(out.g, saved.g, qkv.g, sep.g, b, tt, c, nh, p, key)
					e.ref.AttentionForward(out.c, saved.c, qkv.c, sep.c, b, tt, c, nh, p, key)
					e.check("out", out)
					e.check("saved", saved)
					if p > 0 {
						g, c := e.get(saved)
						for i := ns / 2; i < ns; i++ {
							if (g[i] == 0) != (c[i] == 0) {
								t.Fatalf("dropped-out probability %d: %v here, %v on the CPU: the masks differ", i, g[i], c[i])
							}
						}
					}

					dout := e.floats(e.randn(b*tt*c, 1))
					dqkv, scratch := e.floats(e.randn(b*tt*3*c, 1)), e.poisoned(nsc)
					be.AttentionBackward(dqkv.g, scratch.g, dout.g, qkv.g, saved.g, sep.g, b, tt, c, nh, p, key)
					e.ref.AttentionBackward(dqkv.c, scratch.c, dout.c, qkv.c, saved.c, sep.c, b, tt, c, nh, p, key)
					e.check("dqkv", dqkv)
				})
			}
		}
	})
}

func TestElementwise(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 5)
		n := 3001
		x, y := e.floats(e.randn(n, 2)), e.floats(e.randn(n, 1))
		out := e.poisoned(n)
		be.GeluForward(out.g, x.g, n)
		e.ref.GeluForward(out.c, x.c, n)
		e.checkTol("gelu", out, 1e-5)
		dx := e.floats(e.randn(n, 1))
		be.GeluBackward(dx.g, x.g, y.g, n)
		e.ref.GeluBackward(dx.c, x.c, y.c, n)
		e.checkTol("gelu backward", dx, 1e-5)
		res := e.poisoned(n)
		be.ResidualForward(res.g, x.g, y.g, n)
		e.ref.ResidualForward(res.c, x.c, y.c, n)
		e.checkTol("residual", res, 1e-7)
	})
}

// TestDropout wants the CPU backend's masks bit for bit: more than one
// 4096-element block, a length that is no multiple of 8, in place too.
func TestDropout(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 6)
		n := 3*4096 + 13
		for _, p := range []float32{0.1, 0.5} {
			for _, inPlace := range []bool{false, true} {
				key := trainer.RNGKey{Seed: 77, Stream: uint64(1e6 * p)}
				src := e.floats(e.randn(n, 1))
				dst := src
				if !inPlace {
					dst = e.poisoned(n)
				}
				be.Dropout(dst.g, src.g, n, p, key)
				e.ref.Dropout(dst.c, src.c, n, p, key)
				g, c := e.get(dst)
				kept := 0
				for i := range c {
					if (g[i] == 0) != (c[i] == 0) {
						t.Fatalf("p=%v in place=%v: element %d is %v here, %v on the CPU: the masks differ", p, inPlace, i, g[i], c[i])
					}
					if c[i] != 0 {
						kept++
					}
				}
				if err := relErr(g, c); err > 1e-7 {
					t.Errorf("p=%v: relative error %.3g", p, err)
				}
				t.Logf("p=%v in place=%v: %d of %d kept, masks identical", p, inPlace, kept, n)
			}
		}
		// p = 0 copies
		src, dst := e.floats(e.randn(100, 1)), e.poisoned(100)
		be.Dropout(dst.g, src.g, 100, 0, trainer.RNGKey{})
		e.ref.Dropout(dst.c, src.c, 100, 0, trainer.RNGKey{})
		e.checkTol("p=0", dst, 0)
	})
}

func TestRows(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 7)
		m, n, c := 50, 20, 33
		perm := e.r.Perm(m)[:n]
		idx := make([]int32, n)
		for i, v := range perm {
			idx[i] = int32(v)
		}
		ix := e.int32s(idx)
		src := e.floats(e.randn(m*c, 1))
		dst := e.poisoned(n * c)
		be.GatherRows(dst.g, src.g, ix.g, n, c)
		e.ref.GatherRows(dst.c, src.c, ix.c, n, c)
		e.checkTol("gather", dst, 0)
		acc := e.floats(e.randn(m*c, 1))
		be.ScatterAddRows(acc.g, dst.g, ix.g, n, c)
		e.ref.ScatterAddRows(acc.c, dst.c, ix.c, n, c)
		e.checkTol("scatter", acc, 1e-7)
	})
}

func TestCrossEntropy(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 8)
		for _, v := range []int{11, 3000} {
			t.Run(fmt.Sprintf("V%d", v), func(t *testing.T) {
				e.t = t
				n := 21
				tgt := make([]int32, n)
				for i := range tgt {
					tgt[i] = int32(e.r.IntN(v))
				}
				tg := e.int32s(tgt)
				logits := e.floats(e.randn(n*v, 3))
				losses := e.poisoned(n)
				be.CrossEntropyForward(losses.g, nil, logits.g, tg.g, n, v)
				e.ref.CrossEntropyForward(losses.c, nil, logits.c, tg.c, n, v)
				e.checkTol("losses", losses, 1e-5)
				// probabilities in place, then the gradient in place
				be.CrossEntropyForward(losses.g, logits.g, logits.g, tg.g, n, v)
				e.ref.CrossEntropyForward(losses.c, logits.c, logits.c, tg.c, n, v)
				e.checkTol("losses (with probs)", losses, 1e-5)
				e.checkTol("probs", logits, 1e-5)
				be.CrossEntropyBackward(logits.g, logits.g, tg.g, n, v, 0.125)
				e.ref.CrossEntropyBackward(logits.c, logits.c, tg.c, n, v, 0.125)
				e.checkTol("dlogits", logits, 1e-5)
			})
		}
	})
}

func TestOptimizer(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		e := newEnv(t, tg, be, 9)
		n := 3*sumChunk + 77
		x := e.floats(e.randn(n, 1))
		got, err := be.SumSquares(x.g)
		e.must(err)
		want, err := e.ref.SumSquares(x.c)
		e.must(err)
		if math.Abs(got-want)/want > 1e-12 {
			t.Errorf("SumSquares = %v; want %v", got, want)
		}
		sq := e.randn(n, 0.001) // second moments are not negative
		for i, x := range sq {
			sq[i] = float32(math.Abs(float64(x)))
		}
		p, g := e.floats(e.randn(n, 1)), e.floats(e.randn(n, 0.1))
		m, v := e.floats(e.randn(n, 0.01)), e.floats(sq)
		for step := 1; step <= 3; step++ {
			s := trainer.AdamWStep{LR: 1e-3, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.1, GradScale: 0.5, T: step}
			be.AdamW(p.g, g.g, m.g, v.g, s)
			e.ref.AdamW(p.c, g.c, m.c, v.c, s)
		}
		e.checkTol("p", p, 1e-6)
		e.checkTol("m", m, 1e-6)
		e.checkTol("v", v, 1e-6)
	})
}

func TestBuffers(t *testing.T) {
	forTargets(t, func(t *testing.T, tg target, be *Backend) {
		x, err := be.Floats(10)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 10)
		if err := be.Download(got, x); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != 0 {
				t.Fatalf("Floats: element %d is %v; want 0", i, v)
			}
		}
		vals := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
		be.Upload(x, vals)
		be.Zero(x.Slice(2, 3))
		got64 := make([]float64, 4)
		if err := be.DownloadFloat64(got64, x.Slice(1, 4)); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got64) != "[2 0 0 0]" {
			t.Errorf("after Zero of [2,5): %v", got64)
		}
		// an upload larger than a staging slot
		big, err := be.Floats(ringMax/4*2 + 5)
		if err != nil {
			t.Fatal(err)
		}
		bv := make([]float32, big.Len())
		for i := range bv {
			bv[i] = float32(i % 1000)
		}
		be.Upload(big, bv)
		back := make([]float32, big.Len())
		if err := be.Download(back, big); err != nil {
			t.Fatal(err)
		}
		for i := range bv {
			if back[i] != bv[i] {
				t.Fatalf("large upload: element %d is %v; want %v", i, back[i], bv[i])
			}
		}
		be.Free(big)
		if err := be.Sync(); err != nil {
			t.Fatal(err)
		}

		// misuse, each on a backend of its own (the first error sticks)
		for _, c := range []struct {
			what string
			op   func(be *Backend, x trainer.Buf)
			want string
		}{
			{"an upload of the wrong length", func(be *Backend, x trainer.Buf) { be.Upload(x, vals[:3]) }, "cuda: upload 3 floats into a buffer of 10"},
			{"a double free", func(be *Backend, x trainer.Buf) { be.Free(x); be.Free(x) }, "cuda: buffer freed twice"},
			{"freeing a view", func(be *Backend, x trainer.Buf) { be.Free(x.Slice(0, 2)) }, "cuda: free a view; free the buffer Floats or Int32s returned"},
		} {
			be := openTarget(t, tg)
			x, err := be.Floats(10)
			if err != nil {
				t.Fatal(err)
			}
			c.op(be, x)
			if err := be.Sync(); err == nil || err.Error() != c.want {
				t.Errorf("%s: %v; want %s", c.what, err, c.want)
			}
		}
	})
}

// TestEmbedGroups checks the host side of the embedding backward: every
// position once, grouped by id in increasing order, pieces of at most
// embedPiece that tile their group.
func TestEmbedGroups(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	ids := make([]int32, 1000)
	for i := range ids {
		ids[i] = int32(r.IntN(5)) * 3 // rows 0, 3, …, 12 of 15; ~200 positions each
	}
	rows, pieceStart, groupPiece, groupID := embedGroups(ids, 15)
	if len(rows) != len(ids) || len(groupID) != 5 || len(groupPiece) != 6 || pieceStart[len(pieceStart)-1] != int32(len(ids)) {
		t.Fatalf("%d rows, %d groups, %d pieces", len(rows), len(groupID), len(pieceStart)-1)
	}
	seen := make([]bool, len(ids))
	for s, id := range groupID {
		prev := int32(-1)
		for q := groupPiece[s]; q < groupPiece[s+1]; q++ {
			lo, hi := pieceStart[q], pieceStart[q+1]
			if hi <= lo || hi-lo > embedPiece {
				t.Fatalf("group %d piece %d has %d positions", s, q, hi-lo)
			}
			for _, i := range rows[lo:hi] {
				if ids[i] != id || i <= prev || seen[i] {
					t.Fatalf("group %d (id %d): position %d (id %d) after %d", s, id, i, ids[i], prev)
				}
				seen[i], prev = true, i
			}
		}
	}
}

// TestPCGJump checks the host's jump-ahead against math/rand/v2's PCG: the
// state after pcgJump(k) is the state after k calls of Uint64, and the
// kernels' output function of it is Uint64's result.
func TestPCGJump(t *testing.T) {
	for _, k := range []uint64{1, 2, 3, 8, 9, 100, 4095, 4096, 1 << 20} {
		seed, stream := uint64(0x1234), uint64(0xfeed)
		r := rand.NewPCG(seed, stream)
		var want uint64
		for range k {
			want = r.Uint64()
		}
		a, c := pcgJump(k)
		s := u128{seed, stream}.mul(a).add(c)
		hi := s.hi
		hi ^= hi >> 32
		hi *= 0xda942042e4dd58b5
		hi ^= hi >> 48
		hi *= s.lo | 1
		if hi != want {
			t.Errorf("draw %d: %#x from the jump; math/rand/v2 gives %#x", k, hi, want)
		}
	}
}
