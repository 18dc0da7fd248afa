package trainer

import (
	"fmt"
)

// acts are the activations of one forward pass and the scratch gradients
// of the backward pass, views into two flat float allocations (one sized by
// the batch shape, one by the number of loss positions) and two int32 ones.
// They grow when a batch needs more and are reused otherwise.
type acts struct {
	b, t, ns int // the shape of the current views

	inp, pos, bpos Buf // (B,T) int32
	sep            Buf // (B) int32
	sel, tgt       Buf // (N) int32: loss positions (row-major index) and targets

	encoded                  Buf // (B,T,C) embeddings after dropout
	layers                   []layerActs
	lnf, lnfMean, lnfRstd    Buf // (B,T,C), (B,T), (B,T)
	hsel, logits, losses     Buf // (N,C), (N,V), (N)
	grad                     gradActs
	body, head, ibody, ihead Buf // the allocations
	bodyCap, headCap         int
	ibodyCap, iheadCap       int
}

// layerActs are one block's saved activations.
type layerActs struct {
	ln1, ln1Mean, ln1Rstd Buf // (B,T,C), (B,T), (B,T)
	qkv                   Buf // (B,T,3C)
	atty                  Buf // (B,T,C) attention output before the projection
	attSaved              Buf // the attention's saved state (Backend.AttentionSizes)
	attproj               Buf // (B,T,C) after its dropout
	res2                  Buf // (B,T,C) h = x + attproj
	ln2, ln2Mean, ln2Rstd Buf // (B,T,C), (B,T), (B,T)
	fch, fchGelu          Buf // (B,T,4C)
	fcproj                Buf // (B,T,C) after its dropout
	res3                  Buf // (B,T,C) out = h + fcproj
}

// gradActs are the backward pass's activation gradients, shared by all
// layers since one layer is differentiated at a time.
type gradActs struct {
	res     Buf // (B,T,C) the residual stream's gradient
	tmp     Buf // (B,T,C) a residual branch's gradient through its dropout
	ln      Buf // (B,T,C) a LayerNorm output's gradient
	qkv     Buf // (B,T,3C)
	atty    Buf // (B,T,C)
	att     Buf // the attention's backward scratch (Backend.AttentionSizes)
	fch     Buf // (B,T,4C)
	fchGelu Buf // (B,T,4C)
	lnf     Buf // (B,T,C)
	hsel    Buf // (N,C)
}

// carver hands out consecutive views of one allocation.
type carver struct {
	buf Buf
	off int
}

func (c *carver) take(n int) Buf {
	v := c.buf.Slice(c.off, n)
	c.off += n
	return v
}

// bodySize is the number of floats the (B,T)-shaped activations need; it
// matches the takes in ensure. attSaved and attScratch are the backend's
// attention sizes.
func bodySize(cfg Config, b, t, attSaved, attScratch int) int {
	btc, bt := b*t*cfg.Hidden, b*t
	perLayer := 18*btc + 4*bt + attSaved
	grads := 16*btc + attScratch
	return btc + cfg.Layers*perLayer + btc + 2*bt + grads
}

// smallerBatch is the way out of an allocation that failed for the batch.
const smallerBatch = "(a smaller batch, with gradient accumulation to keep the rows per step, needs less)"

// ensure makes views for a batch of B×T with N loss positions, growing the
// allocations when they are too small.
func (a *acts) ensure(be Backend, cfg Config, b, t, n int) error {
	C, V := cfg.Hidden, cfg.Vocab
	attSaved, attScratch := be.AttentionSizes(b, t, C, cfg.Heads, cfg.AttentionDropout > 0)
	need := bodySize(cfg, b, t, attSaved, attScratch)
	if need > a.bodyCap {
		// A second growth is a shape that keeps growing (infill adds a
		// row a token): grow by half, so the body is not allocated (and
		// zeroed) again for every row.
		grow := need
		if a.bodyCap > 0 {
			grow = max(need, a.bodyCap+a.bodyCap/2)
		}
		free(be, &a.body)
		buf, err := be.Floats(grow)
		if err != nil && grow > need {
			grow = need
			buf, err = be.Floats(need)
		}
		if err != nil {
			return fmt.Errorf("trainer: allocate activations for a %d×%d batch (%d floats): %w %s", b, t, need, err, smallerBatch)
		}
		a.body, a.bodyCap = buf, grow
	}
	if needH := n*(2*C+V+1) + 1; needH > a.headCap {
		needH += needH / 4 // the number of loss positions varies from batch to batch
		free(be, &a.head)
		buf, err := be.Floats(needH)
		if err != nil {
			return fmt.Errorf("trainer: allocate logits for %d positions: %w %s", n, err, smallerBatch)
		}
		a.head, a.headCap = buf, needH
	}
	if needI := 3*b*t + b; needI > a.ibodyCap {
		free(be, &a.ibody)
		buf, err := be.Int32s(needI)
		if err != nil {
			return fmt.Errorf("trainer: allocate batch ids: %w", err)
		}
		a.ibody, a.ibodyCap = buf, needI
	}
	if needI := 2*n + 1; needI > a.iheadCap {
		needI += needI / 4
		free(be, &a.ihead)
		buf, err := be.Int32s(needI)
		if err != nil {
			return fmt.Errorf("trainer: allocate targets: %w", err)
		}
		a.ihead, a.iheadCap = buf, needI
	}

	bt, btc := b*t, b*t*C
	ci := carver{buf: a.ibody}
	a.inp, a.pos, a.bpos, a.sep = ci.take(bt), ci.take(bt), ci.take(bt), ci.take(b)
	ci = carver{buf: a.ihead}
	a.sel, a.tgt = ci.take(n), ci.take(n)

	cb := carver{buf: a.body}
	a.encoded = cb.take(btc)
	a.layers = make([]layerActs, cfg.Layers)
	for l := range a.layers {
		la := &a.layers[l]
		la.ln1, la.ln1Mean, la.ln1Rstd = cb.take(btc), cb.take(bt), cb.take(bt)
		la.qkv, la.atty, la.attSaved = cb.take(3*btc), cb.take(btc), cb.take(attSaved)
		la.attproj, la.res2 = cb.take(btc), cb.take(btc)
		la.ln2, la.ln2Mean, la.ln2Rstd = cb.take(btc), cb.take(bt), cb.take(bt)
		la.fch, la.fchGelu = cb.take(4*btc), cb.take(4*btc)
		la.fcproj, la.res3 = cb.take(btc), cb.take(btc)
	}
	a.lnf, a.lnfMean, a.lnfRstd = cb.take(btc), cb.take(bt), cb.take(bt)
	g := &a.grad
	g.res, g.tmp, g.ln, g.atty, g.lnf = cb.take(btc), cb.take(btc), cb.take(btc), cb.take(btc), cb.take(btc)
	g.qkv, g.fch, g.fchGelu, g.att = cb.take(3*btc), cb.take(4*btc), cb.take(4*btc), cb.take(attScratch)

	ch := carver{buf: a.head}
	a.hsel, a.logits, a.losses, g.hsel = ch.take(n*C), ch.take(n*V), ch.take(n), ch.take(n*C)
	a.b, a.t, a.ns = b, t, n
	return nil
}

// free releases *b if set.
func free(be Backend, b *Buf) {
	if *b != nil {
		be.Free(*b)
		*b = nil
	}
}

// free releases every allocation.
func (a *acts) free(be Backend) {
	free(be, &a.body)
	free(be, &a.head)
	free(be, &a.ibody)
	free(be, &a.ihead)
	*a = acts{}
}
