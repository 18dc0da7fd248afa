package masking

// Columns are the five per-position columns of GLM rows, in the order the
// shards store them. One type serves every holder of them: a Sample (one
// row), a shard reader's view of a row, a training batch (rows padded to
// one length, row-major) and a shard writer's buffer. I is the type of the
// four integer columns and M that of the loss mask: []int32 and []uint8
// where glmkit computes on rows, and the sharding package's views of the
// narrow and bit-packed columns that format 2 stores, where a reader hands
// out rows without copying them.
type Columns[I, M any] struct {
	Input    I // Part A ++ Part B inputs
	Target   I // Part A (never used) ++ Part B targets; already aligned, no shift
	LossMask M // 0 on Part A, 1 on Part B (the dataset rule on the suffix layout)
	Pos      I // dim-1 positions: Part A index; a Part B token has its blank's position
	BlockPos I // dim-2 positions: 0 on Part A, 1..len+1 inside each Part B span
}

// Ints returns the four integer columns, Input, Target, Pos and BlockPos,
// for code that treats them alike.
func (c *Columns[I, M]) Ints() [4]*I {
	return [4]*I{&c.Input, &c.Target, &c.Pos, &c.BlockPos}
}
