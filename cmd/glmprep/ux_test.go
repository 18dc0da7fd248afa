package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/internal/testhooks"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
)

// Tests of issue 16 (what a new user trips over), through the glmprep
// binary (built with the test hooks) where the behaviour is the
// command line's: help, usage errors, version, inspect, stats, status and
// merge.

// glmprepBin runs glmprep as a process and returns its stdout, stderr and
// exit status.
func glmprepBin(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	out, stderr, code, err := testhooks.Output(glmprepCommand(t, env, args...))
	if err != nil {
		t.Fatal(err)
	}
	return out, stderr, code
}

// checkHelp checks one command's --help: exit 0, on stdout, examples that
// run the command, no flag that states two defaults, no empty "Flags:".
func checkHelp(t *testing.T, program, cmd, out, stderr string, code int) {
	t.Helper()
	if code != 0 || stderr != "" {
		t.Errorf("%s %s --help: exit %d, stderr %q", program, cmd, code, stderr)
	}
	_, examples, ok := strings.Cut(out, "\nExamples:\n")
	if !ok || !strings.Contains(examples, "  "+program+" "+cmd) {
		t.Errorf("%s %s --help has no examples of the command:\n%s", program, cmd, out)
	}
	if strings.HasSuffix(strings.TrimSpace(out), "Flags:") {
		t.Errorf("%s %s --help ends with an empty Flags: section", program, cmd)
	}
	if _, flags, ok := strings.Cut(out, "\nFlags:\n"); ok {
		for _, entry := range regexp.MustCompile(`(?m)^  --`).Split(flags, -1) {
			if n := strings.Count(entry, "default"); n > 1 {
				t.Errorf("%s %s --help: a flag states %d defaults: %q", program, cmd, n, entry)
			}
		}
	}
}

// The README lists glmprep's commands as its help does.
func TestREADMECommands(t *testing.T) {
	glmtest.SameUsage(t, "glmprep", cli.Usage("glmprep", title, commands))
}

func TestHelpEveryCommand(t *testing.T) {
	for _, cmd := range []string{"build", "inspect", "stats", "verify", "bench-load", "plan", "run-task", "merge", "status"} {
		out, stderr, code := glmprepBin(t, nil, cmd, "--help")
		checkHelp(t, "glmprep", cmd, out, stderr, code)
		if out2, _, code := glmprepBin(t, nil, "help", cmd); code != 0 || out2 != out {
			t.Errorf("glmprep help %s (exit %d) differs from glmprep %s --help", cmd, code, cmd)
		}
		if cmd == "build" && !strings.Contains(out, "parquet") {
			t.Errorf("glmprep build --help: --format does not list parquet:\n%s", out)
		}
	}
	out, _, code := glmprepBin(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "glmprep status") {
		t.Errorf("glmprep --help: exit %d\n%s", code, out)
	}
}

