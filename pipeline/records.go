package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/glmkit/glmkit/pipeline/parquettext"
)

// records yields one task's records in order, on one goroutine.
type records interface {
	// next cuts the next record, appending its text to arena; errEnd at
	// the end of the task, any other error stops the task (an I/O error:
	// nothing is bad data but what a decoder found bad).
	next(arena []byte) (record, []byte, error)
	// damage says where the input turned out damaged, if it did (the
	// records before were read, nothing after).
	damage() *Damage
	// finish is called after the last record: it reads what is left of
	// the task's raw bytes, checks the input did not change, and returns
	// the sha256 of the raw bytes read (see Task.SHA256).
	finish() (string, error)
	// stdin describes standard input once read (size, sha256, what it
	// was read as); nil for files, which the plan describes.
	stdin() *Input
	// format is how the records are read: "text", "jsonl" or "parquet"
	// (stdin's is found when it is opened).
	format() string
	close() error
}

// openRecords opens the records of task t from rp on. dir is the build
// directory (stdin's spool goes there).
func openRecords(ctx context.Context, open opener, in Input, cfg Config, t Task, rp ResumePoint, dir string, progress func(int64), warn func(string)) (records, error) {
	if in.Format == "parquet" {
		src, err := open.open(in.Path)
		if err != nil {
			return nil, fmt.Errorf("pipeline: input %w", err)
		}
		if err := checkUnchanged(src, in); err != nil {
			src.Close()
			return nil, err
		}
		f, err := parquettext.OpenSource(in.Path, &parquetSource{src, readerAt{ctx: ctx, path: in.Path, r: src}}, cfg.TextField)
		if err != nil {
			src.Close()
			return nil, err
		}
		if int(t.Start) >= f.RowGroups() {
			f.Close()
			return nil, fmt.Errorf("pipeline: %s has %d row groups; the plan's task %d reads row group %d (plan the build again)", in.Path, f.RowGroups(), t.Index, t.Start)
		}
		return &parquetRecords{ctx: ctx, in: in, f: f, src: src, rg: int(t.Start), skip: rp.Record, index: rp.Record,
			row: t.Line + rp.Record, first: t.Line, maxDoc: cfg.MaxDocBytes, progress: progress}, nil
	}
	offset := rp.Offset
	if in.Format == "json" {
		offset = 0 // a document is read again from its start (see jsonDoc)
	}
	st, err := openStream(ctx, open, in, t, offset, dir, progress)
	if err != nil {
		return nil, err
	}
	if in.Path == Stdin && offset == 0 {
		// The plan looked at each file's start (and a file that changed
		// since fails its hash check); stdin's is seen only now.
		head, _ := st.Reader.Peek(min(headBytes, st.Reader.Size()))
		if err := notUTF8(in.Path, head); err != nil {
			st.Close()
			return nil, err
		}
		if note := legacyNote(in.Path, head); note != "" && warn != nil {
			warn(note)
		}
	}
	format := in.Format
	if in.Path == Stdin && cfg.Format == "auto" {
		format = sniffStdinFormat(st.Reader, cfg.JSONPath != "", warn)
	}
	if in.Path == Stdin && offset == 0 {
		head, _ := st.Reader.Peek(min(headBytes, st.Reader.Size()))
		if err := crLines(in.Path, format, cfg.DocBoundary, head); err != nil {
			st.Close()
			return nil, err
		}
	}
	if format == "json" {
		tr := &textRecords{reader: reader{cfg: readerConfig{Format: "json", MaxDocBytes: cfg.MaxDocBytes}, br: st.Reader}, st: st, in: in}
		return &jsonDocRecords{textRecords: tr, doc: jsonDoc{br: st.Reader, path: splitPath(cfg.JSONPath), maxDoc: cfg.MaxDocBytes, skip: rp.Record}}, nil
	}
	return &textRecords{
		reader: reader{
			cfg:   readerConfig{Format: format, DocBoundary: cfg.DocBoundary, MaxDocBytes: cfg.MaxDocBytes},
			br:    st.Reader,
			index: rp.Record, line: rp.Line - 1, off: rp.Offset,
			bomChecked: rp.Offset != 0,
		},
		st: st, in: in,
	}, nil
}

// sniffStdinFormat decides how to read stdin under --format auto: JSON
// Lines when its first non-blank line is a JSON object, text otherwise,
// with a warning when it looks like JSON all the same.
func sniffStdinFormat(br *bufio.Reader, jsonPath bool, warn func(string)) string {
	head, _ := br.Peek(1 << 16)
	rest := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")
	if len(rest) == 0 || rest[0] != '{' && rest[0] != '[' {
		return "text"
	}
	if rest[0] == '[' || jsonPath {
		if warn != nil {
			warn("stdin: reading it as one JSON document (it starts with a list, or --json-path is given; --format text reads it as plain text)")
		}
		return "json"
	}
	line, _, complete := bytes.Cut(rest, []byte{'\n'})
	if rest[0] == '{' && (complete || len(head) < 1<<16) {
		if _, reason, _, _ := jsonText(nil, bytes.TrimRight(line, "\r"), []string{"\x00"}); reason != BadJSON {
			if warn != nil {
				warn("stdin: reading it as JSON Lines (its first line is a JSON object; --format text reads it as plain text)")
			}
			return "jsonl"
		}
	}
	if warn != nil {
		warn("stdin looks like JSON but its first line is not a JSON object: reading it as plain text (pass --format jsonl to read it as JSON Lines, or --format json with --json-path for one JSON document)")
	}
	return "text"
}

