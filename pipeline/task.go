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
	"runtime/debug"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/internal/testhooks"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

// Encoder turns text into token ids, appending to dst. One Encoder is used
// by one goroutine at a time. Literal special-token strings in text are
// plain text.
type Encoder interface {
	Encode(dst []int32, text []byte) ([]int32, error)
}

// A SentenceEncoder is an Encoder that also finds a token sequence's
// sentence ends by position, as tokenizer.Encoder does: with a byte-level
// BPE a sentence-end character such as "？" may be spelt by several tokens,
// none of which ends a sentence by its id. NewEnv uses it, when its
// encoders have it, for the sentence objective and the cuts of long
// documents.
type SentenceEncoder interface {
	Encoder
	SentenceEndsOf(ids []int32, dst []bool) []bool
}

// TaskRecord is the progress of one task. While the task runs, it is
// DIR/tasks/NNNNNN.progress.json, rewritten atomically after every shard
// the task commits; once the task is done it is DIR/tasks/NNNNNN.json, with
// Complete set. An incomplete record never replaces a complete one, so two
// runs of one task at once (a retried Slurm or Kubernetes task on a shared
// filesystem) end with one complete result: both write the same bytes.
type TaskRecord struct {
	Task     int                  `json:"task"`
	Complete bool                 `json:"complete"`
	Input    *Input               `json:"input,omitempty"` // stdin only: its size and sha256, known once read
	Shards   []sharding.ShardFile `json:"shards"`
	Resume   ResumePoint          `json:"resume"` // where the task continues after its last shard
	Stats    Stats                `json:"stats"`
	// ReadSHA256 is the sha256 of the raw input bytes the task read (the
	// range of Task.SHA256, or the whole input); merge checks it against
	// the plan.
	ReadSHA256 string `json:"input_sha256,omitempty"`
	// Plan is the digest of the plan the task ran under (records written
	// before it have none).
	Plan string `json:"plan_sha256,omitempty"`
}

// tasksDir is the folder of task records inside a build directory.
const tasksDir = "tasks"

func recordPath(dir string, task int) string {
	return filepath.Join(dir, tasksDir, fmt.Sprintf("%06d.json", task))
}

func progressPath(dir string, task int) string {
	return filepath.Join(dir, tasksDir, fmt.Sprintf("%06d.progress.json", task))
}

// ProgressUpdated returns when the progress record of an incomplete task
// was last written (the zero time when it has none): glmprep status says
// how long ago a running or interrupted task recorded progress.
func ProgressUpdated(dir string, task int) time.Time {
	if st, err := os.Lstat(progressPath(dir, task)); err == nil {
		return st.ModTime()
	}
	return time.Time{}
}

// shardName is the file name of part `part` of task `task`.
func shardName(task, part int) string { return fmt.Sprintf("shard-%06d-%04d.arrow", task, part) }

// ReadTaskRecord reads a task's record: the complete one if there is one,
// else its progress; nil, nil when there is neither. The record is checked
// on its own (see readTaskRecord for the check against a plan).
func ReadTaskRecord(dir string, task int) (*TaskRecord, error) {
	return readTaskRecord(dir, nil, task)
}

// readTaskRecord reads and checks a task's record against plan (when not
// nil).
func readTaskRecord(dir string, plan *Plan, task int) (*TaskRecord, error) {
	for _, p := range []string{recordPath(dir, task), progressPath(dir, task)} {
		b, err := readOwnFile(p, maxRecordBytes)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r, err := parseTaskRecord(p, b, plan, task, p == recordPath(dir, task))
		if err != nil {
			return nil, &badRecordError{path: p, err: err}
		}
		return r, nil
	}
	return nil, nil
}

// badRecordError is a task record that does not read: damaged, edited, or
// written under another plan. Running the task again replaces it.
type badRecordError struct {
	path string
	err  error
}

func (e *badRecordError) Error() string { return e.err.Error() }
func (e *badRecordError) Unwrap() error { return e.err }

