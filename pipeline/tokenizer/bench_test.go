package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// benchDocs returns about n bytes of a corpus's documents.
func benchDocs(tb testing.TB, name string, n int) corpus {
	for _, c := range corpora(tb) {
		if c.name != name {
			continue
		}
		out := corpus{name: c.name}
		size := 0
		for _, d := range c.docs {
			if size >= n {
				break
			}
			out.docs = append(out.docs, d)
			size += len(d)
		}
		return out
	}
	tb.Fatalf("corpus %s missing", name)
	return corpus{}
}

// BenchmarkFamilies encodes the same English (WikiText) and Chinese (CMRC
// 2018) documents with every tokenizer family, one Encoder on one core, and
// measures its references on those documents in the same run (Hugging Face
// with one rayon thread, the JavaScript ports single-threaded), reporting
// glmkit's tokens/s, the fastest reference's ("ref-tok/s") and the ratio
// ("x-ref"). Run it on one core:
//
//	go test -run '^$' -bench BenchmarkFamilies -benchtime 3x -cpu 1 ./pipeline/tokenizer
func BenchmarkFamilies(b *testing.B) {
	node := needNode(b)
	tokDir := filepath.Join(sharedDir, "tokenizers")
	refDir := refFiles(b)
	dir := b.TempDir()
	at := writeRefInputs(b, tokDir, dir)
	for _, f := range []string{"cl100k.json", "o200k.json", "llama3.json", "llama2.json"} {
		at[f] = filepath.Join(dir, "hf-"+f)
		hfTextSpecials(b, filepath.Join(refDir, f), at[f])
	}
	fams := append(refFamilies(b, tokDir), unigramFamilies(b, dir)...)
	resolve := func(r refJob) map[string]any {
		j := map[string]any{}
		for k, v := range r.job {
			if s, ok := v.(string); ok && k == "tokenizer" {
				if p, ok := at[s]; ok {
					v = p
				} else if !filepath.IsAbs(s) {
					v = filepath.Join(refDir, s)
				}
			}
			j[k] = v
		}
		return j
	}
	for _, c := range []corpus{benchDocs(b, "wikitext-2-raw", 300_000), benchDocs(b, "zh-cmrc2018", 300_000)} {
		strs := make([]string, len(c.docs))
		for i, d := range c.docs {
			strs[i] = string(d)
		}
		docsPath := filepath.Join(dir, c.name+".json")
		if err := os.WriteFile(docsPath, must(json.Marshal(strs)), 0o644); err != nil {
			b.Fatal(err)
		}
		for _, f := range fams {
			b.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(f.name)+"/"+c.name, func(b *testing.B) {
				// The references first, right before glmkit, so that both
				// see the same machine.
				var jobs []map[string]any
				for _, r := range f.refs {
					jobs = append(jobs, resolve(r))
				}
				jobPath := filepath.Join(dir, "bench-job.json")
				if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "jobs": jobs})), 0o644); err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command(node, filepath.Join(jsDir, "ref_bench.js"), jobPath)
				cmd.Env = append(os.Environ(), "RAYON_NUM_THREADS=1")
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("ref_bench.js: %v", err)
				}
				var res []struct {
					TokensPerS float64 `json:"tokens_per_s"`
				}
				if err := json.Unmarshal(out, &res); err != nil {
					b.Fatal(err)
				}
				best := 0.0
				for _, r := range res {
					best = max(best, r.TokensPerS)
				}
				spec, opts := f.load(refDir, dir)
				tk, err := LoadWith(spec, opts)
				if err != nil {
					b.Fatal(err)
				}
				e := tk.NewEncoder()
				var ids []int32
				for _, d := range c.docs { // warm
					ids, _ = e.Encode(ids[:0], d)
				}
				b.SetBytes(int64(c.bytes()))
				b.ReportAllocs()
				var tokens int64
				start := time.Now()
				for b.Loop() {
					for _, d := range c.docs {
						ids, _ = e.Encode(ids[:0], d)
						tokens += int64(len(ids))
					}
				}
				tps := float64(tokens) / time.Since(start).Seconds()
				b.ReportMetric(tps, "tokens/s")
				b.ReportMetric(best, "ref-tok/s")
				b.ReportMetric(tps/best, "x-ref")
			})
		}
	}
}
