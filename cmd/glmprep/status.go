package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/sharding"
)

const statusHelp = `Usage: glmprep status DIR [--json]

Shows how far a build or a plan has come, from DIR/plan.json and the task
records in DIR/tasks (it needs no manifest, so it works on a build that is
running, was interrupted, or runs as a Slurm array or an Indexed Job):
the tasks done, started (a progress record: running now, or interrupted)
and not started, with their shards and rows, and the --array= spec that
resubmits exactly the tasks that are not done. Nothing is changed.

The exit status is 0 whatever the progress; --json prints one JSON object
(tasks, done, started, left, array, complete, manifest, rows, shards).

Examples:
  glmprep status out/crawl
  glmprep status /shared/crawl --json | jq -r .array
`

// taskScan is the state of every task of a plan, from its records.
type taskScan struct {
	plan    *pipeline.Plan
	done    []int // complete records
	started []int // progress records only
	left    []int // no record
	damaged map[int]error
	recs    map[int]*pipeline.TaskRecord
	updated map[int]time.Time // when a started task last recorded progress
}

func scanTasks(dir string, plan *pipeline.Plan) taskScan {
	s := taskScan{plan: plan, damaged: map[int]error{}, recs: map[int]*pipeline.TaskRecord{}, updated: map[int]time.Time{}}
	for _, t := range plan.Tasks {
		rec, err := pipeline.ReadTaskRecord(dir, t.Index)
		switch {
		case err != nil:
			s.damaged[t.Index] = err
			s.left = append(s.left, t.Index)
		case rec == nil:
			s.left = append(s.left, t.Index)
		case rec.Complete:
			s.done = append(s.done, t.Index)
			s.recs[t.Index] = rec
		default:
			s.started = append(s.started, t.Index)
			s.recs[t.Index] = rec
			if u := pipeline.ProgressUpdated(dir, t.Index); !u.IsZero() {
				s.updated[t.Index] = u
			}
		}
	}
	return s
}

// notDone is every task that is not complete, in order.
func (s taskScan) notDone() []int {
	var n []int
	for _, t := range s.plan.Tasks {
		if s.recs[t.Index] == nil || !s.recs[t.Index].Complete {
			n = append(n, t.Index)
		}
	}
	return n
}

// shardsRows sums the shards and rows of the given tasks' records.
func (s taskScan) shardsRows(tasks []int) (shards int, rows int64) {
	for _, t := range tasks {
		if r := s.recs[t]; r != nil {
			shards += len(r.Shards)
			for _, sf := range r.Shards {
				rows += sf.Rows
			}
		}
	}
	return shards, rows
}

// ranges writes task indices as a Slurm --array spec: "0-2,5,7-9".
func ranges(idx []int) string {
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(idx[i]))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func plural(n int, one string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %ss", n, one)
}

// taskProgress says how far a started task got: its shards and rows, and
// the share of its byte range read when that is known (uncompressed text
// and JSON Lines).
func (s taskScan) taskProgress(t int) string {
	rec := s.recs[t]
	rows := int64(0)
	for _, sf := range rec.Shards {
		rows += sf.Rows
	}
	msg := fmt.Sprintf("task %d: %s, %d rows", t, plural(len(rec.Shards), "shard"), rows)
	task := s.plan.Tasks[t]
	in := s.plan.Inputs[task.Input]
	if in.Compression == "none" && in.Format != "parquet" && in.Size > 0 {
		end := task.End
		if end < 0 {
			end = in.Size
		}
		if span := end - task.Start; span > 0 {
			done := min(max(rec.Resume.Offset-task.Start, 0), span)
			msg += fmt.Sprintf(", %.0f%% of its %s", 100*float64(done)/float64(span), humanBytes(float64(span)))
		}
	}
	if u, ok := s.updated[t]; ok {
		msg += fmt.Sprintf(", last progress %s ago", time.Since(u).Round(time.Second))
	}
	return msg
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmprep status", statusHelp, stdout)
	asJSON := fs.Bool("json", false, "print one JSON object")
	dir, plan, err := parsePlanDir(fs, args)
	if err != nil {
		return err
	}
	s := scanTasks(dir, plan)
	var man manifestState
	if _, err := os.Lstat(filepath.Join(dir, sharding.ManifestName)); err == nil {
		man.present = true
		_, man.err = sharding.ReadManifest(dir)
	}
	if *asJSON {
		return printStatusJSON(stdout, dir, s, man)
	}
	printStatus(stdout, dir, s, man)
	return nil
}

