package loader

import (
	"fmt"
	"testing"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
)

var testIDs = masking.SpecialIDs{Pad: 0, EOS: 0, CLS: 101, Mask: 103, Sep: 102, Unk: 100, SOP: 30522, EOP: 30523, GMask: 30524, SMask: 30525}

func testMeta() sharding.Meta {
	c := masking.DefaultConfig()
	c.IDs = testIDs
	return sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: "test", TokenizerSHA256: "00", VocabSize: 30592, Special: testIDs, SeqLen: 512, MaskEpochs: 1, Masking: c}
}

// testRows masks n synthetic samples of 20 to 320 source tokens, several
// documents and sentences each, with every objective.
func testRows(t testing.TB, n int) []masking.Sample {
	t.Helper()
	c := masking.DefaultConfig()
	c.Weights = [3]float64{0.4, 0.3, 0.3}
	c.IDs = testIDs
	c.SentenceEnd = make([]bool, 30592)
	c.SentenceEnd[1012] = true
	return maskRows(t, c, n, func(i int, src []int32) []int32 {
		for j := range 20 + i%300 {
			switch {
			case j%23 == 22:
				src = append(src, 0, 101)
			case j%9 == 8:
				src = append(src, 1012)
			default:
				src = append(src, int32(2000+(i*j)%500))
			}
		}
		return src
	})
}

// longRows masks n one-document samples of about srcLen source tokens.
func longRows(tb testing.TB, n, srcLen int) []masking.Sample {
	tb.Helper()
	c := masking.DefaultConfig()
	c.IDs = testIDs
	return maskRows(tb, c, n, func(i int, src []int32) []int32 {
		for j := range srcLen - 2 + i%64 {
			src = append(src, int32(2000+(i*7+j*13)%20000))
		}
		return src
	})
}

// maskRows masks n samples, [CLS] text(i) eos each.
func maskRows(tb testing.TB, c masking.Config, n int, text func(i int, src []int32) []int32) []masking.Sample {
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

// writeBuild writes rows as a build directory: shards of perShard rows and
// a manifest (meta: testMeta's unless opts sets one). Row i gets doc id i.
func writeBuild(tb testing.TB, dir string, rows []masking.Sample, perShard int, opts sharding.Options) *sharding.Manifest {
	tb.Helper()
	if opts.Meta.FormatVersion == 0 {
		opts.Meta = testMeta()
	}
	w, err := sharding.Create(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	m := &sharding.Manifest{FormatVersion: opts.Meta.FormatVersion, Meta: opts.Meta, Config: []byte("{}"), Stats: []byte("{}")}
	for i := range rows {
		if err := w.Write(&rows[i], uint64(i)); err != nil {
			tb.Fatal(err)
		}
		if (i+1)%perShard == 0 || i == len(rows)-1 {
			sf, err := w.Commit(fmt.Sprintf("shard-%06d-0000.arrow", len(m.Shards)))
			if err != nil {
				tb.Fatal(err)
			}
			m.Shards = append(m.Shards, sf)
		}
	}
	m.Sum()
	if err := sharding.WriteManifest(dir, m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustOpen(tb testing.TB, dir string, opts ...sharding.OpenOption) *sharding.Reader {
	tb.Helper()
	r, err := sharding.Open(dir, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}
