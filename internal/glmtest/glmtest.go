// Package glmtest holds what the tests of several packages share. It
// makes the synthetic GLM rows of the tests of sharding and trainer/loader
// (masked samples of made-up token ids with BERT's special ids, several
// documents and sentences each, in every objective: Rows; or one long
// document each: LongRows) and writes them as shards (WriteShards); it
// reads, copies and compares the files of builds and checkpoints
// (ReadFile, ReadTree, CopyFiles, SameFiles); and it finds the shared
// corpora and tokenizers in ../shared, skipping a test that needs them
// where they are missing (Shared, Corpus). It imports only masking, so
// that sharding's own tests can use it; it is for tests.
package glmtest

import (
	"testing"

	"github.com/glmkit/glmkit/masking"
)

// IDs are bert-base-uncased's GLM special ids; their vocabulary is 30,592.
func IDs() masking.SpecialIDs {
	return masking.SpecialIDs{Pad: 0, EOS: 0, CLS: 101, Mask: 103, Sep: 102, Unk: 100, SOP: 30522, EOP: 30523, GMask: 30524, SMask: 30525}
}

// Rows masks n synthetic packed samples of 20 to 319 source tokens with
// every objective: row i is masked from key i.
func Rows(tb testing.TB, n int) []masking.Sample { return RowsWithIDs(tb, n, IDs(), 300) }

// RowsWithIDs is Rows with the given special ids and samples of 20 to
// 20+spread−1 source tokens.
func RowsWithIDs(tb testing.TB, n int, ids masking.SpecialIDs, spread int) []masking.Sample {
	tb.Helper()
	c := masking.DefaultConfig()
	c.Weights = [3]float64{0.4, 0.3, 0.3}
	c.IDs = ids
	c.SentenceEnd = make([]bool, max(ids.SMask+1, 30592))
	c.SentenceEnd[1012] = true
	return mask(tb, c, n, func(i int, src []int32) []int32 {
		for j := range 20 + i%spread {
			switch {
			case j%23 == 22: // a document ends, the next begins
				src = append(src, 0, 101)
			case j%9 == 8: // a sentence ends
				src = append(src, 1012)
			default:
				src = append(src, int32(2000+(i*j)%500))
			}
		}
		return src
	})
}

// LongRows masks n one-document samples of srcLen to srcLen+63 source
// tokens, with the default objectives.
func LongRows(tb testing.TB, n, srcLen int) []masking.Sample {
	tb.Helper()
	c := masking.DefaultConfig()
	c.IDs = IDs()
	return mask(tb, c, n, func(i int, src []int32) []int32 {
		for j := range srcLen - 2 + i%64 {
			src = append(src, int32(2000+(i*7+j*13)%20000))
		}
		return src
	})
}

// mask masks n samples, [CLS] text(i) eos each, sample i with key i.
func mask(tb testing.TB, c masking.Config, n int, text func(i int, src []int32) []int32) []masking.Sample {
	tb.Helper()
	m, err := masking.New(c)
	if err != nil {
		tb.Fatal(err)
	}
	rows := make([]masking.Sample, n)
	for i := range rows {
		src := append(text(i, []int32{101}), 0)
		if rows[i], err = m.Mask(uint64(i), 0, src); err != nil {
			tb.Fatal(err)
		}
	}
	return rows
}
