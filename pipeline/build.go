package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
)

// BuildOptions configures Build.
type BuildOptions struct {
	Inputs []string // --input values: files, globs, directories, "-"
	Out    string   // the build directory

	// Meta fixes the tokenizer identity, seq_len, mask epochs and the
	// masking configuration (seed included); Config the rest of the output.
	Meta   sharding.Meta
	Config Config
	// SentenceEnd is the tokenizer's sentence-end bit per id.
	SentenceEnd []bool
	NewEncoder  func() Encoder

	Workers int
	Resume  bool // continue an interrupted build in Out
	Force   bool // replace a build in Out
	Strict  bool // bad input is fatal

	Warn     func(msg string)
	Phase    func(name string, total int64) // a new phase of work of total input bytes
	Progress func(n int64)                  // input bytes done in the current phase (called from several goroutines)
	Software map[string]string              // recorded in the manifest

	open opener // tests: how inputs are opened (nil: os.Open)
}

// Result is what Build did.
type Result struct {
	Manifest     *sharding.Manifest
	Stats        Stats
	TasksSkipped int // complete tasks found by --resume
	TasksRun     int
}

func (o *BuildOptions) phase(name string, total int64) {
	if o.Phase != nil {
		o.Phase(name, total)
	}
}

// Validate checks the options that Build cannot fix itself.
func (o *BuildOptions) validate() error {
	if o.Out == "" {
		return errors.New("pipeline: no --out directory")
	}
	if err := o.Config.Validate(); err != nil {
		return err
	}
	m := o.Meta
	switch {
	case m.SeqLen < 8:
		return fmt.Errorf("pipeline: --seq-len %d: want at least 8", m.SeqLen)
	case m.SeqLen > 1<<20:
		return fmt.Errorf("pipeline: --seq-len %d: want at most %d", m.SeqLen, 1<<20)
	case m.MaskEpochs < 1 || m.MaskEpochs > 1000:
		return fmt.Errorf("pipeline: --mask-epochs %d: want 1..1000", m.MaskEpochs)
	case o.NewEncoder == nil:
		return errors.New("pipeline: no tokenizer")
	case o.Workers < 0 || o.Workers > MaxWorkers:
		return fmt.Errorf("pipeline: --workers %d: want 1..%d (0: the number of CPUs)", o.Workers, MaxWorkers)
	}
	if o.Resume && o.Force {
		return errors.New("pipeline: --resume and --force contradict each other")
	}
	return nil
}

// MaxWorkers bounds --workers: each worker holds its jobs' buffers (a few
// MB), and half as many tasks as workers run at once, so 100000 would ask
// for hundreds of GB.
const MaxWorkers = 1024

