package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/pipeline/parquettext"
)

// sourceStream is a build's source tokens without [CLS] and eos, in row
// order: what must not change when only the input format does.
func sourceStream(t *testing.T, dir string, o BuildOptions) []int32 {
	t.Helper()
	var out []int32
	for _, src := range readSources(t, dir) {
		for _, id := range src {
			if id != o.Meta.Special.CLS && id != o.Meta.Special.EOS {
				out = append(out, id)
			}
		}
	}
	return out
}

// A Parquet text column gives the same tokens as the same texts in JSON
// Lines, whether arrow-go or another library (hyparquet-writer) wrote it.
func TestParquetInput(t *testing.T) {
	data, err := os.ReadFile(glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() && len(texts) < 1500 {
		texts = append(texts, sc.Text())
	}
	src := t.TempDir()
	var jl bytes.Buffer
	raw := make([][]byte, len(texts))
	for i, s := range texts {
		b, _ := json.Marshal(map[string]string{"text": s})
		jl.Write(append(b, '\n'))
		raw[i] = []byte(s)
	}
	jsonl := writeFile(t, src, "wiki.jsonl", jl.Bytes())
	ours := filepath.Join(src, "arrowgo.parquet")
	if err := parquettext.WriteTexts(ours, "text", raw, 400); err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{"arrow-go": ours}
	js := filepath.Join("..", "testdata", "js")
	if _, err := os.Stat(filepath.Join(js, "node_modules", "hyparquet-writer")); err == nil {
		tj, _ := json.Marshal(texts)
		tpath := writeFile(t, src, "texts.json", tj)
		other := filepath.Join(src, "hyparquet.parquet")
		if out, err := exec.Command("node", filepath.Join(js, "write_parquet.mjs"), tpath, other, "300").CombinedOutput(); err != nil {
			t.Fatalf("hyparquet-writer: %v\n%s", err, out)
		}
		inputs["hyparquet-writer"] = other
	} else {
		t.Log("testdata/js/node_modules has no hyparquet-writer (npm ci in testdata/js): only the arrow-go file is checked")
	}
	o := options(t, "bert-base-uncased", t.TempDir(), jsonl)
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	want := sourceStream(t, o.Out, o)
	for name, in := range inputs {
		p := options(t, "bert-base-uncased", t.TempDir(), in)
		res, err := Build(context.Background(), p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plan, err := ReadPlan(p.Out)
		if err != nil {
			t.Fatal(err)
		}
		if got := sourceStream(t, p.Out, p); !slices.Equal(got, want) {
			t.Errorf("%s: %d source tokens differ from the JSON Lines build's %d", name, len(got), len(want))
		}
		if plan.Inputs[0].Format != "parquet" || len(plan.Tasks) < 4 {
			t.Errorf("%s: format %s, %d tasks (a task per row group)", name, plan.Inputs[0].Format, len(plan.Tasks))
		}
		t.Logf("%s: %d row groups → %d tasks, %d rows, same %d tokens as JSON Lines", name, len(plan.Tasks), len(plan.Tasks), res.Manifest.Totals.Rows, len(want))
	}
}
