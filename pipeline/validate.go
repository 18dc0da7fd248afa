package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/glmkit/glmkit/internal/strictjson"
	"github.com/glmkit/glmkit/sharding"
)

// Everything glmkit reads back from a build directory (plan.json, task
// progress and complete records) may have been edited, truncated or
// written by something else. It is parsed strictly and checked before any
// of it is used: numbers in range, indices inside their tables, and every
// name it would write or remove derived from the plan, never taken from
// the file.

const (
	maxTasks   = 1 << 23 // task indices fit the 24 bits above a document id's 40
	maxInputs  = 1 << 23
	maxSeqLen  = 1 << 20
	maxVocab   = 1 << 24
	maxEpochs  = 1000
	maxShards  = 1 << 14 // shard parts per task: shardName has 4 digits
	maxDocSize = 1 << 40
)

func isHex64(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parsePlan parses and checks the bytes of a plan.json; path names it in
// errors.
func parsePlan(path string, b []byte) (*Plan, error) {
	var p Plan
	if err := strictjson.Decode(b, &p); err != nil {
		return nil, fmt.Errorf("pipeline: %s: not a glmkit plan: %w", path, err)
	}
	if p.FormatVersion != sharding.FormatVersion {
		return nil, fmt.Errorf("pipeline: %s: format version %d, this glmprep writes %d (plan the build again)", path, p.FormatVersion, sharding.FormatVersion)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", path, err)
	}
	if err := p.setDigest(); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", path, err)
	}
	return &p, nil
}

// check validates a plan read back.
func (p *Plan) check() error {
	if err := checkMeta(&p.Meta); err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	c := p.Config
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	switch c.Format {
	case "auto", "text", "jsonl", "json", "parquet":
	default:
		return fmt.Errorf("config: format %q", c.Format)
	}
	if c.MaxDocBytes > maxDocSize {
		return fmt.Errorf("config: max_doc_bytes %d is out of range", c.MaxDocBytes)
	}
	if len(p.Inputs) == 0 || len(p.Inputs) > maxInputs {
		return fmt.Errorf("%d inputs; want 1..%d", len(p.Inputs), maxInputs)
	}
	for i, in := range p.Inputs {
		if err := checkInput(in); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
	}
	if len(p.Tasks) > maxTasks {
		return fmt.Errorf("%d tasks; at most %d", len(p.Tasks), maxTasks)
	}
	return p.checkTasks()
}

// checkTasks checks that the tasks come in input order and tile each
// input: byte ranges from 0 to the end, or one task per Parquet row group,
// in order.
func (p *Plan) checkTasks() error {
	next := 0      // the input the next task may start
	cur := -1      // the input of the previous task
	var end int64  // where the previous task of input cur ends
	var line int64 // the previous task's first line
	closed := func() error {
		if cur >= 0 && p.Inputs[cur].Format != "parquet" && end != -1 {
			return fmt.Errorf("the tasks of input %d end at byte %d, not at its end", cur, end)
		}
		return nil
	}
	for i, t := range p.Tasks {
		if t.Index != i {
			return fmt.Errorf("task %d has index %d", i, t.Index)
		}
		if t.Input < 0 || t.Input >= len(p.Inputs) {
			return fmt.Errorf("task %d: input %d is not in the plan's %d inputs", i, t.Input, len(p.Inputs))
		}
		if t.MaxRecords < 0 {
			return fmt.Errorf("task %d: max_records %d", i, t.MaxRecords)
		}
		if t.SHA256 != "" && !isHex64(t.SHA256) {
			return fmt.Errorf("task %d: sha256 %q is not 64 hex digits", i, t.SHA256)
		}
		in := p.Inputs[t.Input]
		if t.Input != cur {
			if err := closed(); err != nil {
				return err
			}
			if t.Input < next {
				return fmt.Errorf("task %d: input %d out of order", i, t.Input)
			}
			for k := next; k < t.Input; k++ {
				if p.Inputs[k].Format != "parquet" {
					return fmt.Errorf("input %d has no task", k)
				}
			}
			cur, next, end, line = t.Input, t.Input+1, 0, 1
			if in.Format != "parquet" && t.Line != 1 {
				return fmt.Errorf("task %d: the first task of input %d starts at line %d", i, t.Input, t.Line)
			}
		} else if in.Format != "parquet" && t.Line <= line {
			return fmt.Errorf("task %d: first line %d after a task from line %d", i, t.Line, line)
		}
		if t.Line < line {
			return fmt.Errorf("task %d: first line %d after a task from line %d", i, t.Line, line)
		}
		if t.Start != end {
			return fmt.Errorf("task %d: starts at %d; the previous task of input %d ends at %d", i, t.Start, t.Input, end)
		}
		if err := t.checkRange(in); err != nil {
			return fmt.Errorf("task %d: %w", i, err)
		}
		end, line = t.End, t.Line
	}
	if err := closed(); err != nil {
		return err
	}
	for i := next; i < len(p.Inputs); i++ {
		if p.Inputs[i].Format != "parquet" {
			return fmt.Errorf("input %d has no task", i)
		}
	}
	return nil
}

