package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/parquettext"
)

// --max-records N builds the first N records of the inputs, in input order
// (a record being a line, a blank-separated block, a file, a JSON object
// or a Parquet row, as the stats count them). The plan finds them: it
// counts the records of the inputs in order until N, keeps only the inputs
// it needs, and gives the task where the N-th record falls a record limit
// (Task.MaxRecords); such inputs are not split into byte ranges. So every
// task still runs on its own (run-task), and a limited build is a prefix
// of the unlimited one's records.

// limitInputs returns the inputs that hold the first n records and how
// many records of the last one are taken (-1: all of it).
func limitInputs(ctx context.Context, inputs []Input, cfg Config, n int64, dir string) ([]Input, int64, error) {
	for _, in := range inputs {
		if in.Path == Stdin && len(inputs) > 1 {
			return nil, 0, errors.New("pipeline: --max-records with standard input among other inputs: the records of stdin cannot be counted ahead; give stdin alone")
		}
	}
	if len(inputs) == 1 && inputs[0].Path == Stdin {
		return inputs, n, nil
	}
	left := n
	for i, in := range inputs {
		c, err := countRecords(ctx, in, cfg, left, dir)
		if err != nil {
			return nil, 0, err
		}
		if c >= left {
			return inputs[:i+1], left, nil
		}
		left -= c
	}
	return inputs, -1, nil // fewer than n records in all
}

// countRecords counts the records of an input, up to max.
func countRecords(ctx context.Context, in Input, cfg Config, max int64, dir string) (int64, error) {
	if in.Format == "parquet" {
		f, err := parquettext.Open(in.Path, cfg.TextField)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		var n int64
		for rg := range f.RowGroups() {
			n += f.Rows(rg)
		}
		return n, nil
	}
	r, err := openRecords(ctx, nil, in, cfg, Task{Input: -1, End: -1, Line: 1}, ResumePoint{Line: 1}, dir, nil, nil)
	if err != nil {
		return 0, err
	}
	defer r.close()
	var n int64
	var arena []byte
	for n < max {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var err error
		_, arena, err = r.next(arena[:0])
		if err == errEnd {
			break
		}
		if err != nil {
			return n, fmt.Errorf("pipeline: counting the records of %s for --max-records: %w", in.Path, err)
		}
		n++
	}
	return n, nil
}

// limitTasks applies the record limit of the last input (take records,
// -1 for all) to its tasks: a Parquet input's row groups up to the one
// where the limit falls, which gets the rest as its limit; another input's
// one task.
func limitTasks(p *Plan, take int64) error {
	if take < 0 || len(p.Inputs) == 0 {
		return nil
	}
	last := len(p.Inputs) - 1
	var kept []Task
	for _, t := range p.Tasks {
		if t.Input != last {
			kept = append(kept, t)
			continue
		}
		if take <= 0 {
			continue
		}
		rows := int64(-1)
		if p.Inputs[last].Format == "parquet" {
			f, err := parquettext.Open(p.Inputs[last].Path, p.Config.TextField)
			if err != nil {
				return err
			}
			rows = f.Rows(int(t.Start))
			f.Close()
		}
		if rows < 0 || rows > take {
			t.MaxRecords = take
			take = 0
		} else {
			take -= rows
		}
		t.Index = len(kept)
		kept = append(kept, t)
	}
	p.Tasks = kept
	return nil
}

// limitRecords stops a task's records after its record limit.
type limitRecords struct {
	records
	left int64
}

func (l *limitRecords) next(arena []byte) (record, []byte, error) {
	if l.left <= 0 {
		return record{}, arena, errEnd
	}
	rec, arena, err := l.records.next(arena)
	if err == nil {
		l.left--
	}
	return rec, arena, err
}

// splitRecords gives a --valid-fraction build the records of its split:
// a record whose split key is below the fraction is in the valid split,
// every other one in the train split, and a record of the other split
// passes as HeldOut (counted, not read). The key is a hash of the input's
// content (its sha256; "stdin" for standard input) and the record's
// position in it (its byte offset in the decompressed input; a Parquet
// row's number), so the split is the same for any --workers, --task-bytes,
// resume or path of the input, and each record is in exactly one split.
type splitRecords struct {
	records
	seed    uint64
	parquet bool
	valid   bool
	cut     uint64 // keys below it are valid
}

func newSplitRecords(r records, in Input, cfg Config) *splitRecords {
	id := in.SHA256
	if in.Path == Stdin {
		id = "stdin"
	}
	h := uint64(0xcbf29ce484222325) // FNV-1a of the input's identity
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 0x100000001b3
	}
	return &splitRecords{records: r, seed: h, parquet: in.Format == "parquet", valid: cfg.Split == "valid",
		cut: uint64(cfg.ValidFraction * (1 << 53))}
}

func (s *splitRecords) next(arena []byte) (record, []byte, error) {
	rec, arena, err := s.records.next(arena)
	if err != nil {
		return rec, arena, err
	}
	pos := uint64(rec.off)
	if s.parquet {
		pos = uint64(rec.line)
	}
	if inValid := splitKey(s.seed, pos) < s.cut; inValid != s.valid {
		arena = arena[:rec.start]
		rec.end, rec.reason, rec.detail, rec.repair = rec.start, HeldOut, "", 0
	}
	return rec, arena, nil
}

// splitKey is a uniform 53-bit key of a record (splitmix64's finaliser).
func splitKey(seed, pos uint64) uint64 {
	return masking.Mix64(seed^(pos+1)*0x9e3779b97f4a7c15) >> 11
}
