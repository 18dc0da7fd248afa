package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/pipeline"
)

// glmprepProcess starts glmprep (built with the test hooks) in its own
// process.
func glmprepProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, out, err := startGlmprep(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// startGlmprep is glmprepProcess for goroutines other than the test's,
// which may not call t.Fatal: it returns the error instead.
func startGlmprep(env []string, args ...string) (*exec.Cmd, *bytes.Buffer, error) {
	cmd, err := hookedGlmprep.Command(env, args...)
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("glmprep %s: %w", strings.Join(args, " "), err)
	}
	return cmd, &out, nil
}

func scaleOutFlags(t *testing.T) []string {
	return []string{"--tokenizer", "bert-base-uncased", "--task-bytes", "300KiB", "--shard-rows", "8",
		"--mix", "token=0.4,sentence=0.3,document=0.3", "--quiet",
		"--input", glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"), "--input", glmtest.Corpus(t, "wikitext-2-raw/wiki.test.raw"),
		"--input", glmtest.Corpus(t, "web-jsonl-samples")}
}

// A plan of at least 8 tasks, run as separate processes in a shuffled
// order two at a time, one of them killed part way and run again, then
// merged, gives the bytes of `glmprep build` with the same inputs and flags.
func TestPlanRunTaskMerge(t *testing.T) {
	flags := scaleOutFlags(t)
	ref := t.TempDir()
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)

	dir := t.TempDir()
	out := mustGlmprep(t, append([]string{"plan", "--out", dir}, flags...)...)
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n < 8 {
		t.Fatalf("plan printed %q; want a task count of at least 8", out)
	}
	order := rand.New(rand.NewPCG(7, 7)).Perm(n)
	plan, err := pipeline.ReadPlan(dir)
	if err != nil {
		t.Fatal(err)
	}
	victim := pickVictim(plan, order)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for _, task := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func(task int) {
			defer wg.Done()
			defer func() { <-sem }()
			f := runTaskProcess(dir, task, task == victim)
			mu.Lock()
			failures = append(failures, f...)
			mu.Unlock()
		}(task)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatal(strings.Join(failures, "\n"))
	}
	if o, _, err := glmprep(t, "merge", dir); err != nil {
		t.Fatalf("merge: %v %s", err, o)
	}
	glmtest.SameFiles(t, "merged build", readDir(t, ref), readDir(t, dir))
	t.Logf("%d tasks as processes, shuffled, two at a time, task %d killed and rerun: identical to glmprep build", n, victim)
}

// pickVictim is the task to kill part way and run again: the third in
// order that reads a wikitext range (the web files are tasks of a few
// rows).
func pickVictim(plan *pipeline.Plan, order []int) int {
	var victim, seen int
	for _, task := range order {
		if strings.Contains(plan.Inputs[plan.Tasks[task].Input].Path, "wiki") {
			if victim = task; seen == 2 {
				break
			}
			seen++
		}
	}
	return victim
}

// runTaskProcess runs one task of the plan in dir as a process and
// returns what went wrong. A task takes its index from Slurm's variable or
// Kubernetes', in turn; the victim is named by --task, slowed down, killed
// once it has committed two shards, and run again. It runs on a goroutine
// of its own, so it reports failures rather than failing the test.
func runTaskProcess(dir string, task int, victim bool) []string {
	var failures []string
	var env []string
	if victim {
		env = []string{"GLMKIT_TEST_COMMIT_DELAY=30ms"}
	} else if task%2 == 0 {
		env = []string{"SLURM_ARRAY_TASK_ID=" + strconv.Itoa(task)} // the index from Slurm
	} else {
		env = []string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(task)} // …or from Kubernetes
	}
	args := []string{"run-task", dir}
	if victim {
		args = append(args, "--task", strconv.Itoa(task))
	}
	cmd, log, err := startGlmprep(env, args...)
	if err != nil {
		return []string{fmt.Sprintf("task %d: %v", task, err)}
	}
	if victim {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if rec, _ := pipeline.ReadTaskRecord(dir, task); rec != nil && len(rec.Shards) >= 2 {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if rec, _ := pipeline.ReadTaskRecord(dir, task); rec == nil || rec.Complete {
			failures = append(failures, fmt.Sprintf("task %d finished before it was killed", task))
		}
		if cmd, log, err = startGlmprep(nil, "run-task", dir, "--task", strconv.Itoa(task)); err != nil {
			return append(failures, fmt.Sprintf("task %d, run again: %v", task, err))
		}
	}
	if err := cmd.Wait(); err != nil {
		failures = append(failures, fmt.Sprintf("task %d: %v\n%s", task, err, log))
	}
	return failures
}

