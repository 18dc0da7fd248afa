package trainer

import (
	"cmp"
	"fmt"
)

// AdamW is the optimizer state of a Model: the first and second moments,
// float32 buffers on the model's backend laid out as its parameters.
// Weight decay applies to the tensors with Tensor.Decay (not to biases and
// LayerNorm parameters); since Layout puts those first, an update is two
// backend calls.
type AdamW struct {
	m, v   Buf
	groups []group
}

// group is a contiguous run of parameters with the same decay setting.
type group struct {
	off, n int
	decay  bool
}

// NewAdamW allocates zero moments for model.
func NewAdamW(model *Model) (*AdamW, error) {
	be := model.Backend()
	o := &AdamW{}
	var err error
	if o.m, err = be.Floats(model.NumParams()); err != nil {
		return nil, fmt.Errorf("trainer: allocate adam moments: %w", err)
	}
	if o.v, err = be.Floats(model.NumParams()); err != nil {
		return nil, fmt.Errorf("trainer: allocate adam moments: %w", err)
	}
	for _, t := range model.Tensors() {
		if k := len(o.groups); k > 0 && o.groups[k-1].decay == t.Decay && o.groups[k-1].off+o.groups[k-1].n == t.Offset {
			o.groups[k-1].n += t.Size()
			continue
		}
		o.groups = append(o.groups, group{off: t.Offset, n: t.Size(), decay: t.Decay})
	}
	return o, nil
}

// Step updates the model's parameters from its gradients. s.WeightDecay
// applies to the decayed groups only; s.T is the 1-based step number.
func (o *AdamW) Step(model *Model, s AdamWStep) error {
	be := model.Backend()
	p, g := model.Params(), model.Grads()
	for _, gr := range o.groups {
		hs := s
		if !gr.decay {
			hs.WeightDecay = 0
		}
		be.AdamW(p.Slice(gr.off, gr.n), g.Slice(gr.off, gr.n), o.m.Slice(gr.off, gr.n), o.v.Slice(gr.off, gr.n), hs)
	}
	if err := be.Err(); err != nil {
		return fmt.Errorf("trainer: adamw step %d: %w", s.T, err)
	}
	return nil
}

// Moments downloads the first and second moments as flat float32 vectors.
func (o *AdamW) Moments(be Backend) (m, v []float32, err error) {
	m, v = make([]float32, o.m.Len()), make([]float32, o.v.Len())
	if err := cmp.Or(be.Download(m, o.m), be.Download(v, o.v)); err != nil {
		return nil, nil, fmt.Errorf("trainer: download adam moments: %w", err)
	}
	return m, v, nil
}

// SetMoments uploads the first and second moments.
func (o *AdamW) SetMoments(be Backend, m, v []float32) error {
	if len(m) != o.m.Len() || len(v) != o.v.Len() {
		return fmt.Errorf("trainer: adam moments of %d and %d values for %d parameters", len(m), len(v), o.m.Len())
	}
	be.Upload(o.m, m)
	be.Upload(o.v, v)
	if err := be.Err(); err != nil {
		return fmt.Errorf("trainer: upload adam moments: %w", err)
	}
	return nil
}

// Close frees the moments and returns the backend's error, if any.
func (o *AdamW) Close(be Backend) error {
	free(be, &o.m)
	free(be, &o.v)
	return be.Err()
}
