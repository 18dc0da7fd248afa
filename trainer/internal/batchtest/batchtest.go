// Package batchtest makes the GLM rows and padded batches that the tests
// of trainer and its backends train and compare on: rows laid out by hand
// in GLM's layout (glm-reference.md §2.2) over random text, with the
// vocabulary's last three ids as [MASK], sop and eop and [CLS] 1, padded
// into a loader.Batch; a batch written as safetensors for the PyTorch
// reference scripts; and the central differences that the gradient checks
// of trainer and trainer/cpu compare with (GradError). It is for tests.
package batchtest

import (
	"math/rand/v2"
	"slices"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer/loader"
	"github.com/glmkit/glmkit/trainer/safetensors"
)

// A Row is one GLM row.
type Row struct {
	Input, Target, Pos, BlockPos []int32
	Loss                         []uint8
	Sep                          int32
	Objective                    masking.Objective
}

// RandomText is [CLS] then n−1 uniform ordinary ids (2 … vocab−4).
func RandomText(r *rand.Rand, n, vocab int) []int32 {
	x := make([]int32, n)
	x[0] = 1
	for i := 1; i < n; i++ {
		x[i] = 2 + int32(r.IntN(vocab-5))
	}
	return x
}

// MakeRow masks spans of text in GLM's layout: Part A with each span
// collapsed to [MASK], Part B with each span, in a shuffled order, as
// sop+span → span+eop at its mask's position with block positions
// 1..len+1, and the loss on Part B. With document set it masks one suffix
// span (the generation objective), else spans of 1 to 3 tokens with gaps
// of 1 to gap tokens between them (token objective).
func MakeRow(r *rand.Rand, text []int32, vocab int, document bool, gap int) Row {
	n := len(text)
	mask, sop, eop := int32(vocab-3), int32(vocab-2), int32(vocab-1)
	type span struct{ s, e int }
	var spans []span
	if document {
		spans = []span{{1 + r.IntN(n-2), n}}
	} else {
		for i := 1 + r.IntN(3); i < n-1; {
			l := 1 + r.IntN(3)
			if i+l > n-1 {
				break
			}
			spans = append(spans, span{i, i + l})
			i += l + 1 + r.IntN(gap)
		}
		if len(spans) == 0 {
			spans = []span{{1, 2}}
		}
	}
	row := Row{Objective: masking.Token}
	if document {
		row.Objective = masking.Document
	}
	maskPos := make([]int32, len(spans)) // span k's blank in Part A
	i := 0
	for k, s := range spans {
		row.Input = append(row.Input, text[i:s.s]...)
		maskPos[k] = int32(len(row.Input))
		row.Input = append(row.Input, mask)
		i = s.e
	}
	row.Input = append(row.Input, text[i:]...)
	row.Sep = int32(len(row.Input))
	row.Target = slices.Clone(row.Input)
	for k := range row.Input {
		row.Pos = append(row.Pos, int32(k))
	}
	row.BlockPos = make([]int32, len(row.Input))
	row.Loss = make([]uint8, len(row.Input))
	for _, k := range r.Perm(len(spans)) {
		body := text[spans[k].s:spans[k].e]
		row.Input = append(append(row.Input, sop), body...)
		row.Target = append(append(row.Target, body...), eop)
		for j := range len(body) + 1 {
			row.Pos = append(row.Pos, maskPos[k])
			row.BlockPos = append(row.BlockPos, int32(j+1))
			row.Loss = append(row.Loss, 1)
		}
	}
	return row
}

// Pad pads rows to t positions (the longest row when t is 0), after Part
// B as the loader pads: id 0, loss 0, positions 0 (glm-reference.md
// §2.4). Row j of the batch has index firstRow+j.
func Pad(rows []Row, t int, firstRow int64) loader.Batch {
	for _, r := range rows {
		t = max(t, len(r.Input))
	}
	b := loader.Batch{B: len(rows), T: t}
	for i, r := range rows {
		pad := t - len(r.Input)
		b.Input = append(append(b.Input, r.Input...), make([]int32, pad)...)
		b.Target = append(append(b.Target, r.Target...), make([]int32, pad)...)
		b.Pos = append(append(b.Pos, r.Pos...), make([]int32, pad)...)
		b.BlockPos = append(append(b.BlockPos, r.BlockPos...), make([]int32, pad)...)
		b.LossMask = append(append(b.LossMask, r.Loss...), make([]uint8, pad)...)
		b.Sep = append(b.Sep, r.Sep)
		b.Objective = append(b.Objective, r.Objective)
		b.Rows = append(b.Rows, firstRow+int64(i))
	}
	return b
}

// WriteBatch writes b's columns and seps as safetensors, the input of the
// PyTorch reference scripts (trainer/testdata).
func WriteBatch(path string, b *loader.Batch) error {
	bt := []int{b.B, b.T}
	return safetensors.WriteFile(path, map[string]safetensors.Tensor{
		"input_ids":          safetensors.FromInt32(bt, b.Input),
		"target_ids":         safetensors.FromInt32(bt, b.Target),
		"position_ids":       safetensors.FromInt32(bt, b.Pos),
		"block_position_ids": safetensors.FromInt32(bt, b.BlockPos),
		"loss_mask":          safetensors.FromUint8(bt, b.LossMask),
		"sep":                safetensors.FromInt32([]int{b.B}, b.Sep),
	}, nil)
}
