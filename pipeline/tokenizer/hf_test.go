package tokenizer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// jsDir holds the pinned npm reference (package.json + package-lock.json).
const jsDir = "../../testdata/js"

// needNode skips the test unless node and the npm reference are installed.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: cannot run the Hugging Face reference (CI installs it)")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules/@anush008/tokenizers")); err != nil {
		t.Skip("testdata/js/node_modules missing: run `cd testdata/js && npm ci` to compare with Hugging Face tokenizers")
	}
	return node
}

// hfTokenizerJSON writes a copy of the tokenizer.json at src with
// added_tokens emptied (so HF encodes literal special-token strings as text,
// as we do), after applying edit to the decoded object.
func hfTokenizerJSON(t *testing.T, src, dst string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	obj["added_tokens"] = []any{}
	if edit != nil {
		edit(obj)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readIDs reads hf_encode.js output.
func readIDs(t *testing.T, path string, ndocs int) [][]int32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]int32, 0, ndocs)
	for len(data) > 0 {
		n := int(binary.LittleEndian.Uint32(data))
		data = data[4:]
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
		}
		data = data[4*n:]
		out = append(out, ids)
	}
	if len(out) != ndocs {
		t.Fatalf("%s: %d documents, want %d", path, len(out), ndocs)
	}
	return out
}

// TestHuggingFace encodes every shared corpus and the stress set with our
// encoders and with Hugging Face tokenizers (through node) and requires
// identical ids for bert-base-uncased, gpt2 and bert-base-chinese.
//
// What HF runs: the published tokenizer.json files of bert-base-uncased and
// gpt2 with added_tokens emptied; for bert-base-chinese, which has no
// tokenizer.json here, (1) its vocab.txt as HF's BertWordPieceTokenizer
// builds it (BertNormalizer defaults: lowercase and strip accents), which is
// what Load does with a bare vocab.txt, and (2) the Hub's settings for it
// (do_lower_case false: BertNormalizer lowercase false) as a tokenizer.json
// built from bert-base-uncased's, read by both sides.
func TestHuggingFace(t *testing.T) {
	node := needNode(t)
	cs := append(corpora(t), stressCorpus())
	var docs []string
	for _, c := range cs {
		for _, d := range c.docs {
			docs = append(docs, string(d)) // json.Marshal repairs invalid UTF-8 byte by byte
		}
	}
	dir := t.TempDir()
	docsPath := filepath.Join(dir, "docs.json")
	data, err := json.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(docsPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tokDir := filepath.Join(sharedDir, "tokenizers")
	chineseVocab := filepath.Join(tokDir, "bert-base-chinese/vocab.txt")
	bertJSON := filepath.Join(dir, "bert-base-uncased.json")
	gpt2JSON := filepath.Join(dir, "gpt2.json")
	chineseJSON := filepath.Join(dir, "bert-base-chinese-cased.json")
	hfTokenizerJSON(t, filepath.Join(tokDir, "bert-base-uncased/tokenizer.json"), bertJSON, nil)
	hfTokenizerJSON(t, filepath.Join(tokDir, "gpt2/tokenizer.json"), gpt2JSON, nil)
	hfTokenizerJSON(t, filepath.Join(tokDir, "bert-base-uncased/tokenizer.json"), chineseJSON, func(obj map[string]any) {
		obj["normalizer"].(map[string]any)["lowercase"] = false
		lines := splitLines(must(os.ReadFile(chineseVocab)))
		vocab := make(map[string]int, len(lines))
		for i, l := range lines {
			vocab[l] = i
		}
		obj["model"].(map[string]any)["vocab"] = vocab
	})

	type config struct {
		name string
		load string // for Load
		job  map[string]string
	}
	configs := []config{
		{"bert-base-uncased", "bert-base-uncased", map[string]string{"tokenizer": bertJSON}},
		{"gpt2", "gpt2", map[string]string{"tokenizer": gpt2JSON}},
		{"bert-base-chinese (vocab.txt, HF defaults)", chineseVocab, map[string]string{"vocab": chineseVocab}},
		{"bert-base-chinese (tokenizer.json, lowercase false)", chineseJSON, map[string]string{"tokenizer": chineseJSON}},
	}
	var jobs []map[string]string
	for i, c := range configs {
		c.job["out"] = filepath.Join(dir, fmt.Sprintf("ids%d.bin", i))
		jobs = append(jobs, c.job)
	}
	jobPath := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobPath, must(json.Marshal(map[string]any{"docs": docsPath, "jobs": jobs})), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, node, filepath.Join(jsDir, "hf_encode.js"), jobPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hf_encode.js: %v\n%s", err, out)
	}
	t.Logf("Hugging Face encoded %d documents %d times in %v", len(docs), len(configs), time.Since(start).Round(time.Millisecond))

	for i, c := range configs {
		want := readIDs(t, jobs[i]["out"], len(docs))
		tk, err := Load(c.load)
		if err != nil {
			t.Fatal(err)
		}
		enc := tk.NewEncoder()
		k := 0
		for _, cp := range cs {
			var ntok, bad int
			for di, d := range cp.docs {
				got, err := enc.Encode(nil, d)
				if err != nil {
					t.Fatal(err)
				}
				ntok += len(want[k])
				if !slices.Equal(got, want[k]) {
					bad++
					if bad <= 3 {
						t.Errorf("%s: %s doc %d differs from Hugging Face\ndoc: %q\nhf:  %v\nours: %v", c.name, cp.name, di, d, want[k], got)
					}
				}
				k++
			}
			t.Logf("%-52s %-20s %6d docs %9d tokens %4d mismatches", c.name, cp.name, len(cp.docs), ntok, bad)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