// A wrong command line is one line on stderr that names what is wrong and
// exits 2: the missing flag, the nearest flag or command.
func TestUsageErrors(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(in, []byte("hello world\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--input", in}, "build: missing --out (see glmprep build --help)"},
		{[]string{"build", "--out", t.TempDir()}, "missing --input"},
		{[]string{"build"}, "missing --input and --out"},
		{[]string{"build", "--input", in, "--out", "x", "--seqlen", "128"}, "unknown flag --seqlen; did you mean --seq-len?"},
		{[]string{"build", "--input", in, "--out", "x", "--json-keys", "text"}, "did you mean --text-field?"},
		{[]string{"build", "--input", in, "--out", "x", "--outt", "y"}, "did you mean --out?"},
		{[]string{"build", "--input", in, "--out", "x", "--seq-len", "many"}, "--seq-len"},
		{[]string{"inspect", "--rowz", "2", "d"}, "did you mean --rows?"},
		{[]string{"verify"}, "verify: missing DIR"},
		{[]string{"merge", "a", "b"}, "one DIR, not 2 arguments"},
		{[]string{"biuld", "--input", in}, `unknown command "biuld"; did you mean "build"?`},
		{[]string{"build", "--out", t.TempDir(), "--resume"}, "holds no plan.json to take the inputs and flags from"},
		{[]string{"build", "--input", in, "--out", "x", "--valid-fraction", "1.5"}, "--valid-fraction 1.5: want a fraction between 0 and 1"},
	} {
		out, stderr, code := glmprepBin(t, nil, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || out != "" || len(lines) != 1 || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "glmprep: ") {
			t.Errorf("glmprep %q: exit %d, stdout %q, stderr %q; want one line with %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

// A flag given a value out of its range is a usage error naming the flag
// and the range, never taken for a default or left to misreport.
func TestFlagRanges(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		// bench-load: 0 ran the 5 s default, Inf and NaN read no batch and
		// reported 0 rows/s and NaN%, 100000 workers took 13.8 GB.
		{[]string{"bench-load", "d", "--seconds", "0"}, "--seconds 0; want 0 < s ≤ 86400"},
		{[]string{"bench-load", "d", "--seconds", "Inf"}, "--seconds +Inf; want 0 < s ≤ 86400"},
		{[]string{"bench-load", "d", "--seconds", "NaN"}, "--seconds NaN; want 0 < s ≤ 86400"},
		{[]string{"bench-load", "d", "--seconds", "-1"}, "--seconds -1; want 0 < s ≤ 86400"},
		{[]string{"bench-load", "d", "--workers", "100000"}, "--workers 100000; want 1..1024 (or 0: one per CPU)"},
		{[]string{"bench-load", "d", "--workers", "-1"}, "--workers -1; want 1..1024"},
		{[]string{"bench-load", "d", "--verify", "--no-verify"}, "--verify hashes the shards, --no-verify turns the loader's checks off: give one of them"},
		{[]string{"inspect", "d", "--color", "foo"}, `--color "foo": want auto, always or never`},
	} {
		_, _, err := glmprep(t, tc.args...)
		if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("glmprep %q: %v; want a usage error saying %q", tc.args, err, tc.want)
		}
	}
}

// --version prints the version and the VCS stamp this binary has, and the
// manifest records the same.
func TestVersion(t *testing.T) {
	b := cli.ReadBuild()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, code := glmprepBin(t, nil, args...)
		if code != 0 || out != "glmprep "+b.String()+"\n" || !strings.Contains(out, b.Version) {
			t.Errorf("glmprep %s: exit %d, %q", args[0], code, out)
		}
	}
	dir := t.TempDir()
	mustGlmprep(t, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", dir, "--quiet")
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range b.Software() {
		if m.Software[k] != v {
			t.Errorf("manifest software[%s] = %q, want %q", k, m.Software[k], v)
		}
	}
}

// A binary built by `go build` in a git clone reports the commit it was
// built from, and records it in the manifest. (The VCS stamp needs a clone:
// Go does not stamp binaries built in a git worktree or with
// -buildvcs=false.)
func TestVersionStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds glmprep (-short)")
	}
	root, _ := filepath.Abs("../..")
	if st, err := os.Stat(filepath.Join(root, ".git")); err != nil || !st.IsDir() {
		t.Skip("not a git clone (a worktree or an export): Go records no VCS stamp here")
	}
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("git: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "glmprep")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/glmprep")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	rev := strings.TrimSpace(string(head))
	if err != nil || !strings.Contains(string(out), "commit "+rev) {
		t.Fatalf("glmprep --version: %q (%v), want commit %s", out, err, rev)
	}
	dir := t.TempDir()
	if out, err := exec.Command(bin, "build", "--input", filepath.Join(root, "testdata/demo/shakespeare.txt"), "--out", dir, "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m, err := sharding.ReadManifest(dir)
	if err != nil || m.Software["glmkit.revision"] != rev || m.Software["glmkit"] == "(devel)" {
		t.Errorf("manifest software %v (%v), want glmkit.revision %s", m.Software, err, rev)
	}
}

