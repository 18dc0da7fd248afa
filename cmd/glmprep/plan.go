package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

const planHelp = `Usage: glmprep plan --input PATH... --out DIR [build flags]

Plans a build without running it: resolves and hashes the inputs, cuts them
into independent tasks (a file each, or byte ranges of about --task-bytes of
a large uncompressed line-based file, cut at line boundaries) and writes
DIR/plan.json. Then run every task, anywhere that sees DIR, with
"glmprep run-task DIR --task I" (or a Slurm array / Kubernetes Indexed Job,
which set the index), and finish with "glmprep merge DIR". The result is
byte-identical to "glmprep build" with the same inputs and flags.

It prints the number of tasks on stdout.

Examples:
  glmprep plan --input testdata/demo --out out/demo-plan
  N=$(glmprep plan --input 'crawl/*.jsonl.zst' --tokenizer gpt2 --out /shared/crawl)
  sbatch --array=0-$((N-1)) --export=ALL,BUILD=/shared/crawl glmprep-array.sbatch
  glmprep status /shared/crawl
  glmprep merge /shared/crawl
`

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, ui, a, err := parseBuild("plan", planHelp, false, args, stdout, stderr)
	if err != nil {
		return err
	}
	cli.OnInterrupt(ctx, func() string {
		return fmt.Sprintf("the plan was not written; run the same command again (%s)", cli.Command(append([]string{"plan"}, args...), nil, ""))
	})
	plan, err := pipeline.Prepare(ctx, &o)
	ui.finish()
	if err != nil {
		return err
	}
	if ov, ok := validOptions(o, a); ok {
		vp, err := pipeline.Prepare(ctx, &ov)
		ui.finish()
		if err != nil {
			return fmt.Errorf("the validation split (%s): %w", ov.Out, err)
		}
		fmt.Fprintf(stderr, "glmprep: planned the training split in %s and the validation split in %s, %d tasks each: run the tasks of both, then merge both\n", o.Out, ov.Out, len(vp.Tasks))
	}
	fmt.Fprintln(stdout, len(plan.Tasks))
	return nil
}

const runTaskHelp = `Usage: glmprep run-task DIR [--task I] [--workers N]

Runs one task of the plan in DIR, writing only that task's shards and its
record DIR/tasks/I.json. A finished task is skipped; a half-finished one
continues after its last complete shard. Without --task the index comes from
SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs);
both set to different tasks is an error (give --task).
The tokenizer is the one the plan names (--tokenizer points at it when it
was a file that moved); its sha256 must be the plan's.

Examples:
  glmprep run-task /shared/crawl --task 7
  SLURM_ARRAY_TASK_ID=7 glmprep run-task /shared/crawl --workers 8
`

// taskFromEnv sets task from $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX
// and reports whether one was set. Both set to different tasks is an
// error naming both: which scheduler's index is meant is not for run-task
// to guess.
func taskFromEnv(task *int) (bool, error) {
	from := ""
	for _, env := range []string{"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"} {
		v := os.Getenv(env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return false, fmt.Errorf("$%s=%q is not a task index", env, v)
		}
		switch {
		case from == "":
			*task, from = n, env
		case n != *task:
			return false, fmt.Errorf("$%s=%d and $%s=%d name different tasks: give --task I, or unset one of them", from, *task, env, n)
		}
	}
	return from != "", nil
}

