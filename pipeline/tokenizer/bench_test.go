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

// benchDocs returns about n bytes of a corpus's documents, from skip bytes on.
func benchDocs(tb testing.TB, name string, skip, n int) corpus {
	for _, c := range corpora(tb) {
		if c.name != name {
			continue
		}
		out := corpus{name: c.name}
		pos, size := 0, 0
		for _, d := range c.docs {
			pos += len(d)
			if pos <= skip {
				continue
			}
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
// measures its references on those documents in the same run, right before
// it (Hugging Face with one rayon thread, the JavaScript ports
// single-threaded). Every side first encodes other documents of the corpus
// (JIT, caches), then the timed ones once per pass, so that no word cache
// holds a whole timed document. It reports glmkit's tokens/s, Hugging
// Face's ("hf-tok/s") and the fastest JavaScript port's ("js-tok/s") where
// the family has one, and the ratios. Run it on one core:
//
//	go test -run '^$' -bench BenchmarkFamilies -benchtime 3x -cpu 1 -timeout 60m ./pipeline/tokenizer
func BenchmarkFamilies(b *testing.B) {
	node := needNode(b)
	tokDir := filepath.Join(sharedDir, "tokenizers")
	fb := familyBench{node: node, refDir: refFiles(b), dir: b.TempDir()}
	fb.at = writeRefInputs(b, tokDir, fb.dir)
	for _, f := range []string{"cl100k.json", "o200k.json", "llama3.json", "llama2.json"} {
		fb.at[f] = filepath.Join(fb.dir, "hf-"+f)
		hfTextSpecials(b, filepath.Join(fb.refDir, f), fb.at[f])
	}
	fb.corpora(b, append(refFamilies(b, tokDir), unigramFamilies(b, fb.dir)...))
}

// BenchmarkRealTokenizerFiles is BenchmarkFamilies for every tokenizer.json
// of the folder GLMKIT_TOKENIZER_FILES names (see TestRealTokenizerFiles),
// against Hugging Face.
func BenchmarkRealTokenizerFiles(b *testing.B) {
	dir := os.Getenv("GLMKIT_TOKENIZER_FILES")
	if dir == "" {
		b.Skip("GLMKIT_TOKENIZER_FILES not set: no folder of real tokenizer.json files (testdata/js/real_tokenizers.sh fetches them)")
	}
	fb := familyBench{node: needNode(b), dir: b.TempDir()}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no tokenizer.json files in %s (%v)", dir, err)
	}
	var fams []refFamily
	for _, f := range files {
		hf := filepath.Join(fb.dir, "hf-"+filepath.Base(f))
		hfTextTokens(b, f, hf, loadCached(b, f, LoadOptions{}).glmIDs())
		fams = append(fams, refFamily{name: strings.TrimSuffix(filepath.Base(f), ".json"),
			load: func(string, string) (string, LoadOptions) { return f, LoadOptions{} },
			refs: []refJob{{job: map[string]any{"tokenizer": hf}, label: "Hugging Face"}}})
	}
	fb.corpora(b, fams)
}

// corpora runs each family on English and Chinese text.
func (fb *familyBench) corpora(b *testing.B, fams []refFamily) {
	writeDocs := func(c corpus, path string) {
		strs := make([]string, len(c.docs))
		for i, d := range c.docs {
			strs[i] = string(d)
		}
		if err := os.WriteFile(path, must(json.Marshal(strs)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range []string{"wikitext-2-raw", "zh-cmrc2018"} {
		fb.warm, fb.timed = benchDocs(b, name, 0, 100_000), benchDocs(b, name, 100_000, 300_000)
		fb.warmPath, fb.docsPath = filepath.Join(fb.dir, name+"-warm.json"), filepath.Join(fb.dir, name+".json")
		writeDocs(fb.warm, fb.warmPath)
		writeDocs(fb.timed, fb.docsPath)
		for _, f := range fams {
			b.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(f.name)+"/"+name, func(b *testing.B) {
				fb.run(b, f)
			})
		}
	}
}

// familyBench is the state of BenchmarkFamilies: the references' inputs,
// and the warm-up and timed documents of the corpus being run.
type familyBench struct {
	node, refDir, dir  string
	at                 map[string]string
	warm, timed        corpus
	warmPath, docsPath string
}

// run measures the family's references (ref_bench.js), then the family.
func (fb *familyBench) run(b *testing.B, f refFamily) {
	hf, js := fb.references(b, f)
	spec, opts := f.load(fb.refDir, fb.dir)
	tk := loadCached(b, spec, opts)
	b.SetBytes(int64(fb.timed.bytes()))
	b.ReportAllocs()
	var tokens int64
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		e := tk.NewEncoder() // a fresh word cache, warmed on other documents
		var ids []int32
		for _, d := range fb.warm.docs {
			ids, _ = e.Encode(ids[:0], d)
		}
		b.StartTimer()
		start := time.Now()
		for _, d := range fb.timed.docs {
			ids, _ = e.Encode(ids[:0], d)
			tokens += int64(len(ids))
		}
		elapsed += time.Since(start)
	}
	tps := float64(tokens) / elapsed.Seconds()
	b.ReportMetric(tps, "tokens/s")
	if hf > 0 {
		b.ReportMetric(hf, "hf-tok/s")
		b.ReportMetric(tps/hf, "x-hf")
	}
	if js > 0 {
		b.ReportMetric(js, "js-tok/s")
		b.ReportMetric(tps/js, "x-js")
	}
}

// references runs the family's references on the documents and returns
// Hugging Face's tokens/s and the fastest JavaScript port's (0: none).
func (fb *familyBench) references(b *testing.B, f refFamily) (hf, js float64) {
	var jobs []map[string]any
	for _, r := range f.refs {
		jobs = append(jobs, resolveRefJob(map[string]any{}, r, fb.at, fb.refDir))
	}
	jobPath := filepath.Join(fb.dir, "bench-job.json")
	if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"warm": fb.warmPath, "docs": fb.docsPath, "jobs": jobs})), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(fb.node, filepath.Join(jsDir, "ref_bench.js"), jobPath)
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
	for i, r := range f.refs {
		if r.label == "Hugging Face" {
			hf = max(hf, res[i].TokensPerS)
		} else {
			js = max(js, res[i].TokensPerS)
		}
	}
	return hf, js
}