// Prepare resolves and hashes the inputs, plans them into tasks, checks
// o.Out against --resume and --force and writes plan.json there. It is the
// first half of Build, and all of `glmprep plan`.
func Prepare(ctx context.Context, o *BuildOptions) (*Plan, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	mcfg := o.Meta.Masking
	mcfg.SentenceEnd = o.SentenceEnd
	if err := mcfg.Validate(); err != nil {
		return nil, err
	}
	inputs, err := resolveInputs(o.Inputs, o.Config.Format, o.Config.DocBoundary, o.Warn)
	if err != nil {
		return nil, err
	}
	if err := detectJSONDocs(ctx, inputs, o.Config, o.Out); err != nil {
		return nil, err
	}
	if o.Resume && !o.Force {
		// Flags and inputs that differ from the plan's are refused before
		// the inputs are hashed (which can take long); their contents are
		// compared after.
		if old, err := ReadPlan(o.Out); err == nil {
			cur := &Plan{FormatVersion: sharding.FormatVersion, Meta: o.Meta, Config: o.Config, Inputs: inputs}
			d := settingsDiff(old, cur)
			for _, l := range inputsDiff(old, cur) {
				if strings.HasPrefix(l, "  --input:") {
					d = append(d, l)
				}
			}
			if len(d) > 0 {
				return nil, fmt.Errorf("pipeline: --resume: %s holds a build of other inputs or flags:\n%s\n--resume continues only the same build: drop those flags (--resume takes every setting and input from %s), or start over with --force", o.Out, strings.Join(d, "\n"), PlanName)
			}
			if err := sameSoftware(old, o.Out, o.Software, "continue it"); err != nil {
				return nil, err
			}
		}
	}
	for _, in := range inputs {
		if in.Path == Stdin && o.Resume {
			return nil, errors.New("pipeline: --resume does not work with stdin input")
		}
	}
	take := int64(-1)
	if n := o.Config.MaxRecords; n > 0 {
		if inputs, take, err = limitInputs(ctx, inputs, o.Config, n, o.Out); err != nil {
			return nil, err
		}
	}
	o.phase("hashing", totalBytes(inputs))
	workers := o.Workers
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	if err := hashInputs(ctx, inputs, workers, o.Config.splits, o.Progress); err != nil {
		return nil, err
	}
	plan, err := makePlan(ctx, o.Meta, o.Config, inputs, workers, o.Progress)
	if err != nil {
		return nil, err
	}
	if err := limitTasks(plan, take); err != nil {
		return nil, err
	}
	plan.Software = o.Software
	if err := o.prepareDir(plan); err != nil {
		return nil, err
	}
	if err := writePlan(o.Out, plan); err != nil {
		return nil, fmt.Errorf("pipeline: writing plan: %w", err)
	}
	return plan, nil
}

func totalBytes(inputs []Input) int64 {
	var n int64
	for _, in := range inputs {
		n += max(in.Size, 0)
	}
	return n
}

