package trainer

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/glmkit/glmkit/sharding"
)

// BatchSource yields training or evaluation batches. The shard loader
// implements it; SliceSource is an in-memory one.
type BatchSource interface {
	// Next fills b with the next batch, reusing b's slices, or returns
	// io.EOF when the source is exhausted.
	Next(b *sharding.Batch) error
	// State returns an opaque position that Restore returns to: a source
	// restored to State() after k batches yields what it would have yielded
	// after those k batches.
	State() ([]byte, error)
	// Restore moves the source to a position returned by State.
	Restore(state []byte) error
	// Fingerprint identifies the data (the shard loader: a hash of the
	// builds' manifests and the mixture), or is "" for data that cannot be
	// identified. Train records it in checkpoints and refuses to resume on
	// other data.
	Fingerprint() string
}

// SliceSource is a BatchSource over batches held in memory, read in order.
// With Loop set it starts again after the last batch instead of returning
// io.EOF. Its state is the index of the next batch.
type SliceSource struct {
	Batches []sharding.Batch
	Loop    bool
	next    int
}

// Next implements BatchSource; b receives copies of the stored slices.
func (s *SliceSource) Next(b *sharding.Batch) error {
	if s.next >= len(s.Batches) {
		if !s.Loop || len(s.Batches) == 0 {
			return io.EOF
		}
		s.next = 0
	}
	src := &s.Batches[s.next]
	s.next++
	b.B, b.T = src.B, src.T
	b.Input = append(b.Input[:0], src.Input...)
	b.Target = append(b.Target[:0], src.Target...)
	b.LossMask = append(b.LossMask[:0], src.LossMask...)
	b.Pos = append(b.Pos[:0], src.Pos...)
	b.BlockPos = append(b.BlockPos[:0], src.BlockPos...)
	b.Sep = append(b.Sep[:0], src.Sep...)
	b.Objective = append(b.Objective[:0], src.Objective...)
	b.Rows = append(b.Rows[:0], src.Rows...)
	return nil
}

// Fingerprint implements BatchSource: batches in memory have none.
func (s *SliceSource) Fingerprint() string { return "" }

// State implements BatchSource.
func (s *SliceSource) State() ([]byte, error) {
	return binary.AppendUvarint(nil, uint64(s.next)), nil
}

// Restore implements BatchSource.
func (s *SliceSource) Restore(state []byte) error {
	n, k := binary.Uvarint(state)
	if k <= 0 || k != len(state) || n > uint64(len(s.Batches)) {
		return fmt.Errorf("trainer: slice source: bad state %x for %d batches", state, len(s.Batches))
	}
	s.next = int(n)
	return nil
}

// CloneBatch returns a deep copy of b.
func CloneBatch(b *sharding.Batch) sharding.Batch {
	return sharding.Batch{
		B: b.B, T: b.T,
		Input: slices.Clone(b.Input), Target: slices.Clone(b.Target), LossMask: slices.Clone(b.LossMask),
		Pos: slices.Clone(b.Pos), BlockPos: slices.Clone(b.BlockPos), Sep: slices.Clone(b.Sep),
		Objective: slices.Clone(b.Objective), Rows: slices.Clone(b.Rows),
	}
}