// inspect --ids prints the row's ids, --tokens its token strings, and a
// --start past the last row is an error.
func TestInspectIDsAndStart(t *testing.T) {
	dir := t.TempDir()
	mustGlmprep(t, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", dir, "--quiet", "--seq-len", "64")
	r, err := sharding.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := r.Len()
	var s masking.Sample
	if err := r.Sample(n-1, &s); err != nil {
		t.Fatal(err)
	}
	r.Close()
	out, _, code := glmprepBin(t, nil, "inspect", dir, "--start", strconv.FormatInt(n-1, 10), "--ids", "--color", "never")
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "input ") {
			line = l
		}
	}
	var got []string
	for _, f := range strings.Fields(strings.TrimPrefix(line, "input ")) {
		if f != "|" {
			got = append(got, f)
		}
	}
	var want []string
	for _, id := range s.Input {
		want = append(want, strconv.Itoa(int(id)))
	}
	if code != 0 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("inspect --ids (exit %d): input line\n%s\nwant ids %v", code, line, want)
	}
	out, _, _ = glmprepBin(t, nil, "inspect", dir, "--start", strconv.FormatInt(n-1, 10), "--tokens", "--color", "never")
	if !regexp.MustCompile(`(?m)^input +\[CLS\]`).MatchString(out) {
		t.Errorf("inspect --tokens does not show tokens:\n%.600s", out)
	}
	for _, start := range []int64{n, n + 1000} {
		out, stderr, code := glmprepBin(t, nil, "inspect", dir, "--start", strconv.FormatInt(start, 10))
		if code != 1 || out != "" || !strings.Contains(stderr, fmt.Sprintf("--start %d is past the end: %s has %d rows (0–%d)", start, dir, n, n-1)) {
			t.Errorf("inspect --start %d of %d rows: exit %d, stdout %q, stderr %q", start, n, code, out, stderr)
		}
	}
	if _, stderr, code := glmprepBin(t, nil, "inspect", dir, "--start", "-1"); code != 2 || !strings.Contains(stderr, "--start -1") {
		t.Errorf("inspect --start -1: exit %d, %q", code, stderr)
	}
}

// stats --json is indented JSON, and the build summary and stats count
// text tokens and source tokens alike.
func TestStatsJSONAndTokenCounts(t *testing.T) {
	dir := t.TempDir()
	_, summary, err := glmprep(t, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	out := mustGlmprep(t, "stats", dir, "--json")
	var re bytes.Buffer
	if err := json.Indent(&re, []byte(out), "", "  "); err != nil || re.String() != out {
		t.Errorf("stats --json is not indented JSON (%v):\n%.500s", err, out)
	}
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		TextTokens int64 `json:"text_tokens"` // the documents' tokens, without [CLS] and eos
	}
	json.Unmarshal([]byte(out), &st)
	text := mustGlmprep(t, "stats", dir)
	count := func(s, what string) string {
		m := regexp.MustCompile(`(\d+) ` + what).FindStringSubmatch(s)
		if m == nil {
			return ""
		}
		return m[1]
	}
	wantText, wantSource := strconv.FormatInt(st.TextTokens, 10), strconv.FormatInt(m.Totals.SourceTokens, 10)
	for name, s := range map[string]string{"build summary": summary, "stats": text} {
		if count(s, "text tokens") != wantText || count(s, "source tokens") != wantSource {
			t.Errorf("%s: %s text tokens, %s source tokens; want %s and %s (the manifest's)\n%s", name, count(s, "text tokens"), count(s, "source tokens"), wantText, wantSource, s)
		}
	}
	if m.Totals.SourceTokens-st.TextTokens != 2*m.Totals.Rows && m.Totals.SourceTokens <= st.TextTokens {
		t.Errorf("source tokens %d should count [CLS] and eos on top of %d text tokens", m.Totals.SourceTokens, st.TextTokens)
	}
}

// The commands that work on a plan say so of a directory without one,
// instead of passing on the file system's error.
func TestPlanCommandsWithoutPlan(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"status", dir}, {"merge", dir}, {"run-task", "--task", "0", dir}} {
		_, _, err := glmprep(t, args...)
		if want := dir + " has no plan.json: not a glmprep build or plan"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("glmprep %s: %v; want an error saying %q", strings.Join(args, " "), err, want)
		}
	}
}

