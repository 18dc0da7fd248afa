package pipeline

import (
	"context"
	"fmt"

	"github.com/glmkit/glmkit/sharding/parquettext"
)

// records yields one task's records in order, on one goroutine.
type records interface {
	// next cuts the next record, appending its text to arena; errEnd at
	// the end of the task.
	next(arena []byte) (record, []byte, error)
	// inputErr is the error that ended the input early, if any, and the
	// line where it happened.
	inputErr() (error, int64)
	// stdin describes standard input once read (size and sha256); nil for
	// files, which the plan describes.
	stdin() *Input
	close() error
}

// openRecords opens the records of task t from rp on.
func openRecords(ctx context.Context, in Input, cfg Config, t Task, rp ResumePoint, progress func(int64)) (records, error) {
	if in.Format == "parquet" {
		f, err := parquettext.Open(in.Path, cfg.TextField)
		if err != nil {
			return nil, err
		}
		return &parquetRecords{ctx: ctx, f: f, rg: int(t.Start), skip: rp.Record, index: rp.Record,
			row: t.Line + rp.Record, maxDoc: cfg.MaxDocBytes, progress: progress}, nil
	}
	st, err := openStream(in, rp.Offset, t.End, progress)
	if err != nil {
		return nil, err
	}
	return &textRecords{
		reader: reader{
			cfg:   ReaderConfig{Format: in.Format, DocBoundary: cfg.DocBoundary, MaxDocBytes: cfg.MaxDocBytes},
			br:    st.Reader,
			index: rp.Record, line: rp.Line - 1, off: rp.Offset,
			bomChecked: rp.Offset != 0,
		},
		st: st, in: in,
	}, nil
}

// textRecords are the records of a plain text or JSON Lines input.
type textRecords struct {
	reader
	st *stream
	in Input
}

func (r *textRecords) inputErr() (error, int64) { return r.inErr, r.line }
func (r *textRecords) close() error             { return r.st.Close() }

func (r *textRecords) stdin() *Input {
	if r.st.hash == nil {
		return nil
	}
	return &Input{Path: r.in.Path, Size: r.st.raw, SHA256: fmt.Sprintf("%x", r.st.hash.Sum(nil)), Format: r.in.Format, Compression: r.in.Compression}
}

// parquetRecords are the rows of one row group of a Parquet input: a task
// is a row group, a record a row, and its "line" the row's 1-based number in
// the file.
type parquetRecords struct {
	ctx      context.Context
	f        *parquettext.File
	rg       int
	skip     int64 // rows of the row group already written (resume)
	index    int64 // of the next record within the task
	row      int64 // 1-based row number of the next record in the file
	maxDoc   int
	progress func(int64)

	loaded  bool
	text    []byte
	ends    []int
	reasons []Reason // OK, MissingField (null) or TooLong per row
	pos     int
	err     error
}

func (p *parquetRecords) load() error {
	p.loaded = true
	var i int64
	err := p.f.ReadRowGroup(p.ctx, p.rg, func(text []byte, null bool) error {
		if i >= p.skip {
			reason := OK
			switch {
			case null:
				reason = MissingField
			case len(text) > p.maxDoc:
				reason = TooLong
			default:
				p.text = append(p.text, text...)
			}
			p.ends = append(p.ends, len(p.text))
			p.reasons = append(p.reasons, reason)
		}
		i++
		return nil
	})
	if p.progress != nil {
		p.progress(p.f.RowGroupBytes(p.rg))
	}
	return err
}

func (p *parquetRecords) next(arena []byte) (record, []byte, error) {
	if !p.loaded {
		if err := p.load(); err != nil {
			p.err = err
		}
	}
	if p.pos >= len(p.ends) {
		return record{}, arena, errEnd
	}
	start := 0
	if p.pos > 0 {
		start = p.ends[p.pos-1]
	}
	rec := record{index: p.index, line: p.row, off: p.index, start: len(arena)}
	text := p.text[start:p.ends[p.pos]]
	switch rec.reason = p.reasons[p.pos]; rec.reason {
	case MissingField:
		rec.detail = "the text is null"
	case TooLong:
		rec.detail = fmt.Sprintf("record longer than --max-doc-bytes (%d)", p.maxDoc)
	default:
		arena = append(arena, text...)
	}
	rec.end = len(arena)
	p.pos++
	p.index++
	p.row++
	return rec, arena, nil
}

func (p *parquetRecords) inputErr() (error, int64) { return p.err, p.row }
func (p *parquetRecords) stdin() *Input            { return nil }
func (p *parquetRecords) close() error             { return p.f.Close() }