// textRecords are the records of a plain text or JSON Lines input.
type textRecords struct {
	reader
	st        *stream
	in        Input
	stdinSize int64
	stdinSum  string
}

func (r *textRecords) close() error   { return r.st.Close() }
func (r *textRecords) format() string { return r.cfg.Format }

func (r *textRecords) damage() *Damage {
	var de *damageError
	if !errors.As(r.inErr, &de) {
		return nil
	}
	return &Damage{Input: r.in.Path, Offset: de.offset, Line: r.line, Detail: de.detail}
}

func (r *textRecords) finish() (string, error) {
	sum, n, err := r.st.finish()
	if err != nil {
		return "", err
	}
	if r.in.Path == Stdin {
		r.stdinSize, r.stdinSum = n, sum
		return sum, nil
	}
	if err := checkUnchanged(r.st.f, r.in); err != nil {
		return "", err
	}
	return sum, nil
}

func (r *textRecords) stdin() *Input {
	if r.in.Path != Stdin {
		return nil
	}
	return &Input{Path: Stdin, Size: r.stdinSize, SHA256: r.stdinSum, Format: r.cfg.Format, Compression: r.st.compression}
}

// parquetSource is a Parquet input as parquettext reads it: its read
// errors are ioErrors, as every other input's are, and a read stops at the
// build's context.
type parquetSource struct {
	inputFile
	at readerAt
}

func (s *parquetSource) ReadAt(p []byte, off int64) (int, error) { return s.at.ReadAt(p, off) }

// parquetRecords are the rows of one row group of a Parquet input: a task
// is a row group, a record a row, and its "line" the row's 1-based number in
// the file.
type parquetRecords struct {
	ctx      context.Context
	in       Input
	src      inputFile
	f        *parquettext.File
	rg       int
	skip     int64 // rows of the row group already written (resume)
	index    int64 // of the next record within the task
	row      int64 // 1-based row number of the next record in the file
	first    int64 // row number of the row group's first row
	maxDoc   int
	progress func(int64)

	loaded  bool
	sum     string // sha256 of the column chunk, hashed before it is decoded
	text    []byte
	ends    []int
	reasons []Reason // OK, MissingField (null) or TooLong per row
	pos     int
	dmg     *parquettext.DamageError
	lost    int64 // rows after the damage, each counted as truncated
}

func (p *parquetRecords) load() error {
	p.loaded = true
	sum, err := p.f.HashChunk(p.ctx, p.rg)
	if err != nil {
		return err
	}
	p.sum = sum
	var i int64
	err = p.f.ReadRowGroup(p.ctx, p.rg, func(text []byte, null bool) error {
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
	var de *parquettext.DamageError
	if errors.As(err, &de) {
		// The rows decoded before the damage are kept; each row after it
		// is counted as a truncated record.
		p.dmg = de
		p.lost = max(p.f.Rows(p.rg)-max(de.Row, p.skip), 0)
		return nil
	}
	return err
}

func (p *parquetRecords) next(arena []byte) (record, []byte, error) {
	if !p.loaded {
		if err := p.load(); err != nil {
			return record{}, arena, err
		}
	}
	if p.pos >= len(p.ends) {
		if p.lost > 0 {
			p.lost--
			rec := record{index: p.index, line: p.row, off: p.index, start: len(arena), end: len(arena),
				reason: Truncated, detail: fmt.Sprintf("row group %d is damaged from row %d on: %v", p.rg, p.first+p.dmg.Row, p.dmg.Err)}
			p.index++
			p.row++
			return rec, arena, nil
		}
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

func (p *parquetRecords) damage() *Damage {
	if p.dmg == nil {
		return nil
	}
	return &Damage{Input: p.in.Path, Offset: p.dmg.Offset, Line: p.first + p.dmg.Row,
		Detail: fmt.Sprintf("row group %d is damaged after %d of its rows: %v", p.rg, p.dmg.Row, p.dmg.Err)}
}

func (p *parquetRecords) finish() (string, error) {
	if err := checkUnchanged(p.src, p.in); err != nil {
		return "", err
	}
	return p.sum, nil
}

func (p *parquetRecords) stdin() *Input  { return nil }
func (p *parquetRecords) format() string { return "parquet" }
func (p *parquetRecords) close() error   { return p.f.Close() }
