package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
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
	detail string // what went wrong, for a skipped record (or the field given twice, for a DuplicateField repair)
	ids    [2]int // token ids in the job's arena
}

// readerConfig says how to cut an input into records.
type readerConfig struct {
	Format      string // "text" or "jsonl"
	DocBoundary string // text only: "line", "blank" or "file"
	MaxDocBytes int    // longer records are skipped as TooLong
}

// reader cuts one task's decompressed stream into records. It runs on one
// goroutine and does no parsing: JSON and tokenization happen in workers.
// Record text is read straight into the job's arena, so a long record
// exists once in memory.
type reader struct {
	cfg readerConfig
	br  *bufio.Reader

	index      int64 // of the next record
	line       int64 // lines consumed
	off        int64 // bytes consumed
	done       bool
	bomChecked bool
	// inErr is the damage that ended the input early (a corrupt or
	// truncated .gz/.zst frame), if any.
	inErr error
	// A big multi-line record's text so far (see joinLine).
	held  [][]byte
	heldN int
}

// errEnd is returned when the reader has no more records.
var errEnd = errors.New("end of input")

func isDamage(err error) bool {
	var de *damageError
	return errors.As(err, &de)
}

// readLine appends one line, without its terminator ("\n" or "\r\n"), to
// arena. n is the number of bytes consumed. A line longer than max is
// consumed and reported as tooLong, with nothing appended. At the end, err
// is io.EOF with n = 0; an input that fails mid-way returns what it has of
// the line with err set.
func (r *reader) readLine(arena []byte, max int) (_ []byte, n int64, tooLong bool, err error) {
	start := len(arena)
	slack := 2 // the terminator
	if !r.bomChecked {
		slack += len(bom)
	}
	// A line longer than the read buffer is kept in pieces until its
	// length is known, then placed in arena with one exact allocation:
	// growing arena as it comes would copy it again and again and hold
	// up to 2.25 times its size at the last copy.
	var pieces [][]byte
	var inPieces int
	for {
		frag, ferr := r.br.ReadSlice('\n')
		n += int64(len(frag))
		if !tooLong {
			if len(arena)-start+inPieces+len(frag) > max+slack {
				tooLong = true
				arena, pieces, inPieces = arena[:start], nil, 0
			} else if ferr == bufio.ErrBufferFull || pieces != nil {
				pieces = append(pieces, bytes.Clone(frag))
				inPieces += len(frag)
			} else {
				arena = append(arena, frag...)
			}
		}
		if ferr == bufio.ErrBufferFull {
			continue
		}
		if pieces != nil {
			arena = slices.Grow(arena, inPieces)
			for _, p := range pieces {
				arena = append(arena, p...)
			}
			if inPieces >= bigRecord {
				// Free the pieces before the tokenizer needs memory.
				pieces = nil
				runtime.GC()
			}
		}
		if ferr != nil && ferr != io.EOF {
			return arena, n, tooLong, ferr
		}
		if ferr == io.EOF && n == 0 {
			return arena, 0, false, io.EOF
		}
		line := arena[start:]
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		arena = arena[:start+len(line)]
		if !r.bomChecked {
			// A UTF-8 byte order mark at the start of an input is not text.
			r.bomChecked = true
			if bytes.HasPrefix(line, bom) {
				arena = append(arena[:start], line[len(bom):]...)
			}
		}
		if len(arena)-start > max {
			tooLong, arena = true, arena[:start]
		}
		return arena, n, tooLong, nil
	}
}

// bigRecord is the size from which a record's memory is managed by hand:
// placed with one allocation, its job's buffers not kept for reuse.
const bigRecord = 16 << 20

var bom = []byte{0xef, 0xbb, 0xbf}