// Two processes running the same task at once end with one complete, valid
// result.
func TestSameTaskTwiceAtOnce(t *testing.T) {
	flags := []string{"--tokenizer", "gpt2", "--shard-rows", "15", "--quiet", "--input", glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw")}
	ref := t.TempDir()
	mustGlmprep(t, append([]string{"build", "--out", ref}, flags...)...)
	dir := t.TempDir()
	mustGlmprep(t, append([]string{"plan", "--out", dir}, flags...)...)
	env := []string{"GLMKIT_TEST_COMMIT_DELAY=5ms"}
	a, la := glmprepProcess(t, env, "run-task", dir, "--task", "0")
	b, lb := glmprepProcess(t, env, "run-task", dir, "--task", "0")
	if err := a.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, la)
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("second run: %v\n%s", err, lb)
	}
	rec, err := pipeline.ReadTaskRecord(dir, 0)
	if err != nil || rec == nil || !rec.Complete {
		t.Fatalf("record after two runs: %+v, %v", rec, err)
	}
	mustGlmprep(t, "merge", dir)
	if v := mustGlmprep(t, "verify", dir); !strings.Contains(v, "OK") {
		t.Fatalf("verify: %s", v)
	}
	glmtest.SameFiles(t, "build of a task run twice at once", readDir(t, ref), readDir(t, dir))
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}
}

func TestRunTaskErrors(t *testing.T) {
	dir := t.TempDir()
	mustGlmprep(t, "plan", "--out", dir, "--quiet", "--input", "../../testdata/demo/shakespeare.txt")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run-task", dir, "--task", "5"}, "has tasks 0..0"},
		{[]string{"run-task", dir}, "no task to run: give --task I (the plan in"},
		{[]string{"run-task", dir, "--task", "-1"}, "task -1: the plan in"},
		{[]string{"merge", dir}, "1 task of 1 not complete: 0"},
		{[]string{"run-task", t.TempDir(), "--task", "0"}, "plan.json"},
	} {
		t.Setenv("SLURM_ARRAY_TASK_ID", "")
		t.Setenv("JOB_COMPLETION_INDEX", "")
		if _, _, err := glmprep(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("glmprep %v: %v, want %q", tc.args, err, tc.want)
		}
	}

	// Both schedulers' indexes set and different: run-task ran Slurm's
	// silently. It is refused, naming both, unless --task says which.
	for _, tc := range []struct {
		slurm, k8s string
		args       []string
		want       string // "": runs
	}{
		{"2", "1", []string{"run-task", dir}, "$SLURM_ARRAY_TASK_ID=2 and $JOB_COMPLETION_INDEX=1 name different tasks: give --task I"},
		{"0", "0", []string{"run-task", dir}, ""},
		{"2", "1", []string{"run-task", dir, "--task", "0"}, ""},
		{"", "x", []string{"run-task", dir}, `$JOB_COMPLETION_INDEX="x" is not a task index`},
	} {
		t.Setenv("SLURM_ARRAY_TASK_ID", tc.slurm)
		t.Setenv("JOB_COMPLETION_INDEX", tc.k8s)
		_, _, err := glmprep(t, tc.args...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("SLURM_ARRAY_TASK_ID=%s JOB_COMPLETION_INDEX=%s glmprep %v: %v", tc.slurm, tc.k8s, tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("SLURM_ARRAY_TASK_ID=%s JOB_COMPLETION_INDEX=%s glmprep %v: %v, want %q", tc.slurm, tc.k8s, tc.args, err, tc.want)
		}
	}
}
