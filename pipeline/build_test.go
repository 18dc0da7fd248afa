package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

func options(t testing.TB, tok string, out string, inputs ...string) BuildOptions {
	t.Helper()
	tk, err := tokenizer.Load(tok)
	if err != nil {
		t.Fatal(err)
	}
	mc := masking.DefaultConfig()
	mc.Weights = [3]float64{0.4, 0.3, 0.3}
	mc.IDs = tk.Special()
	mc.Seed = 42
	return BuildOptions{
		Inputs: inputs,
		Out:    out,
		Meta: sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: tk.Name(), TokenizerSHA256: tk.SHA256(),
			VocabSize: tk.ModelVocabSize(), Special: tk.Special(), SeqLen: 512, MaskEpochs: 1, Masking: mc},
		Config:      DefaultConfig(),
		SentenceEnd: tk.SentenceEnds(),
		NewEncoder:  func() Encoder { return tk.NewEncoder() },
		Workers:     2,
	}
}

// forSamples calls f with every row of the build in dir, in row order,
// after checking the row's GLM layout.
func forSamples(t testing.TB, dir string, f func(r *sharding.Reader, i int64, s *masking.Sample)) {
	t.Helper()
	r, err := sharding.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var s masking.Sample
	for i := int64(0); i < r.Len(); i++ {
		if err := r.Sample(i, &s); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(r.Meta().Special, r.Meta().Masking.TaskMask); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		f(r, i, &s)
	}
}

// readSources rebuilds every row's source tokens, in row order.
func readSources(t testing.TB, dir string) [][]int32 {
	t.Helper()
	var out [][]int32
	forSamples(t, dir, func(r *sharding.Reader, i int64, s *masking.Sample) {
		src, err := s.Source(nil, r.Meta().Special)
		if err != nil {
			t.Fatal(err)
		}
		if len(src) > r.Meta().SeqLen {
			t.Fatalf("row %d holds %d source tokens, more than seq_len %d", i, len(src), r.Meta().SeqLen)
		}
		out = append(out, src)
	})
	return out
}

// The concatenated source tokens of all rows, [CLS] and eos removed, equal
// the tokenizer's output for every document in order: nothing lost,
// nothing duplicated.
func TestBuildKeepsEveryToken(t *testing.T) {
	in := glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw")
	out := t.TempDir()
	o := options(t, "bert-base-uncased", out, in)
	o.Config.ShardRows = 100
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := tokenizer.Load("bert-base-uncased")
	enc := tk.NewEncoder()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var want []int32
	docs := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ids, err := enc.Encode(nil, sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 {
			docs++
		}
		want = append(want, ids...)
	}
	ids := o.Meta.Special
	var got []int32
	pieces := 0
	for _, src := range readSources(t, out) {
		for _, id := range src {
			switch id {
			case ids.CLS:
				pieces++
			case ids.EOS:
			default:
				got = append(got, id)
			}
		}
	}
	if !slices.Equal(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("source tokens differ from the tokenizer's output at token %d (got %d tokens, want %d)", n, len(got), len(want))
	}
	st := res.Stats
	if st.Doc.Documents != int64(docs) || st.Doc.SourceTokens != int64(len(want)) || st.Doc.Pieces != int64(pieces) {
		t.Errorf("stats: %d documents, %d tokens, %d pieces; want %d, %d, %d", st.Doc.Documents, st.Doc.SourceTokens, st.Doc.Pieces, docs, len(want), pieces)
	}
	if len(res.Manifest.Shards) < 3 {
		t.Errorf("%d shards with --shard-rows 100", len(res.Manifest.Shards))
	}
	t.Logf("%d documents, %d tokens, %d rows in %d shards: every token kept once, in order", docs, len(want), res.Manifest.Totals.Rows, len(res.Manifest.Shards))
}

// dirBytes reads every file of a build that must be byte-identical.
func dirBytes(t testing.TB, dir string) map[string][]byte { return glmtest.ReadTree(t, dir) }