// next cuts the next record, appending its text to arena. It returns errEnd
// at the end of the task, and any error that is not damage to the data.
func (r *reader) next(arena []byte) (record, []byte, error) {
	if r.done {
		return record{}, arena, errEnd
	}
	rec := record{index: r.index, line: r.line + 1, off: r.off, start: len(arena)}
	max := r.cfg.MaxDocBytes
	var err error
	switch {
	case r.cfg.Format == "text" && r.cfg.DocBoundary == "blank":
		arena, rec, err = r.block(arena, rec, max)
		if err != nil {
			return record{}, arena[:rec.start], err
		}
		if rec.start < 0 {
			return record{}, arena, errEnd
		}
	case r.cfg.Format == "text" && r.cfg.DocBoundary == "file":
		r.done = true
		for first := true; ; first = false {
			var mark int
			var n int64
			var lineLong, recLong bool
			var lerr error
			arena, mark, _, n, lineLong, recLong, lerr = r.joinLine(arena, &rec, !first, max)
			tooLong := lineLong || recLong
			if n == 0 && lerr == io.EOF {
				arena = arena[:mark]
				if first {
					return record{}, arena, errEnd
				}
				break
			}
			r.off += n
			r.line++
			if tooLong {
				rec.reason = TooLong
				arena = arena[:rec.start]
			}
			if lerr != nil {
				if !isDamage(lerr) {
					return record{}, arena[:rec.start], lerr
				}
				r.fail(&rec, lerr)
				break
			}
		}
	default: // one line per record: text lines and JSON Lines
		var n int64
		var tooLong bool
		arena, n, tooLong, err = r.readLine(arena, max)
		if n == 0 && err == io.EOF {
			r.done = true
			return record{}, arena, errEnd
		}
		r.off += n
		r.line++
		if tooLong {
			rec.reason = TooLong
		}
		if err != nil {
			if !isDamage(err) {
				return record{}, arena[:rec.start], err
			}
			r.fail(&rec, err)
		}
	}
	arena = r.place(arena, &rec)
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

// joinLine reads a line of a multi-line record (a block, or a whole
// file) into arena, after a "\n" when join is set. It returns where the
// line's "\n" went (mark) and where the line starts (ls). lineLong says the
// line alone is over max (nothing of it was appended), recLong that the
// record is over max with it. Once a record passes bigRecord bytes, its
// text so far is held aside, and the record is placed with one exact
// allocation when it ends (see place).
func (r *reader) joinLine(arena []byte, rec *record, join bool, max int) (_ []byte, mark, ls int, n int64, lineLong, recLong bool, err error) {
	if rec.reason != TooLong && len(arena)-rec.start >= bigRecord {
		r.held = append(r.held, bytes.Clone(arena[rec.start:]))
		r.heldN += len(arena) - rec.start
		arena = arena[:rec.start]
	}
	mark = len(arena)
	if join && rec.reason != TooLong {
		arena = append(arena, '\n')
	}
	ls = len(arena)
	arena, n, lineLong, err = r.readLine(arena, max)
	recLong = rec.reason == TooLong || r.heldN+len(arena)-rec.start > max
	return arena, mark, ls, n, lineLong, recLong, err
}

// place puts the text held aside for rec back in front of what arena holds
// of it, with one allocation of the exact size.
func (r *reader) place(arena []byte, rec *record) []byte {
	if r.held == nil {
		return arena
	}
	held := r.held
	r.held, r.heldN = nil, 0
	if rec.reason == TooLong {
		return arena
	}
	n := len(arena)
	for _, h := range held {
		n += len(h)
	}
	out := make([]byte, 0, n)
	out = append(out, arena[:rec.start]...)
	for _, h := range held {
		out = append(out, h...)
	}
	out = append(out, arena[rec.start:]...)
	held = nil
	runtime.GC() // free the pieces before the tokenizer needs memory
	return out
}

// block reads a blank-line-separated block; rec.start < 0 at the end.
func (r *reader) block(arena []byte, rec record, max int) ([]byte, record, error) {
	started := false
	for {
		var mark, ls int
		var n int64
		var lineLong, recLong bool
		var err error
		arena, mark, ls, n, lineLong, recLong, err = r.joinLine(arena, &rec, started, max)
		if n == 0 && err == io.EOF {
			r.done = true
			arena = arena[:mark]
			if !started {
				rec.start = -1
			}
			return arena, rec, nil
		}
		r.off += n
		r.line++
		if !lineLong && len(bytes.TrimSpace(arena[ls:])) == 0 {
			// A separator: an empty or whitespace-only line.
			arena = arena[:mark]
			if !started {
				// Separator lines before a block belong to no record.
				rec.line, rec.off = r.line+1, r.off
			}
			if err != nil {
				if !isDamage(err) {
					return arena, rec, err
				}
				r.inErr = err
				r.done = true
				if !started {
					rec.start = -1
				}
				return arena, rec, nil
			}
			if !started {
				continue
			}
			// The separator ends the block; it is consumed with it.
			return arena, rec, nil
		}
		if lineLong || recLong {
			rec.reason = TooLong
			arena = arena[:rec.start]
		}
		started = true
		if err != nil {
			if !isDamage(err) {
				return arena, rec, err
			}
			r.fail(&rec, err)
			return arena, rec, nil
		}
	}
}

// fail records an input whose data turned out damaged inside rec.
func (r *reader) fail(rec *record, err error) {
	r.inErr = err
	r.done = true
	rec.reason = Truncated
	rec.detail = fmt.Sprintf("input ends inside this record: %v", err)
}
