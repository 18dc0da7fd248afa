package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// record is one record of an input (a line, a blank-separated block, a
// whole file, or a JSON Lines object), as the reader cuts it. Its text is
// job.text[start:end]: the raw line for JSON Lines, the document text
// otherwise.
type record struct {
	index  int64 // ordinal within the task, from 0
	line   int64 // 1-based line of its first byte in the input
	off    int64 // offset of its first byte in the decompressed input
	start  int   // text in the job's arena
	end    int
	reason Reason // set by the reader (TooLong, Truncated, Blank) or the worker
	repair uint8  // bit set of repairs (1<<0 invalid UTF-8, 1<<1 NUL bytes)
	text   int    // bytes of the document text (the decoded field for JSON Lines)
	detail string // what went wrong, for a skipped record
	ids    [2]int // token ids in the job's arena
}

// ReaderConfig says how to cut an input into records.
type ReaderConfig struct {
	Format      string // "text" or "jsonl"
	DocBoundary string // text only: "line", "blank" or "file"
	MaxDocBytes int    // longer records are skipped as TooLong
}

// reader cuts one task's decompressed stream into records. It runs on one
// goroutine and does no parsing: JSON and tokenization happen in workers.
type reader struct {
	cfg ReaderConfig
	br  *bufio.Reader

	index      int64 // of the next record
	line       int64 // lines consumed
	off        int64 // bytes consumed
	acc        []byte
	done       bool
	bomChecked bool
	// The input ended with an error (a truncated or corrupt .gz/.zst).
	inErr error
}

// errEnd is returned when the reader has no more records.
var errEnd = errors.New("end of input")

// readLine reads one line without its terminator ("\n" or "\r\n"). n is the
// number of bytes consumed. A line longer than max is consumed and reported
// as tooLong with no text. At the end, err is io.EOF with n = 0; an input
// that fails mid-way returns the partial line with err set.
func (r *reader) readLine(max int) (line []byte, n int64, tooLong bool, err error) {
	r.acc = r.acc[:0]
	for {
		frag, ferr := r.br.ReadSlice('\n')
		n += int64(len(frag))
		if ferr == bufio.ErrBufferFull {
			if !tooLong {
				if len(r.acc)+len(frag) > max+2 {
					tooLong = true
					r.acc = r.acc[:0]
				} else {
					r.acc = append(r.acc, frag...)
				}
			}
			continue
		}
		if !tooLong {
			if len(r.acc) > 0 {
				r.acc = append(r.acc, frag...)
				line = r.acc
			} else {
				line = frag
			}
		}
		if ferr != nil && ferr != io.EOF {
			return line, n, tooLong, ferr
		}
		if ferr == io.EOF && n == 0 {
			return nil, 0, false, io.EOF
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !r.bomChecked {
			// A UTF-8 byte order mark at the start of an input is not text.
			r.bomChecked = true
			line = bytes.TrimPrefix(line, bom)
		}
		if len(line) > max {
			tooLong, line = true, nil
		}
		return line, n, tooLong, nil
	}
}

var bom = []byte{0xef, 0xbb, 0xbf}

// next cuts the next record, appending its text to arena. It returns errEnd
// at the end of the task.
func (r *reader) next(arena []byte) (record, []byte, error) {
	if r.done {
		return record{}, arena, errEnd
	}
	rec := record{index: r.index, line: r.line + 1, off: r.off, start: len(arena)}
	max := r.cfg.MaxDocBytes
	switch {
	case r.cfg.Format == "text" && r.cfg.DocBoundary == "blank":
		arena, rec = r.block(arena, rec, max)
		if rec.start < 0 {
			return record{}, arena, errEnd
		}
	case r.cfg.Format == "text" && r.cfg.DocBoundary == "file":
		r.done = true
		for first := true; ; first = false {
			line, n, tooLong, err := r.readLine(max)
			if n == 0 && err == io.EOF {
				if first {
					return record{}, arena, errEnd
				}
				break
			}
			r.off += n
			r.line++
			arena = addLine(arena, &rec, line, tooLong, first, max)
			if err != nil {
				r.fail(&rec, err)
				break
			}
		}
	default: // one line per record: text lines and JSON Lines
		line, n, tooLong, err := r.readLine(max)
		if n == 0 && err == io.EOF {
			r.done = true
			return record{}, arena, errEnd
		}
		r.off += n
		r.line++
		arena = append(arena, line...)
		if tooLong {
			rec.reason = TooLong
		}
		if err != nil {
			r.fail(&rec, err)
		}
	}
	rec.end = len(arena)
	if rec.reason == TooLong {
		rec.detail = fmt.Sprintf("record longer than --max-doc-bytes (%d)", max)
		rec.end = rec.start
		arena = arena[:rec.start]
	} else if rec.reason == OK && len(bytes.TrimSpace(arena[rec.start:rec.end])) == 0 {
		rec.reason = Blank
	}
	r.index++
	return rec, arena, nil
}

// block reads a blank-line-separated block; rec.start < 0 at the end.
func (r *reader) block(arena []byte, rec record, max int) ([]byte, record) {
	started := false
	for {
		line, n, tooLong, err := r.readLine(max)
		if n == 0 && err == io.EOF {
			r.done = true
			if !started {
				rec.start = -1
			}
			return arena, rec
		}
		blank := !tooLong && len(bytes.TrimSpace(line)) == 0
		if blank && !started {
			// Separator lines before a block belong to no record.
			r.off += n
			r.line++
			rec.line, rec.off = r.line+1, r.off
			if err != nil {
				r.inErr = err
				r.done = true
				rec.start = -1
				return arena, rec
			}
			continue
		}
		if blank {
			// The separator ends the block; it is consumed with it.
			r.off += n
			r.line++
			return arena, rec
		}
		r.off += n
		r.line++
		arena = addLine(arena, &rec, line, tooLong, !started, max)
		started = true
		if err != nil {
			r.fail(&rec, err)
			return arena, rec
		}
	}
}

// addLine appends a line of a multi-line record (a block, or a whole
// file) to its text, joined by "\n", or marks the record TooLong once it
// passes max bytes, dropping its text.
func addLine(arena []byte, rec *record, line []byte, tooLong, first bool, max int) []byte {
	if rec.reason == TooLong {
		return arena
	}
	if !first {
		arena = append(arena, '\n')
	}
	if tooLong || len(arena)-rec.start+len(line) > max {
		rec.reason = TooLong
		return arena[:rec.start]
	}
	return append(arena, line...)
}

// fail records an input that ended with an error inside rec.
func (r *reader) fail(rec *record, err error) {
	r.inErr = err
	r.done = true
	rec.reason = Truncated
	rec.detail = fmt.Sprintf("input ends inside this record: %v", err)
}