// NewEnv returns the environment to run the tasks of plan.
func NewEnv(plan *Plan, dir string, sentenceEnd []bool, newEncoder func() Encoder, workers int) (*Env, error) {
	mcfg := plan.Meta.Masking
	mcfg.SentenceEnd = sentenceEnd
	if newEncoder != nil {
		if se, ok := newEncoder().(SentenceEncoder); ok {
			mcfg.SentenceEndsOf = se.SentenceEndsOf
		}
	}
	masker, err := masking.New(mcfg)
	if err != nil {
		return nil, err
	}
	if workers < 0 || workers > MaxWorkers {
		return nil, fmt.Errorf("pipeline: --workers %d: want 1..%d (0: the number of CPUs)", workers, MaxWorkers)
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Env{Dir: dir, Masker: masker, NewEncoder: newEncoder, Workers: workers}, nil
}

// Build runs a whole build locally: Prepare, then every task (skipping
// those --resume finds complete, continuing an incomplete one after its
// last shard), then Merge, which writes manifest.json last. The output
// bytes depend only on the inputs, o.Meta and o.Config, not on o.Workers.
func Build(ctx context.Context, o BuildOptions) (*Result, error) {
	plan, err := Prepare(ctx, &o)
	if err != nil {
		return nil, err
	}
	env, err := NewEnv(plan, o.Out, o.SentenceEnd, o.NewEncoder, o.Workers)
	if err != nil {
		return nil, err
	}
	env.Strict, env.Warn, env.Progress, env.open = o.Strict, o.Warn, o.Progress, o.open
	res := &Result{}
	o.phase("building", totalBytes(plan.Inputs))
	var todo []Task
	var prevs []*TaskRecord
	for _, t := range plan.Tasks {
		prev, err := prevRecord(o.Out, plan, t.Index, o.Warn)
		if err != nil {
			return nil, err
		}
		if prev != nil && prev.Complete {
			res.TasksSkipped++
			if o.Progress != nil {
				o.Progress(taskBytes(plan, t))
			}
			continue
		}
		todo, prevs = append(todo, t), append(prevs, prev)
	}
	if err := runTasks(ctx, plan, env, todo, prevs); err != nil {
		return nil, err
	}
	res.TasksRun = len(todo)
	m, stats, err := Merge(o.Out, plan, o.Software)
	if err != nil {
		return nil, err
	}
	res.Manifest, res.Stats = m, stats
	return res, nil
}

// runTasks runs tasks (prevs: their incomplete records, or nil) several
// at a time, the workers shared among those running: a task's reading
// (decompressing, splitting lines, hashing) is one goroutine, so a build
// of many inputs keeps every core busy only with several at once. Half as
// many tasks as workers (at least 2) feed them: a reader of gzip, which
// decodes each member twice, keeps about two workers busy, and each task
// running holds about 25 MB.
// Each task's output is its own, so the bytes do not depend on how many
// run together. A task that fails stops the tasks after it, never one
// before it, so the error is the one a build of one task at a time would
// report: the first failing task's.
func runTasks(ctx context.Context, plan *Plan, env *Env, tasks []Task, prevs []*TaskRecord) error {
	if len(tasks) == 0 {
		return nil
	}
	at := min(len(tasks), env.workers(), max(2, env.workers()/2))
	workers := max(1, env.workers()/at)
	return forEach(ctx, len(tasks), at, func(ctx context.Context, i int) error {
		_, err := runTask(ctx, plan, env, tasks[i], prevs[i], workers)
		return err
	})
}

func taskBytes(p *Plan, t Task) int64 {
	in := p.Inputs[t.Input]
	if t.End < 0 {
		return max(in.Size, 0) - t.Start
	}
	return t.End - t.Start
}

// prepareDir checks Out against --resume/--force and clears what a new
// build replaces. glmprep removes only what it can prove it wrote: the
// files a valid plan.json and its task records name, and its own stale
// temporaries.
func (o *BuildOptions) prepareDir(plan *Plan) error {
	if err := os.MkdirAll(o.Out, 0o777); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	old, err := ReadPlan(o.Out)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		if o.Force {
			return fmt.Errorf("%w; --force removes only a glmkit build's own files, and this plan cannot prove which those are (move the directory away, or choose another --out)", err)
		}
		return err
	}
	switch {
	case exists && o.Resume:
		if err := sameSoftware(old, o.Out, o.Software, "continue it"); err != nil {
			return err
		}
		// The plan's binary stays the one that planned the build (this
		// one, or one that cannot tell its version).
		plan.Software = old.Software
		a, _ := json.Marshal(old)
		b, _ := json.Marshal(plan)
		if !bytes.Equal(a, b) {
			return fmt.Errorf("pipeline: --resume: %s holds a build of other inputs or flags:\n%s\n--resume continues only the same build: drop those flags (--resume takes every setting and input from %s), or start over with --force", o.Out, planDiff(old, plan), PlanName)
		}
	case exists && o.Force:
		if err := clearBuild(o.Out, old); err != nil {
			return err
		}
	case exists:
		return fmt.Errorf("pipeline: %s already holds a build; use --resume to continue it or --force to replace it", o.Out)
	default:
		// No plan: the directory must not look like a build that glmprep
		// would write over, and --force has nothing it may remove.
		if err := notABuild(o.Out, o.Force); err != nil {
			return err
		}
	}
	// Temporary files of an interrupted run.
	_, err = cleanTemps(o.Out)
	return err
}