// manifestState is whether a build's manifest is there, and why it cannot
// be read if it cannot: the build is complete only with one that reads.
type manifestState struct {
	present bool
	err     error
}

func (m manifestState) complete() bool { return m.present && m.err == nil }

// written sums the shards and rows that the done and started tasks
// recorded.
func (s taskScan) written() (shards int, rows int64) {
	return s.shardsRows(append(append([]int{}, s.done...), s.started...))
}

// printStatusJSON prints status --json's object.
func printStatusJSON(stdout io.Writer, dir string, s taskScan, man manifestState) error {
	shards, rows := s.written()
	out := struct {
		Dir      string   `json:"dir"`
		Tasks    int      `json:"tasks"`
		Done     []int    `json:"done"`
		Started  []int    `json:"started"`
		Left     []int    `json:"left"`
		Damaged  []string `json:"damaged,omitempty"`
		Array    string   `json:"array"`
		Complete bool     `json:"complete"`
		Manifest bool     `json:"manifest"`
		ManErr   string   `json:"manifest_error,omitempty"`
		Shards   int      `json:"shards"`
		Rows     int64    `json:"rows"`
	}{dir, len(s.plan.Tasks), nonNil(s.done), nonNil(s.started), nonNil(s.left), nil, ranges(s.notDone()),
		man.complete(), man.present, "", shards, rows}
	if man.err != nil {
		out.ManErr = man.err.Error()
	}
	for _, t := range s.left {
		if err := s.damaged[t]; err != nil {
			out.Damaged = append(out.Damaged, err.Error())
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// printStatus prints the plan, its tasks done, started and left, and what
// to do next.
func printStatus(stdout io.Writer, dir string, s taskScan, man manifestState) {
	plan := s.plan
	var inBytes int64
	for _, in := range plan.Inputs {
		inBytes += max(in.Size, 0)
	}
	fmt.Fprintf(stdout, "%s: %s over %s (%s), tokenizer %s, seq_len %d\n", dir, plural(len(plan.Tasks), "task"),
		plural(len(plan.Inputs), "input"), humanBytes(float64(inBytes)), plan.Meta.Tokenizer, plan.Meta.SeqLen)
	printTasks(stdout, s)
	switch {
	case man.present && man.err != nil:
		fmt.Fprintf(stdout, "not complete: %s is there but does not read (%v); write it again with: glmprep merge %s\n", sharding.ManifestName, man.err, dir)
	case man.complete():
		shards, rows := s.written()
		fmt.Fprintf(stdout, "complete: %s is written (%s, %d rows); glmprep stats %s shows what it holds\n", sharding.ManifestName, plural(shards, "shard"), rows, dir)
	case len(s.done) == len(plan.Tasks):
		fmt.Fprintf(stdout, "every task is done; write the manifest with: glmprep merge %s\n", dir)
	default:
		fmt.Fprintf(stdout, "not complete: %s is not written yet. To finish, run the tasks that are not done (--array=%s), then glmprep merge %s;\n"+
			"or finish it here with: glmprep build --out %s --resume\n", sharding.ManifestName, ranges(s.notDone()), dir, dir)
	}
}

// printTasks prints the tasks done, started (the first ten with their
// progress) and left (with the records that cannot be read).
func printTasks(stdout io.Writer, s taskScan) {
	ds, dr := s.shardsRows(s.done)
	fmt.Fprintf(stdout, "  done     %s", plural(len(s.done), "task"))
	if len(s.done) > 0 {
		fmt.Fprintf(stdout, " (%s): %s, %d rows", ranges(s.done), plural(ds, "shard"), dr)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "  started  %s", plural(len(s.started), "task"))
	if len(s.started) > 0 {
		fmt.Fprintf(stdout, " (%s), running or interrupted", ranges(s.started))
	}
	fmt.Fprintln(stdout)
	for i, t := range s.started {
		if i == 10 {
			fmt.Fprintf(stdout, "           … and %d more\n", len(s.started)-10)
			break
		}
		fmt.Fprintf(stdout, "           %s\n", s.taskProgress(t))
	}
	fmt.Fprintf(stdout, "  left     %s", plural(len(s.left), "task"))
	if len(s.left) > 0 {
		fmt.Fprintf(stdout, " (%s), not started", ranges(s.left))
	}
	fmt.Fprintln(stdout)
	for _, t := range s.left {
		if err := s.damaged[t]; err != nil {
			fmt.Fprintf(stdout, "           task %d: its record cannot be read: %v\n", t, err)
		}
	}
}

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
