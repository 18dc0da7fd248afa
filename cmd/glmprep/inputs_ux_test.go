package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/sharding"
)

// Tests of issue 16's input items through the glmprep binary: JSON
// documents, several text fields, --max-records, the held-out split and
// build --resume from plan.json.

// shardBytes returns the shard files of a build (not the manifest, plan
// or records, which name the inputs).
func shardBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for name, b := range readDir(t, dir) {
		if strings.HasPrefix(name, "shard-") {
			out[name] = b
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no shards", dir)
	}
	return out
}

func buildStats(t *testing.T, dir string) pipeline.Stats {
	t.Helper()
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s pipeline.Stats
	if err := json.Unmarshal(m.Stats, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// squadContexts reads the paragraphs' contexts of a SQuAD-style .json.zst.
func squadContexts(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	b, err := dec.DecodeAll(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data []struct {
			Paragraphs []struct {
				Context string `json:"context"`
			} `json:"paragraphs"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var ctx []string
	for _, a := range doc.Data {
		for _, p := range a.Paragraphs {
			ctx = append(ctx, p.Context)
		}
	}
	return ctx
}

func writeJSONL(t *testing.T, path string, texts []string) {
	t.Helper()
	var b bytes.Buffer
	for _, s := range texts {
		line, _ := json.Marshal(map[string]string{"text": s})
		b.Write(append(line, '\n'))
	}
	os.WriteFile(path, b.Bytes(), 0o644)
}

// A .json that is one document is read as its records: SQuAD's paragraphs
// (objects or their context strings), and a list of records, compact or
// indented, give the shards of the same records as JSON Lines; without
// --json-path an object document is refused, naming its keys; JSON Lines
// named .json stay JSON Lines.
func TestJSONDocuments(t *testing.T) {
	squad := glmtest.Corpus(t, "zh/cmrc2018_dev.json.zst")
	contexts := squadContexts(t, squad)
	src := t.TempDir()
	flags := []string{"--quiet", "--seq-len", "128", "--shard-rows", "300", "--tokenizer", glmtest.Shared(t, "tokenizers/bert-base-chinese/vocab.txt")}
	ref := filepath.Join(t.TempDir(), "ref")
	writeJSONL(t, filepath.Join(src, "contexts.jsonl"), contexts)
	mustGlmprep(t, append([]string{"build", "--input", filepath.Join(src, "contexts.jsonl"), "--out", ref}, flags...)...)
	want := shardBytes(t, ref)

	_, stderr, code := glmprepBin(t, nil, append([]string{"build", "--input", squad, "--out", filepath.Join(t.TempDir(), "x")}, flags...)...)
	if code != 1 || !strings.Contains(stderr, `is one JSON object (top-level keys: "version": a string, "data": a list of `) || !strings.Contains(stderr, "--json-path") {
		t.Errorf("a SQuAD file without --json-path: exit %d, %s", code, stderr)
	}
	empty := filepath.Join(src, "empty.json")
	os.WriteFile(empty, []byte("{}\n"), 0o644)
	if _, stderr, code := glmprepBin(t, nil, "build", "--input", empty, "--out", filepath.Join(t.TempDir(), "e"), "--quiet"); code != 1 || !strings.Contains(stderr, "is one JSON object with no keys it could list") {
		t.Errorf("an empty JSON object: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{
		{"--json-path", "data.paragraphs", "--text-field", "context"},
		{"--json-path", "data.paragraphs.context"},
	} {
		out := filepath.Join(t.TempDir(), "squad")
		mustGlmprep(t, append(append([]string{"build", "--input", squad, "--out", out}, flags...), args...)...)
		glmtest.SameFiles(t, "shards of the SQuAD file with "+strings.Join(args, " "), want, shardBytes(t, out))
		if st := buildStats(t, out); st.Doc.Records != int64(len(contexts)) || st.Skipped() != 0 {
			t.Errorf("%v: %d records, %d skipped; want the %d paragraphs", args, st.Doc.Records, st.Skipped(), len(contexts))
		}
	}

	// A list of records, one line or indented, plain and .gz.
	var recs []map[string]any
	for i, c := range contexts[:200] {
		recs = append(recs, map[string]any{"id": i, "text": c, "meta": map[string]any{"tags": []string{"a", "]}\\\""}}})
	}
	compact, _ := json.Marshal(recs)
	indented, _ := json.MarshalIndent(recs, "", "  ")
	ref2 := filepath.Join(t.TempDir(), "ref2")
	writeJSONL(t, filepath.Join(src, "first200.jsonl"), contexts[:200])
	// --max-doc-bytes bounds each record, well above any of these and well
	// below all 200 together.
	flags = append(flags, "--max-doc-bytes", "16384")
	mustGlmprep(t, append([]string{"build", "--input", filepath.Join(src, "first200.jsonl"), "--out", ref2}, flags...)...)
	for name, b := range map[string][]byte{"compact.json": compact, "indented.json": indented} {
		path := filepath.Join(src, name)
		os.WriteFile(path, b, 0o644)
		out := filepath.Join(t.TempDir(), name)
		mustGlmprep(t, append([]string{"build", "--input", path, "--out", out}, flags...)...)
		glmtest.SameFiles(t, "shards of "+name, shardBytes(t, ref2), shardBytes(t, out))
		if st := buildStats(t, out); st.Doc.Records != 200 || st.Skipped() != 0 {
			t.Errorf("%s: %d records, %d skipped; want 200, none skipped", name, st.Doc.Records, st.Skipped())
		}
		if p, _ := pipeline.ReadPlan(out); p == nil || p.Inputs[0].Format != "json" {
			t.Errorf("%s was not read as a JSON document", name)
		}
	}

	// JSON Lines named .json.gz stay JSON Lines.
	out := filepath.Join(t.TempDir(), "c4")
	mustGlmprep(t, "build", "--input", filepath.Join(glmtest.Corpus(t, "web-jsonl-samples"), "c4-sample.01.json.gz"), "--out", out, "--quiet")
	c4 := buildStats(t, out)
	if p, _ := pipeline.ReadPlan(out); p.Inputs[0].Format != "jsonl" || c4.Skipped() != 0 {
		t.Errorf("c4-sample.01.json.gz: format %s, %d skipped", p.Inputs[0].Format, c4.Skipped())
	}

	// A document cut short: the records before the damage are kept.
	cut := filepath.Join(src, "cut.json")
	os.WriteFile(cut, compact[:len(compact)/2], 0o644)
	out = filepath.Join(t.TempDir(), "cut")
	_, stderr, code = glmprepBin(t, nil, append([]string{"build", "--input", cut, "--out", out}, flags...)...)
	st := buildStats(t, out)
	if code != 0 || !strings.Contains(stderr, "truncated: invalid JSON at byte") || st.Doc.TruncatedIn != 1 || st.Doc.Documents < 50 || st.Doc.Documents >= 200 || len(st.Damage) != 1 {
		t.Errorf("a cut document: exit %d, %d documents, damage %v: %s", code, st.Doc.Documents, st.Damage, stderr)
	}
	// --json-path on JSON Lines is refused.
	if _, stderr, code := glmprepBin(t, nil, "build", "--input", filepath.Join(src, "first200.jsonl"), "--json-path", "data", "--out", filepath.Join(t.TempDir(), "y")); code != 1 || !strings.Contains(stderr, "is JSON Lines; --json-path data applies to JSON documents") {
		t.Errorf("--json-path on JSON Lines: exit %d, %s", code, stderr)
	}
}

// A build of a JSON document killed after a committed shard and resumed
// gives the bytes of an uninterrupted build (the document is read again,
// the records written skipped).
func TestJSONDocumentResume(t *testing.T) {
	squad := glmtest.Corpus(t, "zh/cmrc2018_dev.json.zst")
	flags := []string{"--input", squad, "--json-path", "data.paragraphs", "--text-field", "context", "--quiet", "--seq-len", "128",
		"--shard-rows", "200", "--tokenizer", glmtest.Shared(t, "tokenizers/bert-base-chinese/vocab.txt")}
	ref := t.TempDir()
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)
	dir := t.TempDir()
	cmd, out := glmprepProcess(t, []string{"GLMKIT_TEST_CRASH=record-written:0/2"}, append([]string{"build", "--out", dir}, flags...)...)
	waitKilled(t, cmd, out)
	if _, se, err := glmprep(t, "build", "--out", dir, "--resume", "--quiet"); err != nil {
		t.Fatalf("resume: %v\n%s", err, se)
	}
	glmtest.SameFiles(t, "resumed build", readDir(t, ref), readDir(t, dir))
}

// Several --text-field values are one document, joined by a blank line in
// the order given, the same as a JSON Lines text of them so joined.
func TestSeveralTextFields(t *testing.T) {
	src := t.TempDir()
	var in, joined bytes.Buffer
	for i := range 300 {
		title, body := fmt.Sprintf("Title %d", i), fmt.Sprintf("The body of record %d. It has two sentences.", i)
		rec := map[string]any{"body": body, "meta": map[string]string{"title": title}}
		text := title + "\n\n" + body
		switch i % 10 {
		case 3:
			delete(rec, "meta") // no title: the body alone
			text = body
		case 7:
			rec["meta"] = map[string]string{"title": ""} // an empty title: no separator
			text = body
		}
		b, _ := json.Marshal(rec)
		in.Write(append(b, '\n'))
		b, _ = json.Marshal(map[string]string{"text": text})
		joined.Write(append(b, '\n'))
	}
	in.WriteString(`{"other": 1}` + "\n" + `{"meta": {"title": 5}, "body": "x"}` + "\n")
	joined.WriteString(`{"x": 1}` + "\n" + `{"x": 2}` + "\n")
	os.WriteFile(filepath.Join(src, "in.jsonl"), in.Bytes(), 0o644)
	os.WriteFile(filepath.Join(src, "joined.jsonl"), joined.Bytes(), 0o644)
	flags := []string{"--quiet", "--seq-len", "64", "--shard-rows", "50"}
	ref := filepath.Join(t.TempDir(), "ref")
	mustGlmprep(t, append([]string{"build", "--input", filepath.Join(src, "joined.jsonl"), "--out", ref}, flags...)...)
	for _, args := range [][]string{{"--text-field", "meta.title", "--text-field", "body"}, {"--text-field", "meta.title,body"}} {
		out := filepath.Join(t.TempDir(), "fields")
		_, stderr, code := glmprepBin(t, nil, append(append([]string{"build", "--input", filepath.Join(src, "in.jsonl"), "--out", out}, flags...), args...)...)
		if code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
		glmtest.SameFiles(t, "shards with "+strings.Join(args, " "), shardBytes(t, ref), shardBytes(t, out))
		st := buildStats(t, out)
		if st.Doc.Reasons[pipeline.MissingField] != 1 || st.Doc.Reasons[pipeline.NotString] != 1 || !strings.Contains(stderr, `none of the fields "meta.title" or "body"`) {
			t.Errorf("%v: missing %d, not string %d: %s", args, st.Doc.Reasons[pipeline.MissingField], st.Doc.Reasons[pipeline.NotString], stderr)
		}
	}
}

// --max-records N builds the first N records of the inputs in order, the
// same rows as a build of exactly those records.
func TestMaxRecords(t *testing.T) {
	src := t.TempDir()
	lines := func(name string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "Line %d of %s, with a second clause.\n", i, name)
		}
		p := filepath.Join(src, name)
		os.WriteFile(p, []byte(b.String()), 0o644)
		return b.String()
	}
	a, b := lines("a.txt", 300), lines("b.txt", 500)
	lines("c.txt", 100)
	cut := filepath.Join(t.TempDir(), "cut")
	os.MkdirAll(cut, 0o755)
	os.WriteFile(filepath.Join(cut, "a.txt"), []byte(a), 0o644)
	os.WriteFile(filepath.Join(cut, "b.txt"), []byte(strings.Join(strings.SplitAfter(b, "\n")[:150], "")), 0o644)
	flags := []string{"--quiet", "--seq-len", "64", "--shard-rows", "40"}
	ref := filepath.Join(t.TempDir(), "ref")
	mustGlmprep(t, append([]string{"build", "--input", cut, "--out", ref}, flags...)...)
	out := filepath.Join(t.TempDir(), "limited")
	mustGlmprep(t, append([]string{"build", "--input", src, "--out", out, "--max-records", "450", "--task-bytes", "4KiB"}, flags...)...)
	glmtest.SameFiles(t, "shards with --max-records", shardBytes(t, ref), shardBytes(t, out))
	plan, _ := pipeline.ReadPlan(out)
	if st := buildStats(t, out); st.Doc.Records != 450 || len(plan.Inputs) != 2 || len(plan.Tasks) != 2 || plan.Tasks[1].MaxRecords != 150 {
		t.Errorf("--max-records 450: %d records, %d inputs, tasks %+v", st.Doc.Records, len(plan.Inputs), plan.Tasks)
	}
	// More than the inputs hold: all of them.
	all := filepath.Join(t.TempDir(), "all")
	mustGlmprep(t, append([]string{"build", "--input", src, "--out", all, "--max-records", "100000"}, flags...)...)
	if st := buildStats(t, all); st.Doc.Records != 900 {
		t.Errorf("--max-records over the inputs: %d records, want 900", st.Doc.Records)
	}
}

// --valid-fraction holds out a split at build time: every record is in
// exactly one of the two builds, and which one does not depend on
// --workers or --task-bytes.
func TestValidSplit(t *testing.T) {
	input := glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw")
	flags := []string{"--input", input, "--seq-len", "128", "--tokenizer", "gpt2"}
	full := filepath.Join(t.TempDir(), "full")
	mustGlmprep(t, append([]string{"build", "--out", full}, flags...)...)
	fs := buildStats(t, full)
	var valids []pipeline.Stats
	for _, extra := range [][]string{{"--workers", "1"}, {"--workers", "2", "--task-bytes", "200KiB"}} {
		out := filepath.Join(t.TempDir(), "wiki")
		_, stderr, code := glmprepBin(t, nil, append(append([]string{"build", "--out", out, "--valid-fraction", "0.05"}, flags...), extra...)...)
		if code != 0 {
			t.Fatal(stderr)
		}
		tr, va := buildStats(t, out), buildStats(t, out+"-valid")
		if tr.Doc.Records != fs.Doc.Records || va.Doc.Records != fs.Doc.Records ||
			tr.Doc.Documents+va.Doc.Documents != fs.Doc.Documents || tr.Doc.SourceTokens+va.Doc.SourceTokens != fs.Doc.SourceTokens ||
			tr.Doc.Reasons[pipeline.HeldOut]+va.Doc.Reasons[pipeline.HeldOut] != fs.Doc.Records {
			t.Errorf("%v: train %+v and valid %+v do not add up to %+v", extra, tr.Doc, va.Doc, fs.Doc)
		}
		if frac := float64(va.Doc.Records-va.Doc.Reasons[pipeline.HeldOut]) / float64(fs.Doc.Records); frac < 0.04 || frac > 0.06 {
			t.Errorf("%v: %.3f of the records in the valid split, want about 0.05", extra, frac)
		}
		if !strings.Contains(stderr, "--data "+out+" --eval-data "+out+"-valid") {
			t.Errorf("no word on how to train on the splits: %s", stderr)
		}
		mustGlmprep(t, "verify", out+"-valid")
		valids = append(valids, va)
	}
	a, b := valids[0].Doc, valids[1].Doc
	if a.Records != b.Records || a.Documents != b.Documents || a.Bytes != b.Bytes || a.SourceTokens != b.SourceTokens || a.Reasons != b.Reasons {
		t.Errorf("the valid split depends on --workers and --task-bytes: %+v, %+v", valids[0].Doc, valids[1].Doc)
	}
}

// build --resume takes the inputs and flags from plan.json; a flag or an
// input that differs is named with its old and new value.
func TestResumeFromPlan(t *testing.T) {
	_, flags := smallInputs(t)
	ref := t.TempDir()
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)
	dir := t.TempDir()
	cmd, out := glmprepProcess(t, []string{"GLMKIT_TEST_CRASH=shard-committed:0/3"}, append([]string{"build", "--out", dir}, flags...)...)
	waitKilled(t, cmd, out)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--seq-len", "64", "--mix", "token=1"}, []string{"  --seq-len: 128 then, 64 now", "  --mix: token=0.5,sentence=0,document=0.5 then, token=1,sentence=0,document=0 now"}},
		{[]string{"--input", flags[1]}, []string{"  --input: " + flags[3] + " is in the plan but not given now"}},
		{[]string{"--tokenizer", "bert-base-uncased"}, []string{"  --tokenizer: gpt2 then, bert-base-uncased now"}},
	} {
		_, stderr, code := glmprepBin(t, nil, append([]string{"build", "--out", dir, "--resume", "--quiet"}, tc.args...)...)
		for _, w := range tc.want {
			if code != 1 || !strings.Contains(stderr, w) {
				t.Errorf("resume with %v: exit %d, lacks %q:\n%s", tc.args, code, w, stderr)
			}
		}
	}
	// The same flags given again, or none: it continues.
	if _, stderr, code := glmprepBin(t, nil, "build", "--out", dir, "--resume", "--quiet", "--seq-len", "128", "--workers", "1"); code != 0 {
		t.Fatalf("resume with the plan's --seq-len: %s", stderr)
	}
	glmtest.SameFiles(t, "build resumed with the plan's --seq-len", readDir(t, ref), readDir(t, dir))
	// A split build resumes both splits from --out alone.
	spl := filepath.Join(t.TempDir(), "s")
	refSpl := filepath.Join(t.TempDir(), "s")
	mustGlmprep(t, append([]string{"build", "--out", refSpl, "--valid-fraction", "0.2"}, flags...)...)
	cmd, out = glmprepProcess(t, []string{"GLMKIT_TEST_CRASH=shard-committed:1/0"}, append([]string{"build", "--out", spl, "--valid-fraction", "0.2"}, flags...)...)
	waitKilled(t, cmd, out)
	if _, stderr, code := glmprepBin(t, nil, "build", "--out", spl, "--resume", "--quiet"); code != 0 {
		t.Fatalf("resume of a split build: %s", stderr)
	}
	for _, suffix := range []string{"", "-valid"} {
		glmtest.SameFiles(t, "resumed split build"+suffix, readDir(t, refSpl+suffix), readDir(t, spl+suffix))
	}
}