// cleanTemps removes glmkit's stale temporaries from a build directory
// and its tasks folder, and returns their paths.
func cleanTemps(dir string) ([]string, error) {
	var all []string
	for _, d := range []string{dir, filepath.Join(dir, tasksDir)} {
		rm, err := atomicfile.RemoveStale(d, nil)
		for _, n := range rm {
			all = append(all, filepath.Join(d, n))
		}
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// notABuild checks a directory without a plan: it may hold other files,
// but none that a build writes (a manifest, a tasks folder, shards), which
// glmprep would otherwise replace. With force, it must hold nothing but
// stale glmkit temporaries.
func notABuild(dir string, force bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if atomicfile.IsStale(dir, n) {
			continue
		}
		if force {
			return fmt.Errorf("pipeline: --force: %s holds no glmkit plan (plan.json) but holds %s; glmprep removes only files it can prove it wrote, so it will not clear this directory (choose a new or empty --out)", dir, n)
		}
		if n == sharding.ManifestName || n == tasksDir || isShardName(n) {
			return fmt.Errorf("pipeline: %s holds %s but no plan.json: it is not a glmkit build glmprep can continue or replace (choose a new or empty --out)", dir, n)
		}
	}
	return nil
}

func isShardName(n string) bool {
	var t, p int
	_, err := fmt.Sscanf(n, "shard-%06d-%04d.arrow", &t, &p)
	return err == nil && n == shardName(t, p)
}

// clearBuild removes the build that plan describes from dir: the shards of
// its tasks (the parts their records name, and the run of parts after them
// under the names the plan's tasks write), the records, the manifest and
// stale temporaries. Nothing else in dir is touched; the plan itself is replaced
// by the new one.
func clearBuild(dir string, plan *Plan) error {
	rm := func(p string) error {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pipeline: %w", err)
		}
		return nil
	}
	for _, t := range plan.Tasks {
		parts := 0
		for _, p := range []string{recordPath(dir, t.Index), progressPath(dir, t.Index)} {
			b, err := readOwnFile(p, maxRecordBytes)
			if err != nil {
				continue
			}
			if r, err := parseTaskRecord(p, b, plan, t.Index, p == recordPath(dir, t.Index)); err == nil {
				parts = max(parts, len(r.Shards))
			}
		}
		// The parts its records name, the one a crash may have committed
		// after them, and any further run of parts under the names the
		// plan's task writes (a record may be damaged).
		for i := 0; i < maxShards; i++ {
			p := filepath.Join(dir, shardName(t.Index, i))
			if !isRegular(p) {
				if i > parts {
					break
				}
				continue
			}
			if err := rm(p); err != nil {
				return err
			}
		}
		for _, p := range []string{recordPath(dir, t.Index), progressPath(dir, t.Index)} {
			if isRegular(p) {
				if err := rm(p); err != nil {
					return err
				}
			}
		}
	}
	if p := filepath.Join(dir, sharding.ManifestName); isRegular(p) {
		if err := rm(p); err != nil {
			return err
		}
	}
	if _, err := cleanTemps(dir); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, tasksDir)) // only if empty
	return nil
}

// isRegular reports whether path is a regular file (not a link, which
// could lead out of the directory).
func isRegular(path string) bool {
	st, err := os.Lstat(path)
	return err == nil && st.Mode().IsRegular()
}