// checkRange checks a task's range of its input: one row group of a
// Parquet file, or a byte range (or the rest, End -1) of an uncompressed
// file.
func (t Task) checkRange(in Input) error {
	if in.Format == "parquet" {
		if t.End != t.Start+1 || t.Start >= 1<<31 {
			return fmt.Errorf("row group range [%d, %d)", t.Start, t.End)
		}
		return nil
	}
	if t.End == -1 {
		return nil
	}
	if t.End <= t.Start || in.Size < 0 || t.End >= in.Size {
		return fmt.Errorf("byte range [%d, %d) of an input of %d bytes", t.Start, t.End, in.Size)
	}
	if in.Compression != "none" || in.Path == Stdin {
		return errors.New("a byte range of a compressed input or of stdin")
	}
	return nil
}

func checkMeta(m *sharding.Meta) error {
	switch {
	case m.FormatVersion != sharding.FormatVersion:
		return fmt.Errorf("format version %d", m.FormatVersion)
	case m.Tokenizer == "":
		return fmt.Errorf("no tokenizer")
	case !isHex64(m.TokenizerSHA256):
		return fmt.Errorf("tokenizer sha256 %q is not 64 hex digits", m.TokenizerSHA256)
	case m.VocabSize < 1 || m.VocabSize > maxVocab:
		return fmt.Errorf("vocab_size %d; want 1..%d", m.VocabSize, maxVocab)
	case m.SeqLen < 8 || m.SeqLen > maxSeqLen:
		return fmt.Errorf("seq_len %d; want 8..%d", m.SeqLen, maxSeqLen)
	case m.MaskEpochs < 1 || m.MaskEpochs > maxEpochs:
		return fmt.Errorf("mask_epochs %d; want 1..%d", m.MaskEpochs, maxEpochs)
	case m.Masking.IDs != m.Special:
		return fmt.Errorf("the masking ids differ from the special ids")
	}
	for name, id := range m.Special.All() {
		if id < 0 || int(id) >= m.VocabSize {
			return fmt.Errorf("special id %s = %d is outside the vocabulary of %d", name, id, m.VocabSize)
		}
	}
	mc := m.Masking
	mc.SentenceEnd = make([]bool, m.VocabSize) // the tokenizer's own table is checked when it is loaded
	if err := mc.Validate(); err != nil {
		return err
	}
	return nil
}

func checkInput(in Input) error {
	switch {
	case in.Path == "" || strings.IndexByte(in.Path, 0) >= 0:
		return fmt.Errorf("path %q", in.Path)
	case in.Path == Stdin && (in.Size != -1 || in.SHA256 != "" || in.ModTime != 0):
		return fmt.Errorf("stdin with a size, hash or time")
	case in.Path != Stdin && (in.Size < 0 || !isHex64(in.SHA256)):
		return fmt.Errorf("%s: size %d, sha256 %q", in.Path, in.Size, in.SHA256)
	}
	switch in.Format {
	case "text", "jsonl", "json", "parquet":
	default:
		return fmt.Errorf("%s: format %q", in.Path, in.Format)
	}
	switch in.Compression {
	case "none", "gzip", "zstd", "bzip2":
	default:
		return fmt.Errorf("%s: compression %q", in.Path, in.Compression)
	}
	if in.Format == "parquet" && (in.Compression != "none" || in.Path == Stdin) {
		return fmt.Errorf("%s: Parquet must be an uncompressed file", in.Path)
	}
	return nil
}

