package trainer

import (
	"fmt"

	"github.com/glmkit/glmkit/trainer/loader"
)

// KVDecoder is what a backend adds for generation with a key/value cache:
// the attention of a sequence's newest rows alone. Infill uses it when the
// backend has it (the CPU backend does); without it, every generated token
// runs the whole sequence again.
type KVDecoder interface {
	// AttentionDecode is AttentionForward (without dropout) of the last n
	// rows of one sequence of t rows, whose fused q|k|v are the first t
	// rows of qkv: row i (t−n ≤ i < t) sees key j iff j < sep or j ≤ i.
	// qkv (≥t, 3C) → out (n, C)
	AttentionDecode(out, qkv Buf, t, n, sep, c, nh int)
}

// decoder is one generation with a key/value cache: every layer's fused
// qkv of the rows so far, so a new row is one row of work per layer and
// an attention over the rows before it. Rows are only appended, and those
// before a new row never change: Part A sees only Part A, and Part B is
// causal.
type decoder struct {
	m     *Model
	kv    KVDecoder
	t     int   // rows so far
	sep   int   // Part A's length
	cache []Buf // per layer (rows, 3C)
	rows  int   // the cache's capacity
	body  Buf   // the new row's activations (one buffer, carved)
	ints  Buf   // inp, pos, bpos, then the row indexes 0..rows−1
	host  []float32

	x, ln, mean, rstd, qkv, atty, proj, res2, ln2, fch, gelu, fcproj, res3, logits Buf
}

// newDecoder makes a decoder for up to rows rows, or returns nil when the
// backend has no KVDecoder.
func (m *Model) newDecoder(rows int) (*decoder, error) {
	kv, ok := m.be.(KVDecoder)
	if !ok {
		return nil, nil
	}
	C, V := m.cfg.Hidden, m.cfg.Vocab
	d := &decoder{m: m, kv: kv, rows: rows, host: make([]float32, V)}
	var err error
	for range m.cfg.Layers {
		b, err := m.be.Floats(rows * 3 * C)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("trainer: infill: a key/value cache of %d rows: %w", rows, err)
		}
		d.cache = append(d.cache, b)
	}
	if d.body, err = m.be.Floats(19*C + 2 + V); err != nil {
		d.close()
		return nil, fmt.Errorf("trainer: infill: %w", err)
	}
	cb := carver{buf: d.body}
	d.x, d.ln, d.mean, d.rstd = cb.take(C), cb.take(C), cb.take(1), cb.take(1)
	d.qkv, d.atty, d.proj, d.res2, d.ln2 = cb.take(3*C), cb.take(C), cb.take(C), cb.take(C), cb.take(C)
	d.fch, d.gelu, d.fcproj, d.res3, d.logits = cb.take(4*C), cb.take(4*C), cb.take(C), cb.take(C), cb.take(V)
	if d.ints, err = m.be.Int32s(3 + rows); err != nil {
		d.close()
		return nil, fmt.Errorf("trainer: infill: %w", err)
	}
	iota := make([]int32, rows)
	for i := range iota {
		iota[i] = int32(i)
	}
	m.be.UploadInt32(d.ints.Slice(3, rows), iota)
	return d, nil
}

// close frees the decoder's buffers.
func (d *decoder) close() {
	for _, b := range d.cache {
		d.m.be.Free(b)
	}
	for _, b := range []Buf{d.body, d.ints} {
		if b != nil {
			d.m.be.Free(b)
		}
	}
	d.cache, d.body, d.ints = nil, nil, nil
}

// prefill runs Part A (ids at positions 0, 1, …, block position 0) as one
// forward pass and keeps every layer's qkv of it.
func (d *decoder) prefill(ids []int32) error {
	m, n := d.m, len(ids)
	if n > d.rows {
		return fmt.Errorf("trainer: infill: %d rows for a cache of %d", n, d.rows)
	}
	b := loader.Batch{B: 1, T: n, Sep: []int32{int32(n)}}
	b.Input, b.Pos, b.BlockPos, b.Target, b.LossMask = ids, make([]int32, n), make([]int32, n), make([]int32, n), make([]uint8, n)
	for i := range b.Pos {
		b.Pos[i] = int32(i)
	}
	if _, err := m.forward(&b, Pass{}, true); err != nil {
		return fmt.Errorf("trainer: infill: %w", err)
	}
	idx := d.ints.Slice(3, n)
	for l := range m.cfg.Layers {
		m.be.ScatterAddRows(d.cache[l], m.acts.layers[l].qkv, idx, n, 3*m.cfg.Hidden) // the cache is zero there: a copy
	}
	d.t, d.sep = n, n
	return m.be.Err()
}

// step appends the row of id at position pos, block position bpos, and
// returns the logits it predicts (valid until the next step).
func (d *decoder) step(id, pos, bpos int32) ([]float32, error) {
	m := d.m
	if d.t >= d.rows {
		return nil, fmt.Errorf("trainer: infill: the key/value cache of %d rows is full", d.rows)
	}
	be, w, C, NH, V := m.be, &m.w, m.cfg.Hidden, m.cfg.Heads, m.cfg.Vocab
	inp, ps, bps := d.ints.Slice(0, 1), d.ints.Slice(1, 1), d.ints.Slice(2, 1)
	be.UploadInt32(inp, []int32{id})
	be.UploadInt32(ps, []int32{pos})
	be.UploadInt32(bps, []int32{bpos})
	be.EncoderForward(d.x, inp, ps, bps, w.wte, w.wpe, w.wbpe, 1, C) // x (1,C)
	x := d.x
	for l := range m.cfg.Layers {
		lw := &w.layers[l]
		be.LayerNormForward(d.ln, d.mean, d.rstd, x, lw.ln1w, lw.ln1b, 1, C)
		be.MatmulForward(d.qkv, d.ln, lw.qkvw, lw.qkvb, 1, C, 3*C)           // qkv (1,3C)
		be.ScatterAddRows(d.cache[l], d.qkv, d.ints.Slice(3+d.t, 1), 1, 3*C) // into cache row t (zero: a copy)
		d.kv.AttentionDecode(d.atty, d.cache[l], d.t+1, 1, d.sep, C, NH)     // atty (1,C)
		be.MatmulForward(d.proj, d.atty, lw.projw, lw.projb, 1, C, C)
		be.ResidualForward(d.res2, x, d.proj, C)
		be.LayerNormForward(d.ln2, d.mean, d.rstd, d.res2, lw.ln2w, lw.ln2b, 1, C)
		be.MatmulForward(d.fch, d.ln2, lw.fcw, lw.fcb, 1, C, 4*C)
		be.GeluForward(d.gelu, d.fch, 4*C)
		be.MatmulForward(d.fcproj, d.gelu, lw.fcprojw, lw.fcprojb, 1, 4*C, C)
		be.ResidualForward(d.res3, d.res2, d.fcproj, C)
		x = d.res3
	}
	be.LayerNormForward(d.ln, d.mean, d.rstd, x, w.lnfw, w.lnfb, 1, C)
	be.MatmulForward(d.logits, d.ln, w.wte, nil, 1, C, V) // logits (1,V) = lnf·wteᵀ
	if err := be.Download(d.host, d.logits); err != nil {
		return nil, fmt.Errorf("trainer: infill: %w", err)
	}
	d.t++
	return d.host, nil
}
