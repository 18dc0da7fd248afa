package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
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

// BenchmarkPlan plans a 64 MB text file as 8 byte-range tasks (the pass that
// hashes it and finds the cuts, then the ranges hashed by 2 workers), and
// the same bytes as 16 files of 4 MB with 1 and 2 workers, beside one
// sha256 pass over the file on one core, the floor of a plan that checks
// its inputs.
func BenchmarkPlan(b *testing.B) {
	data := corpusBytes(b, "wikitext-2-raw/wiki.valid.raw", "wikitext-2-raw/wiki.test.raw")
	data = bytes.Repeat(data, (64<<20)/len(data)+1)[:64<<20]
	path := writeFile(b, b.TempDir(), "big.txt", data)
	b.Run("plan", func(b *testing.B) {
		o := options(b, "bert-base-uncased", "", path)
		o.Config.TaskBytes, o.Workers = 8<<20, 2
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			o.Out = b.TempDir()
			plan, err := Prepare(context.Background(), &o)
			if err != nil {
				b.Fatal(err)
			}
			if len(plan.Tasks) != 8 {
				b.Fatalf("%d tasks, want 8", len(plan.Tasks))
			}
		}
	})
	files := b.TempDir()
	for i := range 16 {
		writeFile(b, files, fmt.Sprintf("%02d.txt", i), data[i<<22:(i+1)<<22])
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("files=16/workers=%d", workers), func(b *testing.B) {
			o := options(b, "bert-base-uncased", "", files)
			o.Workers = workers
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				o.Out = b.TempDir()
				if _, err := Prepare(context.Background(), &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 1<<20)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(sha256.New(), f, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
