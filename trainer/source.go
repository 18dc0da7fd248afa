package trainer

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/glmkit/glmkit/trainer/loader"
)

// BatchSource yields training or evaluation batches. The shard loader
// implements it; SliceSource is an in-memory one.
type BatchSource interface {
	// Next fills b with the next batch, reusing b's slices, or returns
	// io.EOF when the source is exhausted.
	Next(b *loader.Batch) error
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
	Batches []loader.Batch
	Loop    bool
	next    int
}

// Next implements BatchSource; b receives a copy of the stored batch.
func (s *SliceSource) Next(b *loader.Batch) error {
	if s.next >= len(s.Batches) {
		if !s.Loop || len(s.Batches) == 0 {
			return io.EOF
		}
		s.next = 0
	}
	s.Batches[s.next].CopyTo(b)
	s.next++
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