func TestBuildDeterministicAcrossWorkers(t *testing.T) {
	inputs := []string{glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"), glmtest.Corpus(t, "web-jsonl-samples")}
	var ref map[string][]byte
	for _, workers := range []int{1, 4} {
		out := t.TempDir()
		o := options(t, "gpt2", out, inputs...)
		o.Workers = workers
		o.Config.ShardRows = 64
		if _, err := Build(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		files := dirBytes(t, out)
		if ref == nil {
			ref = files
			continue
		}
		glmtest.SameFiles(t, "workers 1 vs 4", ref, files)
	}
	if len(ref) < 10 {
		t.Errorf("only %d files in the build", len(ref))
	}
}

// An interrupted build, resumed, gives the bytes of an uninterrupted one,
// wherever it was interrupted.
func TestBuildResumeInProcess(t *testing.T) {
	inputs := []string{glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"), glmtest.Corpus(t, "tinyshakespeare/input.txt")}
	refDir := t.TempDir()
	o := options(t, "bert-base-uncased", refDir, inputs...)
	o.Config.ShardRows = 40
	o.Config.DocBoundary = "blank"
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	ref := dirBytes(t, refDir)
	// Slow the reading down (after hashing) so the test can stop the build
	// between two commits.
	var slow atomic.Bool
	o.Phase = func(name string, _ int64) { slow.Store(name != "hashing") }
	o.Progress = func(int64) {
		if slow.Load() {
			time.Sleep(3 * time.Millisecond)
		}
	}
	for _, stopAfter := range []int{2, 20, 27} {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		committed := func() int {
			n := 0
			for task := range 2 {
				if rec, _ := ReadTaskRecord(dir, task); rec != nil {
					n += len(rec.Shards)
				}
			}
			return n
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil && committed() < stopAfter {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		o.Out = dir
		_, err := Build(ctx, o)
		cancel()
		<-done
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stop after %d shards: err %v, want canceled", stopAfter, err)
		}
		kept := committed()
		o.Resume = true
		res, err := Build(context.Background(), o)
		o.Resume = false
		if err != nil {
			t.Fatal(err)
		}
		glmtest.SameFiles(t, "resumed build", ref, dirBytes(t, dir))
		t.Logf("stopped with %d shards committed: resumed %d tasks, %d were complete", kept, res.TasksRun, res.TasksSkipped)
	}
}

// buildWarned builds o, which must succeed, and returns what Build did and
// every warning it gave.
func buildWarned(t *testing.T, o BuildOptions) (*Result, []string) {
	t.Helper()
	var warnings []string
	o.Warn = func(m string) { warnings = append(warnings, m) }
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return res, warnings
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad input: every case is a counted skip (or repair) naming the file and
// line in a warning, and fatal with --strict. Nothing good is lost.
func TestBuildBadInput(t *testing.T) {
	src := t.TempDir()
	good := `{"text":"a good document. it has two sentences."}` + "\n"
	// About 1 MB of varied records, so the compressed streams have many
	// blocks and a cut leaves most of them readable.
	var many bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&many, `{"text":"record %d says %x. then %d more words."}`+"\n", i, i*7919, i%97)
	}
	// Many members and frames (pigz and pzstd write such files): a cut
	// keeps the members and frames before the damaged one.
	var gz, zs []byte
	for chunk := range slices.Chunk(many.Bytes(), 64<<10) {
		gz = append(gz, gzipBytes(t, chunk)...)
		zs = append(zs, zstdBytes(t, chunk)...)
	}
	for _, tc := range []struct {
		name   string
		file   string
		data   []byte
		reason Reason
		line   string // in the warning
	}{
		{"invalid utf-8", "bad.txt", []byte("fine line\nbroken \xff\xfe text\nfine again\n"), InvalidUTF8, "bad.txt:2"},
		{"nul bytes", "nul.txt", []byte("fine\nwith\x00nul\n"), NULBytes, "nul.txt:2"},
		{"broken json", "bad.jsonl", []byte(good + `{"text": "unterminated` + "\n" + good), BadJSON, "bad.jsonl:2"},
		{"missing field", "miss.jsonl", []byte(good + `{"body": "x"}` + "\n"), MissingField, "miss.jsonl:2"},
		{"not a string", "num.jsonl", []byte(good + good + `{"text": 42}` + "\n"), NotString, "num.jsonl:3"},
		{"lone surrogate escape", "sur.jsonl", []byte(good + `{"text":"a\ud800b"}` + "\n"), InvalidUTF8, "sur.jsonl:2: invalid_utf8: a JSON escape of a lone surrogate"},
		{"lone surrogate in a json document", "sur.json", []byte(`["fine text.", "a\udc00b"]`), InvalidUTF8, "sur.json:1: invalid_utf8: a JSON escape of a lone surrogate"},
		{"field given twice", "dup.jsonl", []byte(good + `{"id":1,"text":"first","text":"the last one is read."}` + "\n"), DuplicateField, `dup.jsonl:2: duplicate_field: field "text" is given twice`},
		{"10 MB line", "long.txt", append(append([]byte("short\n"), bytes.Repeat([]byte("x "), 5<<20)...), "\nend\n"...), TooLong, "long.txt:2"},
		{"truncated gz", "cut.jsonl.gz", gz[:len(gz)*2/3], Truncated, "cut.jsonl.gz:"},
		{"truncated zst", "cut.jsonl.zst", zs[:len(zs)*2/3], Truncated, "cut.jsonl.zst:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeFile(t, src, tc.file, tc.data)
			o := options(t, "bert-base-uncased", t.TempDir(), in)
			o.Config.MaxDocBytes = 1 << 20
			res, warnings := buildWarned(t, o)
			if res.Stats.Doc.Reasons[tc.reason] == 0 {
				t.Errorf("%v not counted: %+v", tc.reason, res.Stats.Doc.Reasons)
			}
			if len(warnings) == 0 || !strings.Contains(warnings[0], tc.line) {
				t.Errorf("warnings %q do not name %s", warnings, tc.line)
			}
			if res.Stats.Doc.Documents == 0 || res.Manifest.Totals.Rows == 0 {
				t.Errorf("the good records were lost: %+v", res.Stats.Doc)
			}
			o.Out, o.Strict, o.Warn = t.TempDir(), true, nil
			_, err := Build(context.Background(), o)
			var ie *inputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.line) {
				t.Errorf("strict build: err %v, want an inputError naming %s", err, tc.line)
			}
			t.Logf("%v; strict: %v", warnings[0], err)
		})
	}
}

func TestBuildInputErrors(t *testing.T) {
	src := t.TempDir()
	empty := writeFile(t, src, "empty.txt", nil)
	emptyDir := filepath.Join(src, "nothing")
	os.Mkdir(emptyDir, 0o755)
	writeFile(t, emptyDir, "notes.pdf", []byte("%PDF"))
	for _, tc := range []struct {
		name   string
		inputs []string
		want   string
	}{
		{"missing file", []string{filepath.Join(src, "nope.txt")}, "nope.txt: no such file"},
		{"dir without inputs", []string{emptyDir}, "no input files in directory"},
		{"glob without matches", []string{filepath.Join(src, "*.jsonl")}, "no files match"},
	} {
		o := options(t, "gpt2", t.TempDir(), tc.inputs...)
		if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	// An empty file is a valid, empty input, but a build of no rows is an
	// error unless --allow-empty says it is wanted.
	o := options(t, "gpt2", t.TempDir(), empty)
	if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "no rows") || !strings.Contains(err.Error(), "--allow-empty") {
		t.Errorf("empty build: %v, want an error that says so", err)
	}
	o = options(t, "gpt2", t.TempDir(), empty)
	o.Config.AllowEmpty = true
	res, err := Build(context.Background(), o)
	if err != nil || res.Manifest.Totals.Rows != 0 || res.Stats.Doc.Records != 0 || !strings.Contains(string(res.Manifest.Config), `"allow_empty":true`) {
		t.Errorf("empty file with --allow-empty: %v, %+v", err, res)
	}
}

func gzipBytes(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstdBytes(t *testing.T, data []byte) []byte {
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

// An Env made by hand with Workers 0 (the zero value) runs its tasks on
// GOMAXPROCS workers, as NewEnv's 0 does, and writes the bytes of an Env
// with 2 workers; it used to deadlock.
func TestEnvZeroWorkers(t *testing.T) {
	in := "../testdata/demo/shakespeare.txt"
	ref := t.TempDir()
	if _, err := Build(context.Background(), options(t, "gpt2", ref, in)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := options(t, "gpt2", dir, in)
	plan, env := preparedEnv(t, &o)
	env = &Env{Dir: env.Dir, Masker: env.Masker, NewEncoder: env.NewEncoder}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, task := range plan.Tasks {
		if _, err := RunTaskOnce(ctx, plan, env, task); err != nil {
			t.Fatalf("task %d with Workers 0: %v", task.Index, err)
		}
	}
	if _, _, err := Merge(dir, plan, o.Software); err != nil {
		t.Fatal(err)
	}
	glmtest.SameFiles(t, "the build of an Env with Workers 0", dirBytes(t, ref), dirBytes(t, dir))
}

// preparedEnv plans the build of o and returns the plan and an Env of 2
// workers to run its tasks.
func preparedEnv(t *testing.T, o *BuildOptions) (*Plan, *Env) {
	t.Helper()
	plan, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(plan, o.Out, o.SentenceEnd, o.NewEncoder, 2)
	if err != nil {
		t.Fatal(err)
	}
	return plan, env
}

func TestKey(t *testing.T) {
	for _, c := range [][2]uint64{{0, 0}, {3, 17}, {1<<24 - 1, 1<<40 - 1}} {
		k := Key(c[0], c[1])
		if task, i := SplitKey(k); task != c[0] || i != c[1] {
			t.Errorf("SplitKey(Key(%d, %d)) = %d, %d", c[0], c[1], task, i)
		}
	}
	if Key(1, 5) != 1<<40|5 {
		t.Errorf("Key(1, 5) = %#x; the doc_id layout is task<<40 | index", Key(1, 5))
	}
}

// Tasks run at once report the first task's failure, whichever fails
// first in time: with --strict and a bad record in each of two inputs, the
// error names the first input's, every time.
func TestConcurrentTasksFirstError(t *testing.T) {
	src := t.TempDir()
	var good bytes.Buffer
	for i := range 4000 {
		fmt.Fprintf(&good, "{\"text\": \"record %d of the first input, long enough to take a while\"}\n", i)
	}
	a := writeFile(t, src, "a.jsonl", append(good.Bytes(), "{broken\n"...))
	b := writeFile(t, src, "b.jsonl", []byte("{also broken\n{\"text\": \"x\"}\n"))
	for range 5 {
		o := options(t, "gpt2", t.TempDir(), a, b)
		o.Strict, o.Workers = true, 4
		_, err := Build(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), a+":4001") {
			t.Fatalf("Build = %v; want the error of %s:4001, the first task's", err, a)
		}
	}
}
