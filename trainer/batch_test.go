package trainer_test

import (
	"math/rand/v2"

	"github.com/glmkit/glmkit/trainer/internal/batchtest"
	"github.com/glmkit/glmkit/trainer/loader"
)

// Special ids of the synthetic vocabularies: the last ids are GLM's
// inserted tokens, as in a real vocabulary (glm-reference.md §1).
type specials struct{ pad, cls, mask, sop, eop int32 }

func specialIDs(vocab int) specials {
	v := int32(vocab)
	return specials{pad: 0, cls: 1, mask: v - 3, sop: v - 2, eop: v - 1}
}

// makeRow masks spans of a random text of n source tokens in GLM's
// layout. With document set it masks one suffix span (the generation
// objective), else short spans about 15% of the text, as GLM (token
// objective).
func makeRow(r *rand.Rand, n, vocab int, document bool) batchtest.Row {
	return batchtest.MakeRow(r, batchtest.RandomText(r, n, vocab), vocab, document, 20)
}

// padBatch pads rows to the longest; row j has index firstRow+j.
func padBatch(rows []batchtest.Row, firstRow int64) loader.Batch {
	return batchtest.Pad(rows, 0, firstRow)
}

// glmBatch is a padded batch of B rows of source lengths in [minLen,
// maxLen], mixing token- and document-level rows.
func glmBatch(r *rand.Rand, B, minLen, maxLen, vocab int) loader.Batch {
	rows := make([]batchtest.Row, B)
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