func cmdRunTask(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep run-task", runTaskHelp, stdout)
	task := fs.Int("task", -1, "task index (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX)")
	workers := fs.Int("workers", 0, "parallel workers (default: the number of CPUs)")
	strict := fs.Bool("strict", false, "make bad input fatal instead of counted")
	tokSpec := fs.String("tokenizer", "", "tokenizer (default: the one the plan names); must match the plan's sha256")
	dir, err := parseDir(fs, args)
	if err != nil {
		return err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "task" })
	if !given {
		if given, err = taskFromEnv(task); err != nil {
			return err
		}
	}
	plan, err := readPlan(dir)
	if err != nil {
		return err
	}
	if !given {
		return fmt.Errorf("no task to run: give --task I (the plan in %s has tasks 0..%d), or run it under a Slurm array ($SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job ($JOB_COMPLETION_INDEX)", dir, len(plan.Tasks)-1)
	}
	if *task < 0 || *task >= len(plan.Tasks) {
		return fmt.Errorf("task %d: the plan in %s has tasks 0..%d (give --task, or run under a Slurm array or an Indexed Job)", *task, dir, len(plan.Tasks)-1)
	}
	spec := plan.Config.Tokenizer
	if *tokSpec != "" {
		spec = *tokSpec
	}
	opts, err := tokenizer.ParseLoadOptions(plan.Meta.TokenizerOptions)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadWith(spec, opts)
	if err != nil {
		return err
	}
	if tok.SHA256() != plan.Meta.TokenizerSHA256 {
		return fmt.Errorf("tokenizer %s has sha256 %.12s…, the plan needs %.12s…", spec, tok.SHA256(), plan.Meta.TokenizerSHA256)
	}
	if f := plan.Meta.TokenizerFamily; !sharding.SameFamily(tok.Family(), f) {
		return fmt.Errorf("tokenizer %s loads here as %s, the plan was made with it as %s: the same file tokenizes differently (a tokenizer_config.json beside it that is missing or other here?); give this task the plan's tokenizer", spec, tok.Family(), f)
	}
	if tok.Special() != plan.Meta.Special || tok.ModelVocabSize() != plan.Meta.VocabSize {
		return fmt.Errorf("%s: the plan's special ids or vocabulary size (%d) are not tokenizer %s's (%d): the plan was edited; plan the build again", filepath.Join(dir, pipeline.PlanName), plan.Meta.VocabSize, spec, tok.ModelVocabSize())
	}
	cli.OnInterrupt(ctx, func() string {
		rec, _ := pipeline.ReadTaskRecord(dir, *task)
		n := 0
		if rec != nil {
			n = len(rec.Shards)
		}
		return fmt.Sprintf("task %d kept %d committed shards in %s; continue it with:\n  %s", *task, n, dir, cli.Command(append([]string{"run-task"}, args...), nil, ""))
	})
	env, err := pipeline.NewEnv(plan, dir, tok.SentenceEnds(), func() pipeline.Encoder { return tok.NewEncoder() }, *workers)
	if err != nil {
		return err
	}
	env.Strict, env.Software = *strict, cli.ReadBuild().Software()
	env.Warn = func(msg string) { fmt.Fprintln(stderr, "glmprep: warning:", cli.Message(msg)) }
	rec, err := pipeline.RunTaskOnce(ctx, plan, env, plan.Tasks[*task])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "task %d: complete, %d shards, %d rows\n", *task, len(rec.Shards), rec.Stats.Row.Rows)
	return nil
}

const mergeHelp = `Usage: glmprep merge DIR

Checks that every task of the plan in DIR is complete and its shards are
present, then writes DIR/manifest.json: the same file "glmprep build" would
have written. When tasks are not complete it names every one of them and
prints the --array= spec that resubmits exactly those ("glmprep status DIR"
shows the same without failing).

Examples:
  glmprep merge /shared/crawl
  sbatch --dependency=afterok:$job --wrap "glmprep merge /shared/crawl"
`

// readPlan reads the plan in dir for the commands that work on one
// (run-task, merge, status), saying what dir is not when it has none.
func readPlan(dir string) (*pipeline.Plan, error) {
	plan, err := pipeline.ReadPlan(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: not a glmprep build or plan (or the build has not planned yet)", dir, pipeline.PlanName)
	}
	return plan, err
}

// parsePlanDir parses the command line of a command whose argument is a
// plan's directory, and reads that plan.
func parsePlanDir(fs *flag.FlagSet, args []string) (string, *pipeline.Plan, error) {
	dir, err := parseDir(fs, args)
	if err != nil {
		return "", nil, err
	}
	plan, err := readPlan(dir)
	return dir, plan, err
}

func cmdMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep merge", mergeHelp, stdout)
	dir, plan, err := parsePlanDir(fs, args)
	if err != nil {
		return err
	}
	cli.OnInterrupt(ctx, func() string {
		return fmt.Sprintf("the manifest was not written; run it again: %s", cli.Command(append([]string{"merge"}, args...), nil, ""))
	})
	if err := incompleteTasks(dir, plan); err != nil {
		return err
	}
	m, _, err := pipeline.Merge(dir, plan, cli.ReadBuild().Software())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: manifest written: %d tasks, %d shards, %d rows\n", dir, len(plan.Tasks), m.Totals.Shards, m.Totals.Rows)
	return nil
}

// incompleteTasks is the error of a plan whose tasks are not all complete:
// it names every one (as ranges), says which have started, and gives the
// --array= spec that resubmits exactly those.
func incompleteTasks(dir string, plan *pipeline.Plan) error {
	s := scanTasks(dir, plan)
	nd := s.notDone()
	if len(nd) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s of %d not complete: %s", dir, plural(len(nd), "task"), len(plan.Tasks), ranges(nd))
	var what []string
	if len(s.started) > 0 {
		what = append(what, fmt.Sprintf("started but not finished: %s", ranges(s.started)))
	}
	if len(s.left) > 0 {
		what = append(what, fmt.Sprintf("not started: %s", ranges(s.left)))
	}
	fmt.Fprintf(&b, " (%s)", strings.Join(what, "; "))
	for _, t := range s.left {
		if err := s.damaged[t]; err != nil {
			fmt.Fprintf(&b, "\n  task %d: its record cannot be read: %v", t, err)
		}
	}
	fmt.Fprintf(&b, "\nresubmit exactly those tasks, then merge again:\n  sbatch --array=%s ...   (Slurm)\n  glmprep run-task %s --task I   (for each I above)", ranges(nd), dir)
	return errors.New(b.String())
}