// prevRecord is readTaskRecord for a run of the task: a record that does
// not read is reported through warn, removed, and the task runs again
// from its start (its output depends only on the plan and the task).
func prevRecord(dir string, plan *Plan, task int, warn func(string)) (*TaskRecord, error) {
	for {
		// Each turn removes a record (the complete one, then the
		// progress record behind it), so the loop ends.
		prev, err := readTaskRecord(dir, plan, task)
		var bad *badRecordError
		if !errors.As(err, &bad) {
			return prev, err
		}
		if err := os.Remove(bad.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (and removing it to run the task again failed: %v)", bad, err)
		}
		if warn != nil {
			warn(fmt.Sprintf("%v; removed it: task %d runs again from its start", bad, task))
		}
	}
}

// maxRecordBytes bounds the plan and task records glmkit reads back.
const maxRecordBytes = 1 << 30

// readOwnFile reads a file glmkit wrote into a build directory: a regular
// file (not a link, which could lead out of the directory) of at most max
// bytes.
func readOwnFile(path string, max int64) ([]byte, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pipeline: %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if st.Size() > max {
		return nil, fmt.Errorf("pipeline: %s: %d bytes is too big for a glmkit record", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return b, nil
}

// errTaskDone means another run of the task completed it meanwhile.
var errTaskDone = errors.New("pipeline: the task was completed by another run")

func writeTaskRecord(dir string, r *TaskRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, tasksDir), 0o777); err != nil {
		return err
	}
	b = append(b, '\n')
	if r.Complete {
		if err := atomicfile.Write(recordPath(dir, r.Task), b); err != nil {
			return err
		}
		os.Remove(progressPath(dir, r.Task))
		return nil
	}
	if _, err := os.Stat(recordPath(dir, r.Task)); err == nil {
		return errTaskDone
	}
	return atomicfile.Write(progressPath(dir, r.Task), b)
}

// inputError is a bad record under --strict.
type inputError struct {
	Path   string
	Line   int64
	Reason Reason
	Detail string
}

func (e *inputError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.Path, e.Line, e.Reason, e.Detail)
}

// Env is what running a task needs besides the plan.
type Env struct {
	Dir        string          // the build directory
	Masker     *masking.Masker // built from the plan's Meta.Masking
	NewEncoder func() Encoder
	Workers    int               // tokenizing and masking goroutines; < 1: GOMAXPROCS
	Strict     bool              // bad records are fatal, not counted skips
	Warn       func(msg string)  // reports the first few bad records of each kind
	Progress   func(n int64)     // raw input bytes read
	Software   map[string]string // this binary (BuildOptions.Software): RunTaskOnce runs a task only for the plan's binary
	open       opener            // nil: os.Open

	mu       sync.Mutex
	warned   [numReasons]int
	big      int   // jobs holding big records, in flight
	bigBytes int64 // their big records' bytes
	memOld   int64 // the memory limit before the first of them
}

// While big records are in memory the Go runtime gets a soft memory
// limit of twice their size plus bigSlack: the heap then stays close to
// what is live (the text and its ids) instead of growing to twice that,
// Go's default, and the GC runs only as often as that needs.
const bigSlack = 64 << 20

// holdBig and dropBig bracket the life of a job that holds big records of
// n bytes.
func (env *Env) holdBig(n int) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.big == 0 {
		env.memOld = debug.SetMemoryLimit(-1)
	}
	env.big++
	env.bigBytes += int64(n)
	debug.SetMemoryLimit(min(env.memOld, 2*env.bigBytes+bigSlack))
}

// dropBigs ends the life of jobs jobs that held n bytes of big records
// together (one job, or the jobs of a task that stopped before it emitted
// them).
func (env *Env) dropBigs(jobs int, n int64) {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.big == 0 || jobs == 0 {
		return
	}
	env.big = max(0, env.big-jobs)
	env.bigBytes -= n
	if env.big == 0 {
		env.bigBytes = 0
		debug.SetMemoryLimit(env.memOld)
		return
	}
	debug.SetMemoryLimit(min(env.memOld, 2*env.bigBytes+bigSlack))
}

const warnPerReason = 5

