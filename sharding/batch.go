package sharding

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
	B, T      int
	Input     []int32             // (B,T) input ids
	Target    []int32             // (B,T) target ids, already aligned (no shift)
	LossMask  []uint8             // (B,T) 1 where the loss counts
	Pos       []int32             // (B,T) dim-1 positions
	BlockPos  []int32             // (B,T) dim-2 (block) positions
	Sep       []int32             // (B) Part A length per row
	Lens      []int32             // (B) length of each row before padding
	Objective []masking.Objective // (B) objective per row
	Rows      []int64             // (B) global row index per row
}

// Tokens is the number of loss-bearing positions in the batch.
func (b *Batch) Tokens() int {
	n := 0
	for _, m := range b.LossMask[:b.B*b.T] {
		n += int(m)
	}
	return n
}
