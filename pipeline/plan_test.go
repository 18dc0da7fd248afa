package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
)

// corpusBytes is the shared corpora's files rels, one after another.
func corpusBytes(tb testing.TB, rels ...string) []byte {
	var data []byte
	for _, rel := range rels {
		data = append(data, glmtest.ReadFile(tb, glmtest.Corpus(tb, rel))...)
	}
	return data
}

// Byte-range splitting of a large JSON Lines file gives tasks within 10% of
// --task-bytes and loses or duplicates no document.
func TestByteRangeTasks(t *testing.T) {
	data := corpusBytes(t, "zh/cmrc2018-contexts.jsonl", "web-jsonl-samples/dolma-cc_en_head-0174.jsonl")
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
		end := task.End
		if end < 0 {
			end = int64(len(data))
		}
		if sum := sha256.Sum256(data[task.Start:end]); task.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("task %d: the plan's sha256 %.12s… is not that of bytes %d-%d", task.Index, task.SHA256, task.Start, end)
		}
	}
	if sum := sha256.Sum256(data); plan.Inputs[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("the plan's sha256 of the input %.12s… is not that of its bytes", plan.Inputs[0].SHA256)
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

// hashInputs hashes many files at once, each to its own sha256, and of a
// failure names the file that failed, not one the failure cancelled.
func TestHashInputsParallel(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 24 {
		data := testLines(1 + i*400)
		writeFile(t, dir, fmt.Sprintf("%02d.txt", i), data)
		sum := sha256.Sum256(data)
		want = append(want, hex.EncodeToString(sum[:]))
	}
	ins, err := resolveInputs([]string{dir}, "text", "line", nil)
	if err != nil {
		t.Fatal(err)
	}
	var read atomic.Int64
	if err := hashInputs(context.Background(), ins, 4, nil, func(n int64) { read.Add(n) }); err != nil {
		t.Fatal(err)
	}
	for i, in := range ins {
		if in.SHA256 != want[i] {
			t.Errorf("%s: sha256 %.12s…, want %.12s…", in.Path, in.SHA256, want[i])
		}
	}
	if read.Load() != totalBytes(ins) {
		t.Errorf("progress told %d bytes of %d", read.Load(), totalBytes(ins))
	}
	gone := ins[17].Path
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	err = hashInputs(context.Background(), ins, 4, nil, nil)
	if err == nil || !strings.Contains(err.Error(), gone) || errors.Is(err, context.Canceled) {
		t.Fatalf("a removed input: %v, want an error naming %s", err, gone)
	}
}

// lineCuts finds the cuts that a byte-at-a-time scan finds, on lines short,
// blank, white and longer than its read buffer, and hashes the whole.
func TestLineCutsByteScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, blank := range []bool{false, true} {
		for trial := range 4 {
			var b bytes.Buffer
			for b.Len() < 3<<20 {
				switch k := rng.IntN(100); {
				case k < 10:
				case k < 14:
					b.WriteString([]string{" ", "\t", " \r", "\r", "\f"}[rng.IntN(5)])
				case k < 15 && trial > 1:
					b.Write(bytes.Repeat([]byte("x"), 1+rng.IntN(1500<<10)))
				default:
					b.Write(bytes.Repeat([]byte("word "), 1+rng.IntN(40)))
				}
				b.WriteByte('\n')
			}
			data := b.Bytes()[:b.Len()-trial%2]
			ins, err := resolveInputs([]string{writeFile(t, t.TempDir(), "in.txt", data)}, "text", "line", nil)
			if err != nil {
				t.Fatal(err)
			}
			size := int64(16<<10) << trial
			cuts, lines, _, err := lineCuts(context.Background(), &ins[0], size, blank, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantCuts, wantLines := byteScanCuts(data, size, blank)
			if !slices.Equal(cuts, wantCuts) || !slices.Equal(lines, wantLines) {
				t.Fatalf("blank=%v trial %d: cuts %v lines %v, the byte scan %v %v", blank, trial, cuts, lines, wantCuts, wantLines)
			}
			if sum := sha256.Sum256(data); ins[0].SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("blank=%v trial %d: sha256 %.12s… is not the input's", blank, trial, ins[0].SHA256)
			}
		}
	}
}

// byteScanCuts is lineCuts' rule, a byte at a time: the k-th of n cuts goes
// after the newline (after a blank line, if blank) nearest k·total/n.
func byteScanCuts(data []byte, size int64, blank bool) ([]int64, []int64) {
	total := int64(len(data))
	n := max(1, (total+size/2)/size)
	cuts, lines := []int64{0}, []int64{1}
	var line, prevPos, prevLine int64 = 1, 0, 0
	text := false
	for i, c := range data {
		if c != '\n' {
			text = text || c != ' ' && c != '\t' && c != '\r'
			continue
		}
		pos := int64(i) + 1
		line++
		blankLine := !text
		text = false
		if blank && !blankLine || pos >= total || int64(len(cuts)) >= n {
			continue
		}
		if w := total * int64(len(cuts)) / n; pos >= w {
			if prevPos > cuts[len(cuts)-1] && w-prevPos < pos-w {
				cuts, lines = append(cuts, prevPos), append(lines, prevLine)
			} else {
				cuts, lines = append(cuts, pos), append(lines, line)
			}
		}
		prevPos, prevLine = pos, line
	}
	return append(cuts, total), lines
}
