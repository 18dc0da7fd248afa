package trainer

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// Tensor is one parameter tensor: a named range of the model's single flat
// parameter buffer (llm.c's layout). Names are PyTorch state-dict names of
// THUDM/GLM's GLMModel, e.g. "transformer.layers.0.attention.dense.weight".
type Tensor struct {
	Name   string
	Shape  []int
	Offset int  // first element in the flat buffer
	Decay  bool // AdamW weight decay applies (not to biases and LayerNorm)

	role  role
	layer int // -1 outside the blocks
}

// Size is the number of elements.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// role says what a tensor is, independent of its layer.
type role int

const (
	roleWordEmb role = iota
	rolePosEmb
	roleBlockPosEmb
	roleQKVW
	roleProjW
	roleFCW
	roleFCProjW
	roleLN1W
	roleLN1B
	roleQKVB
	roleProjB
	roleLN2W
	roleLN2B
	roleFCB
	roleFCProjB
	roleLNFW
	roleLNFB
	numRoles
)

// Layout returns the parameter tensors of a model of shape c in the order
// of the flat buffer: the embeddings, then each kind of per-layer tensor for
// all layers in turn (llm.c's order), with every tensor that takes weight
// decay before every tensor that does not, so AdamW runs in two calls.
func Layout(c Config) []Tensor {
	C, L, P := c.Hidden, c.Layers, c.MaxPos+1
	var ts []Tensor
	off := 0
	add := func(r role, layer int, name string, shape ...int) {
		t := Tensor{Name: name, Shape: shape, Offset: off, Decay: r <= roleFCProjW, role: r, layer: layer}
		ts = append(ts, t)
		off += t.Size()
	}
	add(roleWordEmb, -1, "word_embeddings.weight", c.Vocab, C)
	add(rolePosEmb, -1, "transformer.position_embeddings.weight", P, C)
	add(roleBlockPosEmb, -1, "transformer.block_position_embeddings.weight", P, C)
	perLayer := []struct {
		r     role
		name  string
		shape []int
	}{
		{roleQKVW, "attention.query_key_value.weight", []int{3 * C, C}},
		{roleProjW, "attention.dense.weight", []int{C, C}},
		{roleFCW, "mlp.dense_h_to_4h.weight", []int{4 * C, C}},
		{roleFCProjW, "mlp.dense_4h_to_h.weight", []int{C, 4 * C}},
		{roleLN1W, "input_layernorm.weight", []int{C}},
		{roleLN1B, "input_layernorm.bias", []int{C}},
		{roleQKVB, "attention.query_key_value.bias", []int{3 * C}},
		{roleProjB, "attention.dense.bias", []int{C}},
		{roleLN2W, "post_attention_layernorm.weight", []int{C}},
		{roleLN2B, "post_attention_layernorm.bias", []int{C}},
		{roleFCB, "mlp.dense_h_to_4h.bias", []int{4 * C}},
		{roleFCProjB, "mlp.dense_4h_to_h.bias", []int{C}},
	}
	for _, k := range perLayer {
		for l := range L {
			add(k.r, l, fmt.Sprintf("transformer.layers.%d.%s", l, k.name), k.shape...)
		}
	}
	add(roleLNFW, -1, "transformer.final_layernorm.weight", C)
	add(roleLNFB, -1, "transformer.final_layernorm.bias", C)
	return ts
}

// NumParams is the number of parameters of a model of shape c.
func (c Config) NumParams() int {
	n := 0
	for _, t := range Layout(c) {
		n += t.Size()
	}
	return n
}

// weights holds views of the flat parameter (or gradient) buffer.
type weights struct {
	wte, wpe, wbpe Buf // (V,C), (P,C), (P,C)
	layers         []layerWeights
	lnfw, lnfb     Buf // (C)
}

// layerWeights are one block's tensors.
type layerWeights struct {
	ln1w, ln1b       Buf // (C)
	qkvw, qkvb       Buf // (3C,C), (3C)
	projw, projb     Buf // (C,C), (C)
	ln2w, ln2b       Buf // (C)
	fcw, fcb         Buf // (4C,C), (4C)
	fcprojw, fcprojb Buf // (C,4C), (C)
}

// bind makes the views of flat for the tensors ts.
func bind(flat Buf, ts []Tensor, layers int) weights {
	w := weights{layers: make([]layerWeights, layers)}
	for _, t := range ts {
		v := flat.Slice(t.Offset, t.Size())
		var lw *layerWeights
		if t.layer >= 0 {
			lw = &w.layers[t.layer]
		}
		switch t.role {
		case roleWordEmb:
			w.wte = v
		case rolePosEmb:
			w.wpe = v
		case roleBlockPosEmb:
			w.wbpe = v
		case roleQKVW:
			lw.qkvw = v
		case roleProjW:
			lw.projw = v
		case roleFCW:
			lw.fcw = v
		case roleFCProjW:
			lw.fcprojw = v
		case roleLN1W:
			lw.ln1w = v
		case roleLN1B:
			lw.ln1b = v
		case roleQKVB:
			lw.qkvb = v
		case roleProjB:
			lw.projb = v
		case roleLN2W:
			lw.ln2w = v
		case roleLN2B:
			lw.ln2b = v
		case roleFCB:
			lw.fcb = v
		case roleFCProjB:
			lw.fcprojb = v
		case roleLNFW:
			w.lnfw = v
		case roleLNFB:
			w.lnfb = v
		}
	}
	return w
}

// initParams fills host with GLM's initialisation: N(0, 0.02) for the
// embeddings and the linear weights, N(0, 0.02/√(2·layers)) for the two
// residual-output projections (attention dense, MLP 4h→h), zero biases,
// LayerNorm (1, 0). Each tensor draws from its own PCG stream keyed by
// (seed, its name), so the values do not depend on the layout order.
func initParams(host []float32, ts []Tensor, c Config, seed uint64) {
	for _, t := range ts {
		dst := host[t.Offset : t.Offset+t.Size()]
		std := 0.0
		switch t.role {
		case roleWordEmb, rolePosEmb, roleBlockPosEmb, roleQKVW, roleFCW:
			std = 0.02
		case roleProjW, roleFCProjW:
			std = 0.02 / math.Sqrt(2*float64(c.Layers))
		case roleLN1W, roleLN2W, roleLNFW:
			for i := range dst {
				dst[i] = 1
			}
			continue
		default: // biases
			clear(dst)
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(t.Name))
		r := rand.New(rand.NewPCG(seed, h.Sum64()))
		for i := range dst {
			dst[i] = float32(std * r.NormFloat64())
		}
	}
}
