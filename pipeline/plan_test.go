package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
)

// Byte-range splitting of a large JSON Lines file gives tasks within 10% of
// --task-bytes and loses or duplicates no document.
func TestByteRangeTasks(t *testing.T) {
	var data []byte
	for _, rel := range []string{"zh/cmrc2018-contexts.jsonl", "web-jsonl-samples/dolma-cc_en_head-0174.jsonl"} {
		b, err := os.ReadFile(glmtest.Corpus(t, rel))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	in := writeFile(t, t.TempDir(), "big.jsonl", data)
	const size = 150 << 10
	split := options(t, "bert-base-uncased", t.TempDir(), in)
	split.Config.TaskBytes = size
	if _, err := Build(context.Background(), split); err != nil {
		t.Fatal(err)
	}
	plan, err := ReadPlan(split.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Tasks) < 8 {
		t.Fatalf("%d tasks for %d bytes in tasks of %d", len(plan.Tasks), len(data), size)
	}
	for _, task := range plan.Tasks {
		n := taskBytes(plan, task)
		if n < size*9/10 || n > size*11/10 {
			t.Errorf("task %d: %d bytes, not within 10%% of %d", task.Index, n, size)
		}
		if task.Start > 0 && data[task.Start-1] != '\n' {
			t.Errorf("task %d starts inside a line", task.Index)
		}
	}
	whole := options(t, "bert-base-uncased", t.TempDir(), in)
	whole.Config.TaskBytes = 0
	res, err := Build(context.Background(), whole)
	if err != nil {
		t.Fatal(err)
	}
	a, b := sourceStream(t, whole.Out, whole), sourceStream(t, split.Out, split)
	if !slices.Equal(a, b) {
		t.Fatalf("split build has %d source tokens, the one-task build %d: documents were lost or repeated", len(b), len(a))
	}
	st, _ := os.Stat(filepath.Join(split.Out, "tasks"))
	t.Logf("%d bytes → %d tasks of %d±10%% bytes; %d documents, %d tokens, as in one task (%v)", len(data), len(plan.Tasks), size, res.Stats.Doc.Documents, len(a), st.IsDir())
}