// glmprep status shows an unfinished plan's tasks done, started and left;
// merge names every incomplete task and the --array= spec of exactly
// those.
func TestStatusAndMerge(t *testing.T) {
	dir := t.TempDir()
	in := t.TempDir()
	for i, name := range []string{"a.txt", "b.txt", "c.txt", "d.txt"} {
		var b strings.Builder
		for j := range 300 {
			fmt.Fprintf(&b, "Document %d of input %d. It has a second sentence too.\n", j, i)
		}
		os.WriteFile(filepath.Join(in, name), []byte(b.String()), 0o644)
	}
	if n := strings.TrimSpace(mustGlmprep(t, "plan", "--input", in, "--out", dir, "--quiet", "--shard-rows", "4", "--seq-len", "64")); n != "4" {
		t.Fatalf("plan printed %q tasks, want 4", n)
	}
	out, _, code := glmprepBin(t, nil, "status", dir)
	if code != 0 || !strings.Contains(out, "done     0 tasks") || !strings.Contains(out, "left     4 tasks (0-3), not started") {
		t.Errorf("status of a fresh plan (exit %d):\n%s", code, out)
	}
	mustGlmprep(t, "run-task", dir, "--task", "1")
	mustGlmprep(t, "run-task", dir, "--task", "3")
	_, _, code = glmprepBin(t, []string{"GLMKIT_TEST_CRASH=record-written:2/1"}, "run-task", dir, "--task", "2")
	if code == 0 {
		t.Fatal("run-task 2 was not killed")
	}
	out, _, code = glmprepBin(t, nil, "status", dir)
	for _, want := range []string{"done     2 tasks (1,3)", "started  1 task (2), running or interrupted", "task 2: 2 shards, 8 rows, ", "left     1 task (0), not started", "--array=0,2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	js, _, _ := glmprepBin(t, nil, "status", dir, "--json")
	var st struct {
		Tasks               int
		Done, Started, Left []int
		Array               string
		Complete            bool
		Shards              int
		Rows                int64
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil || st.Tasks != 4 || fmt.Sprint(st.Done, st.Started, st.Left) != "[1 3] [2] [0]" || st.Array != "0,2" || st.Complete {
		t.Errorf("status --json: %+v (%v)\n%s", st, err, js)
	}
	_, stderr, code := glmprepBin(t, nil, "merge", dir)
	for _, want := range []string{"2 tasks of 4 not complete: 0,2", "started but not finished: 2", "not started: 0", "sbatch --array=0,2 "} {
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("merge of an incomplete plan (exit %d) lacks %q:\n%s", code, want, stderr)
		}
	}
	mustGlmprep(t, "run-task", dir, "--task", "0")
	mustGlmprep(t, "run-task", dir, "--task", "2")
	if out, _, _ = glmprepBin(t, nil, "status", dir); !strings.Contains(out, "every task is done; write the manifest with: glmprep merge "+dir) {
		t.Errorf("status with every task done:\n%s", out)
	}
	mustGlmprep(t, "merge", dir)
	if out, _, _ = glmprepBin(t, nil, "status", dir); !strings.Contains(out, "complete: manifest.json is written") {
		t.Errorf("status of a merged build:\n%s", out)
	}
	// A manifest that does not read is not a complete build; merge writes
	// it again.
	man := filepath.Join(dir, "manifest.json")
	good, _ := os.ReadFile(man)
	os.WriteFile(man, []byte("{garbage"), 0o644)
	if out, _, _ = glmprepBin(t, nil, "status", dir); !strings.Contains(out, "not complete: manifest.json is there but does not read") || !strings.Contains(out, "glmprep merge "+dir) {
		t.Errorf("status with a damaged manifest:\n%s", out)
	}
	if js, _, _ := glmprepBin(t, nil, "status", dir, "--json"); !strings.Contains(js, `"complete": false`) || !strings.Contains(js, `"manifest_error": "`) {
		t.Errorf("status --json with a damaged manifest:\n%s", js)
	}
	mustGlmprep(t, "merge", dir)
	if again, _ := os.ReadFile(man); !bytes.Equal(again, good) {
		t.Error("merge did not write the damaged manifest again as it was")
	}
	if _, stderr, code := glmprepBin(t, nil, "status", t.TempDir()); code != 1 || !strings.Contains(stderr, "has no plan.json") {
		t.Errorf("status of an empty directory: exit %d, %q", code, stderr)
	}
}

// A build's directories and files follow the umask (0777 and 0666 less
// it), as other tools' do.
func TestBuildUmask(t *testing.T) {
	self, err := hookedGlmprep.Path()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b")
	cmd := exec.Command("sh", "-c", `umask 002 && exec "$0" "$@"`, self, "build", "--input", "../../testdata/demo/shakespeare.txt", "--out", out, "--quiet")
	cmd.Env = os.Environ()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	for _, p := range []string{out, filepath.Join(out, "tasks"), filepath.Join(out, "manifest.json"), filepath.Join(out, "plan.json"), filepath.Join(out, "shard-000000-0000.arrow"), filepath.Join(out, "tasks", "000000.json")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o664)
		if st.IsDir() {
			want = 0o775
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v under umask 002, want %v", p, st.Mode().Perm(), want)
		}
	}
}