// parseTaskRecord parses and checks a task record file of task t of plan
// (plan may be nil: then only what the record says of itself is checked).
func parseTaskRecord(path string, b []byte, plan *Plan, task int, complete bool) (*TaskRecord, error) {
	var r TaskRecord
	if err := strictjson.Decode(b, &r); err != nil {
		return nil, fmt.Errorf("pipeline: %s: not a glmkit task record: %w", path, err)
	}
	if err := r.check(plan, task, complete); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", path, err)
	}
	return &r, nil
}

func (r *TaskRecord) check(plan *Plan, task int, complete bool) error {
	if r.Task != task || r.Complete != complete {
		return fmt.Errorf("holds task %d, complete %v; want task %d, complete %v", r.Task, r.Complete, task, complete)
	}
	if r.Shards == nil {
		return fmt.Errorf("no shard list")
	}
	if len(r.Shards) > maxShards {
		return fmt.Errorf("%d shards; at most %d", len(r.Shards), maxShards)
	}
	var rows int64
	for i, sf := range r.Shards {
		if sf.Name != shardName(task, i) {
			// Names are derived, never taken from the file: a record
			// cannot point glmkit at a file outside its build.
			return fmt.Errorf("shard %d is named %q; task %d's shard %d is %s", i, sf.Name, task, i, shardName(task, i))
		}
		// The counts, the sha256 and the record batch checksums are
		// checked as the manifest checks them.
		if err := sharding.CheckShardFile(&sf, sharding.FormatVersion); err != nil {
			return err
		}
		rows += sf.Rows
	}
	if err := r.Stats.check(); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if rows != r.Stats.Row.Rows {
		return fmt.Errorf("its shards hold %d rows, its stats say %d", rows, r.Stats.Row.Rows)
	}
	if r.ReadSHA256 != "" && !isHex64(r.ReadSHA256) {
		return fmt.Errorf("input_sha256 %q is not 64 hex digits", r.ReadSHA256)
	}
	rp := r.Resume
	if complete {
		if rp != (ResumePoint{}) {
			return fmt.Errorf("a complete record with a resume point")
		}
	} else if rp.Record < 0 || rp.Line < 1 || rp.Offset < 0 || rp.Token < 0 || rp.Sample < 0 || rp.Sample != r.Stats.Doc.Samples || rp.Record > r.Stats.Doc.Records {
		return fmt.Errorf("resume point %+v does not fit its counts (%d records, %d samples)", rp, r.Stats.Doc.Records, r.Stats.Doc.Samples)
	}
	if plan == nil {
		return nil
	}
	if task < 0 || task >= len(plan.Tasks) {
		return fmt.Errorf("task %d is not in the plan", task)
	}
	if r.Plan != "" && plan.digest != "" && r.Plan != plan.digest {
		return fmt.Errorf("written under another plan (plan sha256 %.16s…; this plan.json's is %.16s…): plan.json changed after the task ran, or the record is another build's", r.Plan, plan.digest)
	}
	t := plan.Tasks[task]
	in := plan.Inputs[t.Input]
	if r.Input != nil {
		if in.Path != Stdin || !complete || r.Input.Path != Stdin || r.Input.Size < 0 || !isHex64(r.Input.SHA256) {
			return fmt.Errorf("an input description %+v for input %s", *r.Input, in.Path)
		}
	} else if in.Path == Stdin && complete {
		return fmt.Errorf("no description of stdin")
	}
	if !complete && in.Format != "parquet" {
		end := t.End
		if end < 0 {
			end = 1<<63 - 1
			if in.Compression == "none" && in.Size >= 0 {
				end = in.Size
			}
		}
		if rp.Offset < t.Start || rp.Offset > end || rp.Line < t.Line {
			return fmt.Errorf("resume point at byte %d line %d is outside task %d's range [%d, %d) from line %d", rp.Offset, rp.Line, task, t.Start, t.End, t.Line)
		}
	}
	return nil
}

// check validates counts read back from a record: no field of fields
// negative or too long, the documents and skips within the records, the
// rows of each objective within the rows.
func (s *Stats) check() error {
	for _, f := range s.fields() {
		if err := f.v.check(); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	d, r := &s.Doc, &s.Row
	if left := d.Reasons[Blank] + s.Skipped(); d.Documents > d.Records || d.Documents+left > d.Records {
		return fmt.Errorf("%d documents and %d skipped of %d records", d.Documents, left, d.Records)
	}
	for _, o := range r.Objectives {
		if o.Rows > r.Rows {
			return fmt.Errorf("impossible objective counts")
		}
	}
	return nil
}
