package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/internal/testhooks"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/sharding"
)

// hookedGlmprep is glmprep built with the hooks of internal/testhooks on,
// for the tests that kill or interrupt a real process.
var hookedGlmprep = testhooks.NewBinary("glmprep")

func TestMain(m *testing.M) { testhooks.Main(m, hookedGlmprep) }

// glmprepCommand returns a command that runs that glmprep with args, its
// environment this process's plus env.
func glmprepCommand(t testing.TB, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd, err := hookedGlmprep.Command(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

func glmprep(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func mustGlmprep(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := glmprep(t, args...)
	if err != nil {
		t.Fatalf("glmprep %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func readDir(t *testing.T, dir string) map[string][]byte { return glmtest.ReadTree(t, dir) }

// The acceptance corpora: build, verify and inspect each.
func TestBuildCorpora(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		check string // in inspect's output
	}{
		{"wikitext bert", []string{"--input", glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"), "--tokenizer", "bert-base-uncased"}, "the"},
		{"web jsonl gz", []string{"--input", filepath.Join(glmtest.Corpus(t, "web-jsonl-samples"), "*.gz"), "--tokenizer", "gpt2", "--mix", "token=0.4,sentence=0.3,document=0.3"}, " the"},
		{"web jsonl", []string{"--input", filepath.Join(glmtest.Corpus(t, "web-jsonl-samples"), "*.jsonl"), "--tokenizer", "bert-base-uncased", "--compression", "zstd"}, "the"},
		{"cmrc chinese bert", []string{"--input", glmtest.Corpus(t, "zh/cmrc2018-contexts.jsonl"), "--tokenizer", glmtest.Shared(t, "tokenizers/bert-base-chinese/vocab.txt"), "--mix", "token=1", "--task-mask=false"}, "的"},
		{"cmrc gpt2", []string{"--input", glmtest.Corpus(t, "zh/cmrc2018-contexts.jsonl"), "--tokenizer", "gpt2", "--seq-len", "1024"}, "的"},
		{"classical novel zst", []string{"--input", glmtest.Corpus(t, "zh/classical-novels/xiyouji.txt.zst"), "--tokenizer", glmtest.Shared(t, "tokenizers/bert-base-chinese/vocab.txt"), "--doc-boundary", "blank"}, "。"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			mustGlmprep(t, append([]string{"build", "--out", out, "--quiet"}, tc.args...)...)
			v := mustGlmprep(t, "verify", out)
			if !strings.Contains(v, "OK") {
				t.Errorf("verify: %s", v)
			}
			ins := mustGlmprep(t, "inspect", out, "--rows", "2", "--color", "never")
			if !strings.Contains(ins, "A: [CLS]") || !strings.Contains(ins, "B1 (blank at") || !strings.Contains(ins, tc.check) {
				t.Errorf("inspect output lacks readable rows:\n%.2000s", ins)
			}
			st := mustGlmprep(t, "stats", out)
			if !strings.Contains(st, "objectives") {
				t.Errorf("stats: %s", st)
			}
			if tc.name == "wikitext bert" {
				line := mustGlmprep(t, "bench-load", out, "--seconds", "0.2")
				var res map[string]any
				if err := json.Unmarshal([]byte(line), &res); err != nil {
					t.Fatalf("bench-load printed %q: %v", line, err)
				}
				for _, k := range []string{"rows_per_s", "tokens_per_s", "bytes_per_s", "memcpy_bytes_per_s", "first_batch_ms"} {
					if v, _ := res[k].(float64); !(v > 0) {
						t.Errorf("bench-load %s = %v", k, res[k])
					}
				}
			}
		})
	}
}

// A build killed with SIGKILL part way, then finished with --resume, is
// byte-identical to an uninterrupted build.
func TestCrashThenResume(t *testing.T) {
	inputs := []string{"--input", glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"), "--input", glmtest.Corpus(t, "tinyshakespeare/input.txt")}
	flags := append([]string{"--shard-rows", "25", "--doc-boundary", "blank", "--tokenizer", "gpt2", "--quiet"}, inputs...)
	ref := t.TempDir()
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)

	dir := t.TempDir()
	cmd := glmprepCommand(t, []string{"GLMKIT_TEST_COMMIT_DELAY=40ms"}, append([]string{"build", "--out", dir}, flags...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	shards := 0
	for shards < 8 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no progress: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
		if rec, err := pipeline.ReadTaskRecord(dir, 0); err == nil && rec != nil {
			shards = len(rec.Shards)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("build was not killed (%v): it finished first", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sharding.ManifestName)); err == nil {
		t.Fatal("a killed build left a manifest")
	}
	// Without --resume the half build is refused, not overwritten.
	if _, _, err := glmprep(t, append([]string{"build", "--out", dir}, flags...)...); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("rebuild into a half build: %v", err)
	}
	_, se, err := glmprep(t, append([]string{"build", "--out", dir, "--resume"}, flags...)...)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, se)
	}
	glmtest.SameFiles(t, "resumed build", readDir(t, ref), readDir(t, dir))
	t.Logf("killed after %d shards of task 0; the resumed build is byte-identical", shards)
}

// Shards open in Apache Arrow JS and nodejs-polars, and their columns and
// one row's values agree with the Go reader.
func TestShardsReadByArrowJS(t *testing.T) {
	js := filepath.Join("..", "..", "testdata", "js")
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (.ci/run installs it)")
	}
	if _, err := os.Stat(filepath.Join(js, "node_modules", "apache-arrow")); err != nil {
		t.Skip("testdata/js/node_modules is missing: run `npm ci` in testdata/js (.ci/run does)")
	}
	out := t.TempDir()
	mustGlmprep(t, "build", "--out", out, "--quiet", "--input", "../../testdata/demo", "--mix", "token=1,sentence=1,document=1", "--shard-rows", "200")
	r, err := sharding.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, row := range []int64{0, 57, 150} {
		shard, local, err := r.Locate(row)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("node", filepath.Join(js, "read_arrow.js"), filepath.Join(out, shard), fmt.Sprint(local), "polars")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("node: %v", err)
		}
		var got jsRow
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		checkJSSchema(t, got, r.Manifest())
		checkJSRow(t, r, row, got)
	}
}

// A jsRow is what testdata/js/read_arrow.js prints of a shard and one of
// its rows: as Arrow JS reads them, and as nodejs-polars does.
type jsRow struct {
	Rows     int64
	Fields   []struct{ Name, Type string }
	Metadata map[string]string
	Row      map[string]json.RawMessage
	Polars   struct {
		Rows               int64
		Dtypes             map[string]string
		Input_ids          []int32
		Target_ids         []int32
		Position_ids       []int32
		Block_position_ids []int32
		Loss_mask          []int
		Sep                int32
		Objective          string
		Doc_id             string
		N_source           int32
	}
}

// checkJSSchema checks the columns, their types and the metadata that
// Arrow JS sees.
func checkJSSchema(t *testing.T, got jsRow, m *sharding.Manifest) {
	t.Helper()
	want := []string{"input_ids:List<Uint16>", "target_ids:List<Uint16>", "loss_mask:List<Bool>", "position_ids:List<Uint16>",
		"block_position_ids:List<Uint16>", "sep:Int32", "objective:Dictionary<Int8, Utf8>", "doc_id:Uint64", "n_source:Int32"}
	var fields []string
	for _, f := range got.Fields {
		fields = append(fields, f.Name+":"+f.Type)
	}
	if !slices.Equal(fields, want) {
		t.Errorf("Arrow JS sees columns %v, want %v", fields, want)
	}
	if got.Metadata["glmkit.tokenizer"] != m.Meta.Tokenizer || got.Metadata["glmkit.format_version"] != fmt.Sprint(sharding.FormatVersion) {
		t.Errorf("metadata %v", got.Metadata)
	}
}

// checkJSRow checks that Arrow JS and polars see row of r as Go reads it,
// and polars' column types.
func checkJSRow(t *testing.T, r *sharding.Reader, row int64, got jsRow) {
	t.Helper()
	v, err := r.Row(row)
	if err != nil {
		t.Fatal(err)
	}
	var s masking.Sample
	if err := r.Sample(row, &s); err != nil {
		t.Fatal(err)
	}
	check := func(col string, want any) {
		wantJSON, _ := json.Marshal(want)
		if string(got.Row[col]) != string(wantJSON) {
			t.Errorf("row %d %s: Arrow JS %s, Go %s", row, col, got.Row[col], wantJSON)
		}
	}
	check("input_ids", s.Input)
	check("target_ids", s.Target)
	loss := make([]int, len(s.LossMask))
	for i, m := range s.LossMask {
		loss[i] = int(m)
	}
	check("loss_mask", loss)
	check("position_ids", s.Pos)
	check("block_position_ids", s.BlockPos)
	check("sep", v.Sep)
	check("objective", v.Objective.String())
	check("doc_id", fmt.Sprint(v.DocID))
	check("n_source", v.NSource)
	p := got.Polars
	if !slices.Equal(p.Input_ids, s.Input) || !slices.Equal(p.Target_ids, s.Target) || !slices.Equal(p.Position_ids, s.Pos) ||
		!slices.Equal(p.Block_position_ids, s.BlockPos) || !slices.Equal(p.Loss_mask, loss) ||
		p.Sep != v.Sep || p.Objective != v.Objective.String() || p.Doc_id != fmt.Sprint(v.DocID) || p.N_source != v.NSource {
		t.Errorf("row %d: polars sees %+v", row, p)
	}
	for col, dt := range map[string]string{"input_ids": "DataType(List(DataType(UInt16)))", "loss_mask": "DataType(List(DataType(Bool)))",
		"position_ids": "DataType(List(DataType(UInt16)))", "objective": "DataType(Categorical)"} {
		if p.Dtypes[col] != dt {
			t.Errorf("polars dtype of %s is %s; want %s", col, p.Dtypes[col], dt)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(bad, []byte(`{"model": {"type": "BPE", "vocab": [`), 0o644)
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("hello world\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--input", in, "--out", filepath.Join(dir, "o1"), "--tokenizer", bad}, "tokenizer.json"},
		{[]string{"build", "--input", in, "--out", filepath.Join(dir, "o2"), "--mix", "token=1,words=2"}, "unknown objective"},
		{[]string{"build", "--input", in, "--out", filepath.Join(dir, "o3"), "--seq-len", "4"}, "--seq-len"},
		{[]string{"build", "--input", in}, "missing --out"},
		{[]string{"build", "--input", in, "--out", filepath.Join(dir, "o4"), "--workers", "-1"}, "--workers -1"},
		{[]string{"bench-load", dir, "--batch", "0"}, "--batch 0"},
		{[]string{"verify", dir}, "no manifest.json"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		_, _, err := glmprep(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("glmprep %v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	out, _, err := glmprep(t, "help")
	if err != nil || !strings.Contains(out, "glmprep build") {
		t.Errorf("help: %v %s", err, out)
	}
}

// A bench-load too short to read a batch after the first is an error that
// names --seconds, not a report of 0 rows/s and a NaN% ratio to memcpy.
func TestBenchLoadTooShort(t *testing.T) {
	dir := t.TempDir()
	mustGlmprep(t, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", dir, "--quiet", "--seq-len", "64")
	for _, cmd := range [][]string{{"bench-load", dir, "--seconds", "1e-9"}, {"bench-load", dir, "--seconds", "1e-9", "--compare"}} {
		out, stderr, err := glmprep(t, cmd...)
		if err == nil || !strings.Contains(err.Error(), "--seconds 1e-09: loader: bench: no batch read after the first") || out != "" || strings.Contains(stderr, "NaN") {
			t.Errorf("glmprep %q: %v, stdout %q, stderr %q; want an error naming --seconds and nothing printed", cmd, err, out, stderr)
		}
	}
}

// glmprep reads stdin with --input -.
func TestStdin(t *testing.T) {
	out := t.TempDir()
	cmd := glmprepCommand(t, nil, "build", "--input", "-", "--out", out, "--tokenizer", "gpt2", "--quiet")
	cmd.Stdin = strings.NewReader(strings.Repeat("A line of text read from standard input.\n", 500))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	m, err := sharding.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Inputs) != 1 || m.Inputs[0].Path != "-" || m.Inputs[0].Size != 500*41 || len(m.Inputs[0].SHA256) != 64 || m.Totals.Rows == 0 {
		t.Errorf("stdin build: inputs %+v, %d rows", m.Inputs, m.Totals.Rows)
	}

	// UTF-16 on stdin is refused when it is read, as a UTF-16 file is
	// when the build is planned.
	cmd = glmprepCommand(t, nil, "build", "--input", "-", "--out", filepath.Join(t.TempDir(), "u16"), "--tokenizer", "gpt2", "--quiet")
	u16 := []byte{0xff, 0xfe}
	for _, c := range strings.Repeat("A line of text read from standard input.\n", 50) {
		u16 = append(u16, byte(c), 0)
	}
	cmd.Stdin = bytes.NewReader(u16)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "standard input is UTF-16 LE text (byte order mark FF FE), not UTF-8") {
		t.Errorf("UTF-16 on stdin: %v: %s", err, b)
	}
	// So are lines that end in CR alone.
	cmd = glmprepCommand(t, nil, "build", "--input", "-", "--out", filepath.Join(t.TempDir(), "cr"), "--tokenizer", "gpt2", "--quiet")
	cmd.Stdin = strings.NewReader(strings.Repeat("A line of text read from standard input.\r", 50))
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "standard input ends its lines with CR alone") {
		t.Errorf("CR lines on stdin: %v: %s", err, b)
	}
	// Latin-1 on stdin is built, repaired, with the warning a Latin-1
	// file gets.
	cmd = glmprepCommand(t, nil, "build", "--input", "-", "--out", filepath.Join(t.TempDir(), "latin1"), "--tokenizer", "gpt2")
	cmd.Stdin = strings.NewReader(strings.Repeat("Le caf\xe9 est tr\xe8s bon.\n", 200))
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "standard input does not look like UTF-8") {
		t.Errorf("Latin-1 on stdin: %v: %s", err, b)
	}
}

// TestCPUProfile: --cpu-profile writes a pprof profile (gzipped protobuf)
// and leaves the build as it is without it; a path it cannot create is an
// error that names the flag, before anything is built.
func TestCPUProfile(t *testing.T) {
	in := glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw")
	dir := t.TempDir()
	prof := filepath.Join(dir, "build.pprof")
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mustGlmprep(t, "build", "--quiet", "--input", in, "--out", a, "--max-records", "3000")
	if out, err := glmprepCommand(t, nil, "build", "--quiet", "--input", in, "--out", b, "--max-records", "3000", "--cpu-profile", prof).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p, err := os.ReadFile(prof)
	if err != nil || len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
		t.Fatalf("--cpu-profile wrote %d bytes (%v); want a gzipped pprof profile", len(p), err)
	}
	glmtest.SameFiles(t, "build with --cpu-profile", readDir(t, a), readDir(t, b))
	bad := filepath.Join(dir, "missing", "build.pprof")
	out, err := glmprepCommand(t, nil, "build", "--quiet", "--input", in, "--out", filepath.Join(dir, "c"), "--cpu-profile", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--cpu-profile") {
		t.Errorf("--cpu-profile %s: %v: %s; want an error naming --cpu-profile", bad, err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "c", "manifest.json")); err == nil {
		t.Errorf("--cpu-profile %s failed, but the build ran", bad)
	}
}