// Merge assembles the manifest of a build from its plan and task records,
// checks that every task is complete, that its shards are there, and that
// it read the bytes the plan hashed, and writes manifest.json last,
// atomically. A build of no rows is refused unless the plan allows it.
// It first removes stale temporaries, as run-task does.
func Merge(dir string, plan *Plan, software map[string]string) (*sharding.Manifest, Stats, error) {
	// A merge killed while it wrote the manifest left its temporary.
	if _, err := cleanTemps(dir); err != nil {
		return nil, Stats{}, err
	}
	cfg, err := json.Marshal(plan.Config)
	if err != nil {
		return nil, Stats{}, err
	}
	m := &sharding.Manifest{FormatVersion: sharding.FormatVersion, Meta: plan.Meta, Config: cfg,
		Shards: []sharding.ShardFile{}, Software: software}
	if plan.Software != nil {
		m.Software = plan.Software // the binary that wrote the rows (sameSoftware)
	}
	inputs := append([]Input(nil), plan.Inputs...)
	var stats Stats
	for _, t := range plan.Tasks {
		rec, err := readTaskRecord(dir, plan, t.Index)
		if err != nil {
			return nil, stats, err
		}
		if rec == nil || !rec.Complete {
			return nil, stats, fmt.Errorf("pipeline: task %d of %s is not complete", t.Index, dir)
		}
		for _, sf := range rec.Shards {
			st, err := os.Lstat(filepath.Join(dir, sf.Name))
			if err != nil {
				return nil, stats, fmt.Errorf("pipeline: task %d: shard %w", t.Index, err)
			}
			if !st.Mode().IsRegular() {
				return nil, stats, fmt.Errorf("pipeline: task %d: %s is not a regular file", t.Index, filepath.Join(dir, sf.Name))
			}
			if st.Size() != sf.Bytes {
				return nil, stats, fmt.Errorf("pipeline: task %d: %s has %d bytes, its record says %d", t.Index, sf.Name, st.Size(), sf.Bytes)
			}
		}
		in := plan.Inputs[t.Input]
		if want := expectedSum(plan, t.Index); want != "" && rec.ReadSHA256 != want {
			if rec.ReadSHA256 == "" {
				return nil, stats, fmt.Errorf("pipeline: task %d: its record does not say what it read from %s (written by an older glmprep?); run the task again", t.Index, in.Path)
			}
			return nil, stats, fmt.Errorf("pipeline: %s: task %d read bytes with sha256 %.16s…, the plan hashed %.16s…: the input changed after it was planned (plan the build again)", in.Path, t.Index, rec.ReadSHA256, want)
		}
		if rec.Input != nil {
			inputs[t.Input].Size, inputs[t.Input].SHA256 = rec.Input.Size, rec.Input.SHA256
		}
		m.Shards = append(m.Shards, rec.Shards...)
		stats.Add(rec.Stats)
		// A concurrent run of a task may leave its progress behind the
		// complete record; it is stale.
		if p := progressPath(dir, t.Index); isRegular(p) {
			os.Remove(p)
		}
	}
	if stats.Row.Rows == 0 && !plan.Config.AllowEmpty {
		return nil, stats, fmt.Errorf("pipeline: %s: the build wrote no rows: %s; no manifest written (pass --allow-empty to accept an empty build, with --force to replace this one)", dir, whyEmpty(&stats))
	}
	for _, in := range inputs {
		m.Inputs = append(m.Inputs, sharding.InputFile{Path: in.Path, Size: in.Size, SHA256: in.SHA256})
	}
	if m.Stats, err = json.Marshal(stats); err != nil {
		return nil, stats, err
	}
	m.Sum()
	if err := sharding.WriteManifest(dir, m); err != nil {
		return nil, stats, err
	}
	return m, stats, nil
}

// whyEmpty says why a build has no rows, from its counts.
func whyEmpty(s *Stats) string {
	d := &s.Doc
	if d.Records == 0 {
		msg := "its inputs hold no records"
		if d.TruncatedIn > 0 {
			msg += fmt.Sprintf(" that could be read (%d damaged inputs)", d.TruncatedIn)
		}
		return msg
	}
	var parts []string
	if n := d.Reasons[Blank]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d blank", n))
	}
	for r := BadJSON; r < InvalidUTF8; r++ {
		if n := d.Reasons[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d skipped as %s", n, r))
		}
	}
	msg := fmt.Sprintf("%d records read, %d became documents", d.Records, d.Documents)
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	if d.TruncatedIn > 0 {
		msg += fmt.Sprintf("; %d inputs were damaged", d.TruncatedIn)
	}
	return msg
}

// RunTaskOnce runs task t of plan unless its record says it is complete,
// continuing after the last shard of an incomplete record. It is what
// `glmprep run-task` does, and safe to repeat.
func RunTaskOnce(ctx context.Context, plan *Plan, env *Env, t Task) (*TaskRecord, error) {
	if err := sameSoftware(plan, env.Dir, env.Software, "run its tasks"); err != nil {
		return nil, err
	}
	prev, err := prevRecord(env.Dir, plan, t.Index, env.Warn)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Complete {
		return prev, nil
	}
	if _, err := cleanTemps(env.Dir); err != nil {
		return nil, err
	}
	return runTask(ctx, plan, env, t, prev, env.workers())
}
