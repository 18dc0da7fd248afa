package pipeline

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
)

// BenchmarkBuild runs glmprep's whole build (hash, read, tokenize, pack,
// mask, validate, write shards and manifest) on WikiText-2 valid + test
// (2.4 MB), with 1 and 2 workers, and reports input MB/s and source
// tokens/s.
func BenchmarkBuild(b *testing.B) {
	inputs := []string{glmtest.Corpus(b, "wikitext-2-raw/wiki.valid.raw"), glmtest.Corpus(b, "wikitext-2-raw/wiki.test.raw")}
	var size int64
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	for _, tok := range []string{"bert-base-uncased", "gpt2"} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", tok, workers), func(b *testing.B) {
				o := options(b, tok, "", inputs...)
				o.Workers = workers
				b.SetBytes(size)
				var tokens int64
				for b.Loop() {
					o.Out = b.TempDir()
					res, err := Build(context.Background(), o)
					if err != nil {
						b.Fatal(err)
					}
					tokens += res.Stats.Doc.SourceTokens
				}
				b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
