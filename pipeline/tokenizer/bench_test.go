package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchEncode encodes the documents of c b.N times over with the given
// number of workers, each with its own Encoder, handing out documents in
// chunks of 16. It reports MB/s (through SetBytes), tokens/s, and allocations
// per pass over the corpus.
func benchEncode(b *testing.B, spec string, c corpus, workers int) {
	tk, err := Load(spec)
	if err != nil {
		b.Fatal(err)
	}
	size := c.bytes()
	encs := make([]*Encoder, workers)
	bufs := make([][]int32, workers)
	var tokens int64
	for w := range encs {
		encs[w] = tk.NewEncoder()
		for _, d := range c.docs { // warm the buffers and caches
			bufs[w], _ = encs[w].Encode(bufs[w][:0], d)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				var n int64
				for {
					i := int(next.Add(16)) - 16
					if i >= len(c.docs) {
						break
					}
					for _, d := range c.docs[i:min(i+16, len(c.docs))] {
						bufs[w], _ = encs[w].Encode(bufs[w][:0], d)
						n += int64(len(bufs[w]))
					}
				}
				atomic.AddInt64(&tokens, n)
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
}

func BenchmarkEncode(b *testing.B) {
	english := englishCorpus(b)
	stress := stressCorpus()
	for _, spec := range []string{"bert-base-uncased", "gpt2"} {
		for _, c := range []corpus{english, stress} {
			for _, workers := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/workers=%d", spec, c.name, workers), func(b *testing.B) {
					benchEncode(b, spec, c, workers)
				})
			}
		}
	}
}

// BenchmarkEncodeDoc measures one ~4 KB English document, to show that
// encoding allocates nothing per document once warm.
func BenchmarkEncodeDoc(b *testing.B) {
	doc := englishCorpus(b).docs[1]
	for _, spec := range []string{"bert-base-uncased", "gpt2"} {
		b.Run(spec, func(b *testing.B) {
			tk, err := Load(spec)
			if err != nil {
				b.Fatal(err)
			}
			e := tk.NewEncoder()
			ids, _ := e.Encode(nil, doc)
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				ids, _ = e.Encode(ids[:0], doc)
			}
		})
	}
}

// TestDumpBenchCorpora writes the benchmark corpora as JSON arrays of
// strings into $GLMKIT_BENCH_DUMP, for bench.sh to give Hugging Face the
// same documents. Skipped when the variable is unset.
func TestDumpBenchCorpora(t *testing.T) {
	dir := os.Getenv("GLMKIT_BENCH_DUMP")
	if dir == "" {
		t.Skip("GLMKIT_BENCH_DUMP not set")
	}
	for _, c := range []corpus{englishCorpus(t), stressCorpus()} {
		docs := make([]string, len(c.docs))
		for i, d := range c.docs {
			docs[i] = string(appendRepaired(nil, d))
		}
		data, err := json.Marshal(docs)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name+".json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
