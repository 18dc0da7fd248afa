package trainer_test

import (
	"math/rand/v2"
	"slices"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer/loader"
)

// Special ids of the synthetic vocabularies: the last ids are GLM's
// inserted tokens, as in a real vocabulary (glm-reference.md §1).
type specials struct{ pad, cls, mask, sop, eop int32 }

func specialIDs(vocab int) specials {
	v := int32(vocab)
	return specials{pad: 0, cls: 1, mask: v - 3, sop: v - 2, eop: v - 1}
}

// glmRow is one row in GLM's layout (glm-reference.md §2.2): Part A is the
// text with each span collapsed to [MASK]; Part B holds each span as
// inputs sop+span and targets span+eop, at its mask's position with block
// positions 1..len+1; the loss covers Part B only.
type glmRow struct {
	input, target, pos, bpos []int32
	loss                     []uint8
	sep                      int32
	obj                      masking.Objective
}

// makeRow masks spans of a random text of n source tokens. With document
// set it masks one suffix span (the generation objective), else short
// spans (token objective).
func makeRow(r *rand.Rand, n, vocab int, document bool) glmRow {
	sp := specialIDs(vocab)
	text := make([]int32, n)
	text[0] = sp.cls
	for i := 1; i < n; i++ {
		text[i] = 2 + int32(r.IntN(vocab-5)) // ordinary ids
	}
	type span struct{ s, e int }
	var spans []span
	if document {
		s := 1 + r.IntN(n-2)
		spans = []span{{s, n}}
	} else {
		for i := 1 + r.IntN(3); i < n-1; {
			l := 1 + r.IntN(3)
			if i+l > n-1 {
				break
			}
			spans = append(spans, span{i, i + l})
			i += l + 1 + r.IntN(20) // about 15% masked, as GLM
		}
		if len(spans) == 0 {
			spans = []span{{1, 2}}
		}
	}
	var row glmRow
	row.obj = masking.Token
	if document {
		row.obj = masking.Document
	}
	// Part A, left to right; maskPos[k] is span k's compressed position
	maskPos := make([]int32, len(spans))
	i := 0
	for k, s := range spans {
		for ; i < s.s; i++ {
			row.input = append(row.input, text[i])
		}
		maskPos[k] = int32(len(row.input))
		row.input = append(row.input, sp.mask)
		i = s.e
	}
	row.input = append(row.input, text[i:]...)
	row.sep = int32(len(row.input))
	row.target = slices.Clone(row.input)
	for k := range row.input {
		row.pos = append(row.pos, int32(k))
	}
	row.bpos = make([]int32, len(row.input))
	row.loss = make([]uint8, len(row.input))
	// Part B in a shuffled span order
	order := r.Perm(len(spans))
	for _, k := range order {
		s := spans[k]
		body := text[s.s:s.e]
		row.input = append(append(row.input, sp.sop), body...)
		row.target = append(append(row.target, body...), sp.eop)
		for j := range len(body) + 1 {
			row.pos = append(row.pos, maskPos[k])
			row.bpos = append(row.bpos, int32(j+1))
			row.loss = append(row.loss, 1)
		}
	}
	return row
}

// padBatch pads rows to the longest (padding: id 0, loss 0, positions 0,
// after Part B; glm-reference.md §2.4).
func padBatch(rows []glmRow, firstRow int64) loader.Batch {
	t := 0
	for _, r := range rows {
		t = max(t, len(r.input))
	}
	b := loader.Batch{B: len(rows), T: t}
	for i, r := range rows {
		pad := t - len(r.input)
		b.Input = append(append(b.Input, r.input...), make([]int32, pad)...)
		b.Target = append(append(b.Target, r.target...), make([]int32, pad)...)
		b.Pos = append(append(b.Pos, r.pos...), make([]int32, pad)...)
		b.BlockPos = append(append(b.BlockPos, r.bpos...), make([]int32, pad)...)
		b.LossMask = append(append(b.LossMask, r.loss...), make([]uint8, pad)...)
		b.Sep = append(b.Sep, r.sep)
		b.Objective = append(b.Objective, r.obj)
		b.Rows = append(b.Rows, firstRow+int64(i))
	}
	return b
}

// glmBatch is a padded batch of B rows of source lengths in [minLen,
// maxLen], mixing token- and document-level rows.
func glmBatch(r *rand.Rand, B, minLen, maxLen, vocab int) loader.Batch {
	rows := make([]glmRow, B)
	for i := range rows {
		rows[i] = makeRow(r, minLen+r.IntN(maxLen-minLen+1), vocab, i%3 == 2)
	}
	return padBatch(rows, 0)
}

// glmBatches is n batches from one seed.
func glmBatches(seed uint64, n, B, minLen, maxLen, vocab int) []loader.Batch {
	r := rand.New(rand.NewPCG(seed, 77))
	bs := make([]loader.Batch, n)
	for i := range bs {
		bs[i] = glmBatch(r, B, minLen, maxLen, vocab)
		for j := range bs[i].Rows {
			bs[i].Rows[j] = int64(i*B + j)
		}
	}
	return bs
}