func (env *Env) report(path string, rc *record, reason Reason, detail string) error {
	if env.Strict {
		return &inputError{Path: path, Line: rc.line, Reason: reason, Detail: detail}
	}
	if env.Warn == nil {
		return nil
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	env.warned[reason]++
	switch n := env.warned[reason]; {
	case n <= warnPerReason:
		env.Warn(fmt.Sprintf("%s:%d: %s: %s (counted in the stats; --strict makes this fatal)", path, rc.line, reason, detail))
	case n == warnPerReason+1:
		env.Warn(fmt.Sprintf("more %s records; not reporting each (see glmprep stats)", reason))
	}
	return nil
}

const (
	repairUTF8Bit = 1 << 0
	repairNULBit  = 1 << 1
	repairDupBit  = 1 << 2 // a field given twice (rc.detail says which)
	repairSurrBit = 1 << 3 // a JSON escape of a lone surrogate, decoded as U+FFFD (counted as invalid_utf8)

	jobBytes      = 1 << 20 // text per tokenization job
	jobRecords    = 8192
	samplesPerJob = 64
)

type tokJob struct {
	big  int // bytes of its records of at least bigRecord bytes
	text []byte
	recs []record
	ids  []int32
	fix  []byte // repaired text
	join []byte // several text fields joined
}

type maskJob struct {
	tokens  []int32
	samples []packed
	rows    []masking.Sample
	final   *DocStats // set on the last job of a task
	damage  []Damage  // the last job: where the input turned out damaged
	readSum string    // the last job: sha256 of the raw bytes read
}

// recycle empties a written job for the next, keeping its buffers.
func (j *maskJob) recycle() {
	*j = maskJob{tokens: j.tokens[:0], samples: j.samples[:0], rows: j.rows[:0]}
}

// runTask runs one task of plan, resuming after prev's shards when prev is
// an incomplete record of an earlier run. It writes the task's shards and
// record into env.Dir and returns the final record.
//
// It runs in two stages: the first, on its own goroutine, reads the
// records, tokenizes them on the workers and packs them into samples in
// order (tokenize); the second, on this goroutine, masks the samples on the
// workers and writes them in order (a taskWriter).
func runTask(ctx context.Context, plan *Plan, env *Env, t Task, prev *TaskRecord, workers int) (*TaskRecord, error) {
	in := plan.Inputs[t.Input]
	rec, rp, err := resumeRecord(env.Dir, in, t, prev)
	if err != nil {
		return nil, err
	}
	rec.Plan = plan.digest
	r, err := openRecords(ctx, env.open, in, plan.Config, t, rp, env.Dir, env.Progress, env.Warn)
	if err != nil {
		return nil, err
	}
	defer r.close()
	if t.MaxRecords > 0 {
		r = &limitRecords{records: r, left: t.MaxRecords - rp.Record}
	}
	if plan.Config.Split != "" {
		r = newSplitRecords(r, in, plan.Config)
	}
	tw, err := newTaskWriter(env.Dir, plan, rec)
	if err != nil {
		return nil, err
	}
	defer tw.w.Close()

	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan *maskJob, 2)
	// Jobs go round: once a job's rows are written, its buffers (tokens,
	// samples and the rows' columns) carry the next one.
	jobs := &sync.Pool{New: func() any { return new(maskJob) }}
	var err1 error
	done1 := make(chan struct{})
	go func() {
		defer close(done1)
		defer close(ch)
		if err1 = env.tokenize(tctx, plan, r, in, rp, rec, ch, jobs, workers); err1 != nil {
			cancel()
		}
	}()
	receive := func(ctx context.Context) (*maskJob, bool, error) {
		select {
		case j, ok := <-ch:
			return j, ok, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	err2 := mapOrdered(tctx, workers, receive, env.masker(plan, in.Path), func(j *maskJob) error {
		if err := tw.write(j, r); err != nil {
			return err
		}
		j.recycle()
		jobs.Put(j)
		return nil
	})
	if err2 != nil {
		cancel()
	}
	<-done1
	if errors.Is(err2, errTaskDone) {
		return ReadTaskRecord(env.Dir, t.Index)
	}
	switch {
	case err1 != nil && !errors.Is(err1, context.Canceled):
		return nil, err1
	case err2 != nil:
		return nil, err2
	case err1 != nil:
		return nil, err1
	case !rec.Complete:
		return nil, fmt.Errorf("pipeline: task %d ended without its last batch", t.Index)
	}
	return rec, nil
}

// workers is the number of tokenizing and masking goroutines.
func (env *Env) workers() int {
	if env.Workers < 1 {
		return runtime.GOMAXPROCS(0)
	}
	return env.Workers
}

// resumeRecord starts the record of task t: empty, or when prev is an
// incomplete record whose shards are all there, prev's shards and counts,
// with the point where the task continues.
func resumeRecord(dir string, in Input, t Task, prev *TaskRecord) (*TaskRecord, ResumePoint, error) {
	rec := &TaskRecord{Task: t.Index, Shards: []sharding.ShardFile{}}
	rp := ResumePoint{Record: 0, Line: t.Line, Offset: t.Start}
	if prev == nil || prev.Complete || len(prev.Shards) == 0 {
		return rec, rp, nil
	}
	if in.Path == Stdin {
		return nil, rp, errors.New("pipeline: a build from stdin cannot be resumed; run it again")
	}
	for _, sf := range prev.Shards {
		st, err := os.Lstat(filepath.Join(dir, sf.Name))
		if err != nil || !st.Mode().IsRegular() || st.Size() != sf.Bytes {
			return rec, rp, nil // a shard is missing or damaged: redo the task
		}
	}
	rec.Shards = append(rec.Shards, prev.Shards...)
	rec.Stats = prev.Stats
	return rec, prev.Resume, nil
}

// masker returns stage 2's work on the workers: mask every sample of a job
// mask_epochs times and validate each row.
func (env *Env) masker(plan *Plan, path string) func(*maskJob) (*maskJob, error) {
	meta, epochs := plan.Meta, plan.Meta.MaskEpochs
	return func(j *maskJob) (*maskJob, error) {
		j.rows = growSamples(j.rows, len(j.samples)*epochs)
		for i, sp := range j.samples {
			for e := range epochs {
				s := &j.rows[i*epochs+e]
				if err := env.Masker.MaskTo(s, sp.key, uint32(e), j.tokens[sp.start:sp.end]); err != nil {
					return nil, fmt.Errorf("pipeline: %s: masking sample %d: %w", path, sampleOf(sp.key), err)
				}
				if err := s.Validate(meta.Special, meta.Masking.TaskMask); err != nil {
					return nil, fmt.Errorf("pipeline: %s: sample %d: %w", path, sampleOf(sp.key), err)
				}
			}
		}
		return j, nil
	}
}

// sampleOf is a sample's index within its task.
func sampleOf(key uint64) uint64 {
	_, i := SplitKey(key)
	return i
}

// A taskWriter is the end of a task: it writes the masked rows into
// shards, in order, commits each shard with the task's progress record
// when it is full, and writes the complete record after the last.
type taskWriter struct {
	dir    string
	cfg    Config
	epochs int // rows per sample
	w      *sharding.Writer
	rec    *TaskRecord
	rows   RowStats // of every row written, the resumed shards' included
}

func newTaskWriter(dir string, plan *Plan, rec *TaskRecord) (*taskWriter, error) {
	w, err := sharding.Create(dir, sharding.Options{Meta: plan.Meta, Compression: plan.Config.Compression})
	if err != nil {
		return nil, err
	}
	tw := &taskWriter{dir: dir, cfg: plan.Config, epochs: plan.Meta.MaskEpochs, w: w, rec: rec, rows: rec.Stats.Row}
	tw.rows.SpanLen = append([]int64(nil), tw.rows.SpanLen...)
	return tw, nil
}

// write writes a job's rows, committing a shard whenever one is full (at
// a sample boundary), and finishes the task after its last job.
func (tw *taskWriter) write(j *maskJob, r records) error {
	for i, sp := range j.samples {
		for e := range tw.epochs {
			s := &j.rows[i*tw.epochs+e]
			if err := tw.w.Write(s, sp.docID); err != nil {
				return err
			}
			tw.rows.add(s)
		}
		n, b := tw.w.Pending()
		if (tw.cfg.ShardRows > 0 && n >= tw.cfg.ShardRows) || (tw.cfg.ShardBytes > 0 && b >= tw.cfg.ShardBytes) {
			if err := tw.commit(sp.next, sp.counts); err != nil {
				return err
			}
		}
	}
	if j.final != nil {
		return tw.finish(j, r)
	}
	return nil
}

// commitShard finishes the shard being filled. Its progress record is
// written by the caller: after the last shard, the record is the complete
// one, so a crash in between can never leave progress that points nowhere.
func (tw *taskWriter) commitShard() error {
	task, part := tw.rec.Task, len(tw.rec.Shards)
	testhooks.Crash("shard-written", task, part)
	sf, err := tw.w.Commit(shardName(task, part))
	if err != nil {
		return err
	}
	testhooks.Crash("shard-committed", task, part)
	tw.rec.Shards = append(tw.rec.Shards, sf)
	return nil
}

// commit commits the shard and the progress record that says the task
// continues at next, with counts up to there.
func (tw *taskWriter) commit(next ResumePoint, counts DocStats) error {
	if err := tw.commitShard(); err != nil {
		return err
	}
	tw.rec.Resume = next
	tw.rec.Stats = Stats{Doc: counts, Row: tw.rows}
	if err := writeTaskRecord(tw.dir, tw.rec); err != nil {
		if errors.Is(err, errTaskDone) {
			return err
		}
		return fmt.Errorf("pipeline: writing task record: %w", err)
	}
	testhooks.Crash("record-written", tw.rec.Task, len(tw.rec.Shards)-1)
	testhooks.CommitDelay()
	return nil
}

// finish commits the last shard and writes the complete record, with the
// task's final counts from its last job.
func (tw *taskWriter) finish(j *maskJob, r records) error {
	if n, _ := tw.w.Pending(); n > 0 {
		if err := tw.commitShard(); err != nil {
			return err
		}
	}
	rec := tw.rec
	rec.Complete = true
	rec.Resume = ResumePoint{}
	rec.Stats = Stats{Doc: *j.final, Row: tw.rows, Damage: j.damage}
	rec.Input = r.stdin()
	rec.ReadSHA256 = j.readSum
	if err := writeTaskRecord(tw.dir, rec); err != nil {
		return fmt.Errorf("pipeline: writing task record: %w", err)
	}
	return nil
}

// expectedSum is the sha256 of the raw bytes task t must read: its range's,
// or its whole input's ("" for stdin).
func expectedSum(plan *Plan, t int) string {
	task := plan.Tasks[t]
	if task.SHA256 != "" {
		return task.SHA256
	}
	return plan.Inputs[task.Input].SHA256
}

func growSamples(s []masking.Sample, n int) []masking.Sample {
	if cap(s) < n {
		s = append(s[:cap(s)], make([]masking.Sample, n-cap(s))...)
	}
	return s[:n]
}

// tokenize is stage 1 of a task: it reads records, tokenizes them on
// the env's workers, packs them into samples in order and sends batches
// of samples on ch, the last one with the task's final counts.
func (env *Env) tokenize(ctx context.Context, plan *Plan, r records, in Input, rp ResumePoint, rec *TaskRecord, ch chan<- *maskJob, free *sync.Pool, workers int) error {
	tr := &taskReader{env: env, r: r, path: in.Path, ch: ch, cur: free.Get().(*maskJob), free: free,
		encoders: make(chan Encoder, workers),
		jobs:     sync.Pool{New: func() any { return new(tokJob) }}}
	for range workers {
		tr.encoders <- env.NewEncoder()
	}
	meta := plan.Meta
	tr.p = &packer{
		seqLen: meta.SeqLen, cls: meta.Special.CLS, eos: meta.Special.EOS,
		ends: env.Masker.SentenceEnds, task: uint64(rec.Task),
		sample: rp.Sample, counts: rec.Stats.Doc, skipTok: rp.Token,
		flush: func(s packed, tokens []int32) error { return tr.add(ctx, s, tokens) },
	}
	defer func() { env.dropBigs(tr.big.jobs, tr.big.bytes) }() // jobs a stopped stage never emitted
	fields := plan.Config.textFields()
	jsonl := r.format() == "jsonl" || r.format() == "json"
	strs := r.format() == "json" // a JSON document's records may be strings
	encode := func(j *tokJob) (*tokJob, error) {
		enc := <-tr.encoders
		defer func() { tr.encoders <- enc }()
		encodeJob(j, enc, jsonl, strs, fields)
		return j, nil
	}
	if err := mapOrdered(ctx, workers, tr.read, encode, tr.pack); err != nil {
		return err
	}
	return tr.finish(ctx, plan, rec.Task)
}

// A taskReader is stage 1 of a task: it reads the records into jobs for
// the workers to tokenize, and packs what they tokenized, in order, into
// the samples it sends on ch, a maskJob at a time.
type taskReader struct {
	env      *Env
	r        records
	path     string // the input's
	encoders chan Encoder
	jobs     sync.Pool // of *tokJob
	p        *packer
	cur      *maskJob // being filled
	ch       chan<- *maskJob
	free     *sync.Pool // of *maskJob, emptied by recycle

	big struct { // this task's jobs that hold big records, alive (see holdBig)
		sync.Mutex
		jobs  int
		bytes int64
	}
}

// holdBig and dropBig count a job's big records against the Env's memory
// limit, and in the task's own tally.
func (tr *taskReader) holdBig(n int) {
	tr.big.Lock()
	tr.big.jobs, tr.big.bytes = tr.big.jobs+1, tr.big.bytes+int64(n)
	tr.big.Unlock()
	tr.env.holdBig(n)
}

func (tr *taskReader) dropBig(n int) {
	tr.big.Lock()
	tr.big.jobs, tr.big.bytes = tr.big.jobs-1, tr.big.bytes-int64(n)
	tr.big.Unlock()
	tr.env.dropBigs(1, int64(n))
}

// read fills a job with the next records, up to jobBytes or jobRecords.
func (tr *taskReader) read(context.Context) (*tokJob, bool, error) {
	j := tr.jobs.Get().(*tokJob)
	j.text, j.recs = j.text[:0], j.recs[:0]
	for len(j.text) < jobBytes && len(j.recs) < jobRecords {
		rc, arena, err := tr.r.next(j.text)
		j.text = arena
		if err == errEnd {
			break
		}
		if err != nil {
			tr.jobs.Put(j)
			return nil, false, err
		}
		j.recs = append(j.recs, rc)
		if n := rc.end - rc.start; n >= bigRecord {
			if j.big > 0 {
				tr.dropBig(j.big)
			}
			j.big += n
			tr.holdBig(j.big)
		}
	}
	if len(j.recs) == 0 {
		tr.jobs.Put(j)
		return nil, false, nil
	}
	return j, true, nil
}

// pack reports a tokenized job's bad and repaired records and packs its
// records, in order.
func (tr *taskReader) pack(j *tokJob) error {
	defer func() {
		if j.big > 0 {
			// Left to the GC, not kept for reuse.
			tr.dropBig(j.big)
			j.big = 0
			return
		}
		tr.jobs.Put(j)
	}()
	for i := range j.recs {
		rc := &j.recs[i]
		if err := tr.reportRecord(rc); err != nil {
			return err
		}
		if err := tr.p.add(rc, j.ids[rc.ids[0]:rc.ids[1]]); err != nil {
			return err
		}
	}
	return nil
}

// reportRecord reports a record's bad input and repairs (see Env.report).
func (tr *taskReader) reportRecord(rc *record) error {
	env := tr.env
	// A Truncated record is where an input turned out damaged: finish
	// reports the damage once, with what was kept.
	if rc.reason != OK && rc.reason != Blank && rc.reason != HeldOut && rc.reason != Truncated {
		if err := env.report(tr.path, rc, rc.reason, rc.detail); err != nil {
			return err
		}
	}
	switch {
	case rc.repair&repairUTF8Bit != 0:
		if err := env.report(tr.path, rc, InvalidUTF8, "invalid UTF-8 replaced by U+FFFD"); err != nil {
			return err
		}
	case rc.repair&repairSurrBit != 0:
		if err := env.report(tr.path, rc, InvalidUTF8, "a JSON escape of a lone surrogate (\\ud800 to \\udfff, which UTF-8 cannot hold) decoded as U+FFFD"); err != nil {
			return err
		}
	}
	if rc.repair&repairNULBit != 0 {
		if err := env.report(tr.path, rc, NULBytes, "NUL bytes removed"); err != nil {
			return err
		}
	}
	if rc.repair&repairDupBit != 0 {
		detail := rc.detail
		if rc.reason != OK && rc.reason != Blank { // the detail is now the later failure's
			detail = "a field of the record is given twice; the last value is used, as Python's json does"
		}
		return env.report(tr.path, rc, DuplicateField, detail)
	}
	return nil
}

// add takes one packed sample into the maskJob being filled, and sends
// the job when it holds samplesPerJob.
func (tr *taskReader) add(ctx context.Context, s packed, tokens []int32) error {
	cur := tr.cur
	s.start = len(cur.tokens)
	cur.tokens = append(cur.tokens, tokens...)
	s.end = len(cur.tokens)
	cur.samples = append(cur.samples, s)
	if len(cur.samples) >= samplesPerJob {
		return tr.send(ctx)
	}
	return nil
}

func (tr *taskReader) send(ctx context.Context) error {
	select {
	case tr.ch <- tr.cur:
		tr.cur = tr.free.Get().(*maskJob)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish packs the last sample, notes where the input turned out damaged,
// checks the hash of the bytes read against the plan's, and sends the
// last job with the task's final counts.
func (tr *taskReader) finish(ctx context.Context, plan *Plan, task int) error {
	p := tr.p
	if err := p.emitAt(ResumePoint{}); err != nil {
		return err
	}
	cur := tr.cur // after the last sample (which may have sent a job)
	if d := tr.r.damage(); d != nil {
		p.counts.TruncatedIn++
		cur.damage = []Damage{*d}
		if err := tr.env.report(tr.path, &record{line: d.Line}, Truncated, damageNote(d, plan.Inputs[plan.Tasks[task].Input].Compression)); err != nil {
			return err
		}
	}
	sum, err := tr.r.finish()
	if err != nil {
		return err
	}
	if want := expectedSum(plan, task); want != "" && sum != want {
		return fmt.Errorf("pipeline: %s: the bytes task %d read have sha256 %.16s…, the plan hashed %.16s…: the input changed after it was planned (plan the build again)", tr.path, task, sum, want)
	}
	cur.readSum = sum
	final := p.counts
	cur.final = &final
	return tr.send(ctx)
}

// damageNote is the warning's account of damage d of an input of the
// given compression: what is kept. When the damaged frame or member is the
// input's first, that is nothing, and the note says how to get at what is
// left by hand.
func damageNote(d *Damage, compression string) string {
	if d.Offset == 0 && compression != "none" {
		return fmt.Sprintf("%s; it is the input's first, so nothing of the input is kept: a frame's records are used only once its checksum vouches for them (%s -dc writes out what is left, unchecked)", d.Detail, compression)
	}
	return d.Detail + "; the records before it are kept, nothing after it is read"
}

// encodeJob extracts, repairs and tokenizes every record of j.
func encodeJob(j *tokJob, enc Encoder, jsonl, strs bool, fields [][]string) {
	j.ids = j.ids[:0]
	for i := range j.recs {
		rc := &j.recs[i]
		rc.ids = [2]int{len(j.ids), len(j.ids)}
		if rc.reason != OK {
			continue
		}
		text := j.text[rc.start:rc.end]
		if jsonl {
			field, scratch, reason, repair, detail := recordText(text, fields, strs, j.join)
			j.join = scratch
			rc.detail = detail // OK: the field given twice, if one was
			if reason != OK {
				rc.reason = reason
				continue
			}
			rc.repair |= repair
			text = field
		}
		if !utf8.Valid(text) {
			j.fix, _ = tokenizer.RepairUTF8(j.fix[:0], text)
			text = j.fix
			rc.repair |= repairUTF8Bit
		}
		if bytes.IndexByte(text, 0) >= 0 {
			// In place: the text is the record's own (its arena bytes, the
			// decoded field over them, or the repaired copy).
			clean := text[:0]
			for _, c := range text {
				if c != 0 {
					clean = append(clean, c)
				}
			}
			text = clean
			rc.repair |= repairNULBit
		}
		if len(bytes.TrimSpace(text)) == 0 {
			rc.reason = Blank
			continue
		}
		rc.text = len(text)
		a := len(j.ids)
		if len(text) >= bigRecord {
			// Room for 5 bytes a token: growing by append would hold the
			// old and the new ids at once.
			j.ids = slices.Grow(j.ids, len(text)/5)
		}
		var err error
		j.ids, err = enc.Encode(j.ids, text)
		switch {
		case err != nil:
			rc.reason, rc.detail = TokenizerErr, err.Error()
			j.ids = j.ids[:a]
		case len(j.ids) == a:
			rc.reason = Blank
		}
		rc.ids = [2]int{a, len(j.ids)}
	}
}