// inspect shows a row's control characters as escapes: an ESC sequence, a
// carriage return, a bell or a bidi override from the corpus never reaches
// the terminal raw.
func TestInspectEscapesControls(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	text := "Hello \x1b[31mred\x1b[0m world\ttab\rreturn \x07bell \u202eevil end.\n"
	if err := os.WriteFile(in, []byte(strings.Repeat(text, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	mustGlmprep(t, "build", "--input", in, "--out", out, "--tokenizer", "gpt2", "--quiet")
	got := mustGlmprep(t, "inspect", out, "--rows", "1")
	if i := strings.IndexFunc(got, func(r rune) bool { return r != '\n' && cli.IsControl(r) }); i >= 0 {
		t.Fatalf("inspect wrote %q raw: %q", got[i:i+1], got)
	}
	for _, esc := range []string{`\x1b`, `\t`, `\r`, `\a`, `\u202e`} {
		if !strings.Contains(got, esc) {
			t.Errorf("inspect output lacks the escape %s: %q", esc, got)
		}
	}
}

// A task record pins the plan it ran under: a plan.json edited between
// tasks makes merge refuse the records of the old plan, and run-task, like
// a record that does not read, says so, removes it and runs the task
// again, so resubmitting the task is the way out (it used to fail the
// same way each time until the record was deleted by hand).
func TestRecordsPinTheirPlan(t *testing.T) {
	dir := t.TempDir()
	in := t.TempDir()
	for i, name := range []string{"a.txt", "b.txt"} {
		var b strings.Builder
		for j := range 200 {
			fmt.Fprintf(&b, "Document %d of input %d. It has a second sentence too.\n", j, i)
		}
		os.WriteFile(filepath.Join(in, name), []byte(b.String()), 0o644)
	}
	mustGlmprep(t, "plan", "--input", in, "--out", dir, "--quiet", "--seq-len", "64")
	mustGlmprep(t, "run-task", dir, "--task", "0")
	plan := filepath.Join(dir, "plan.json")
	b, _ := os.ReadFile(plan)
	os.WriteFile(plan, bytes.Replace(b, []byte(`"seed": 1234`), []byte(`"seed": 99`), 1), 0o644)
	if edited, _ := os.ReadFile(plan); bytes.Equal(b, edited) {
		t.Fatalf("the plan's seed was not found to edit:\n%s", b)
	}
	mustGlmprep(t, "run-task", dir, "--task", "1")
	if _, stderr, code := glmprepBin(t, nil, "merge", dir); code == 0 || !strings.Contains(stderr, "written under another plan") {
		t.Errorf("merge of a record of another plan: exit %d\n%s", code, stderr)
	}
	_, stderr, code := glmprepBin(t, nil, "run-task", dir, "--task", "0")
	if code != 0 || !strings.Contains(stderr, "written under another plan") || !strings.Contains(stderr, "task 0 runs again from its start") {
		t.Errorf("run-task over a record of another plan: exit %d\n%s", code, stderr)
	}
	mustGlmprep(t, "merge", dir)
	// A damaged record: run-task runs the task again, and the build is as
	// it was.
	want := readDir(t, dir)
	os.WriteFile(filepath.Join(dir, "tasks", "000001.json"), []byte(`{"task": 1, "complete": tr`), 0o644)
	if _, stderr, code := glmprepBin(t, nil, "run-task", dir, "--task", "1"); code != 0 || !strings.Contains(stderr, "runs again from its start") {
		t.Errorf("run-task over a damaged record: exit %d\n%s", code, stderr)
	}
	mustGlmprep(t, "merge", dir)
	glmtest.SameFiles(t, "the build after the damaged record's task ran again", want, readDir(t, dir))
}

// build and run-task bound --workers as bench-load does: 100000 workers
// ran 50000 tasks at once, each with its buffers.
func TestBuildWorkersBound(t *testing.T) {
	in := "../../testdata/demo/shakespeare.txt"
	if _, _, err := glmprep(t, "build", "--input", in, "--out", t.TempDir(), "--quiet", "--workers", "100000"); err == nil || !strings.Contains(err.Error(), "--workers 100000: want 1..1024") {
		t.Errorf("build --workers 100000: %v", err)
	}
	dir := t.TempDir()
	mustGlmprep(t, "plan", "--input", in, "--out", dir, "--quiet")
	if _, _, err := glmprep(t, "run-task", dir, "--task", "0", "--workers", "5000"); err == nil || !strings.Contains(err.Error(), "--workers 5000: want 1..1024") {
		t.Errorf("run-task --workers 5000: %v", err)
	}
}
