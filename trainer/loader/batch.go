package loader

import "github.com/glmkit/glmkit/masking"

// Batch is B rows padded to the longest row in the batch, T. Every (B,T)
// slice is row-major: element (b, t) is at b*T+t.
//
// Padding sits after Part B, in the causal region: input and target are
// the pad id, loss 0 and both positions 0, so no real token attends to it
// and it carries no loss (glm-reference.md §2.4).
//
// A Batch is owned by its caller. Loader.Next swaps its slices with those
// of a batch the loader filled, so a caller that keeps Batches does not
// copy them, and the loader reuses the slices it gets back.
type Batch struct {
	B, T int
	// The five (B,T) columns: input and target ids (aligned, no shift),
	// the loss mask (1 where the loss counts), dim-1 and dim-2 positions.
	masking.Columns[[]int32, []uint8]
	Sep       []int32             // (B) Part A length per row
	Lens      []int32             // (B) length of each row before padding
	Objective []masking.Objective // (B) objective per row
	Rows      []int64             // (B) global row index per row
}

// LossTokens is the number of loss-bearing positions in the batch (the
// positions it trains on; B·T counts the padding too).
func (b *Batch) LossTokens() int {
	n := 0
	for _, m := range b.LossMask[:b.B*b.T] {
		n += int(m)
	}
	return n
}

// CopyTo makes dst a copy of b that shares no memory with it, reusing
// dst's slices: what a caller that keeps a batch across Next calls needs
// (Next hands the loader b's slices to fill again).
func (b *Batch) CopyTo(dst *Batch) {
	dst.B, dst.T = b.B, b.T
	src, out := b.Ints(), dst.Ints()
	for k, c := range src {
		*out[k] = append((*out[k])[:0], *c...)
	}
	dst.LossMask = append(dst.LossMask[:0], b.LossMask...)
	dst.Sep = append(dst.Sep[:0], b.Sep...)
	dst.Lens = append(dst.Lens[:0], b.Lens...)
	dst.Objective = append(dst.Objective[:0], b.Objective...)
	dst.Rows = append(dst.Rows[:0], b.Rows...)
}

// resize sets b's shape to (n, t), reusing its slices when they hold
// n·t elements and otherwise growing them to capacity at least c.
func (b *Batch) resize(n, t, c int) {
	b.B, b.T = n, t
	for _, col := range b.Ints() {
		*col = grow(*col, n*t, c)
	}
	b.LossMask = grow(b.LossMask, n*t, c)
	b.Sep = grow(b.Sep, n, n)
	b.Lens = grow(b.Lens, n, n)
	b.Objective = grow(b.Objective, n, n)
	b.Rows = grow(b.Rows, n, n)
}

func grow[T any](s []T, n, c int) []T {
	if cap(s) < n {
		return make([]T, n, max(n, c))
	}
	return s[:n]
}

// rowAt returns positions [lo, hi) of every column: one row's place.
func (b *Batch) rowAt(lo, hi int) masking.Columns[[]int32, []uint8] {
	return masking.Columns[[]int32, []uint8]{
		Input:    b.Input[lo:hi],
		Target:   b.Target[lo:hi],
		LossMask: b.LossMask[lo:hi],
		Pos:      b.Pos[lo:hi],
		BlockPos: b.BlockPos[lo:hi],
	}
}

// pad fills positions [lo, hi) as padding: pad ids, no loss, positions 0.
func (b *Batch) pad(lo, hi int, pad int32) {
	if pad == 0 {
		clear(b.Input[lo:hi])
		clear(b.Target[lo:hi])
	} else {
		for t := lo; t < hi; t++ {
			b.Input[t], b.Target[t] = pad, pad
		}
	}
	clear(b.LossMask[lo:hi])
	clear(b.Pos[lo:hi])
	clear(b.BlockPos[lo:hi])
}
