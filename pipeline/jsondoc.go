package pipeline

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// A JSON document input (format "json": a .json file that is one JSON
// value, not JSON Lines) holds its records in lists: the document itself
// is a list of records, or --json-path names where they are, a dotted path
// whose lists are walked through (SQuAD's data.paragraphs reaches every
// paragraph object of every article; data.paragraphs.context every
// context string). A record is an object, whose --text-field is its text
// as for JSON Lines, or a string, which is the text itself. The document
// is read as a stream, one record in memory at a time; it is one task
// (never cut into byte ranges), and a resumed task reads it again from
// the start, skipping the records already written. A syntax error ends
// the input there, as damage: the records before it are kept.

// jsonDoc walks a JSON document's records on a byte stream.
type jsonDoc struct {
	br     *bufio.Reader
	path   []string
	maxDoc int
	off    int64 // bytes consumed
	line   int64 // lines consumed (the next byte is on line+1)

	stack   []jframe
	started bool
	done    bool
	index   int64 // of the next record
	skip    int64 // records before it to pass over (a resumed task)
	inErr   error // the damage that ended the document, if any
}

// jframe is an open list or object on the way to the records.
type jframe struct {
	obj     bool
	depth   int // path segments matched above its values
	first   bool
	matched bool // an object: the key of path[depth] was found
}

// errSyntax is a syntax error of the document (damage, not an I/O error).
type errSyntax struct{ msg string }

func (e *errSyntax) Error() string { return e.msg }

func (d *jsonDoc) syntax(format string, a ...any) error {
	return &errSyntax{fmt.Sprintf("invalid JSON at byte %d (line %d): %s", d.off+1, d.line+1, fmt.Sprintf(format, a...))}
}

func (d *jsonDoc) readByte() (byte, error) {
	c, err := d.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, d.syntax("the document ends early")
		}
		return 0, err
	}
	d.off++
	if c == '\n' {
		d.line++
	}
	return c, nil
}

func (d *jsonDoc) peek() (byte, error) {
	b, err := d.br.Peek(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// ws skips whitespace; io.EOF at the end of the input. A run of it is
// skipped as a whole from what the reader holds (pretty-printed documents
// are much whitespace).
func (d *jsonDoc) ws() error {
	for {
		buf, err := d.br.Peek(1)
		if err != nil {
			return err
		}
		if c := buf[0]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return nil
		}
		buf, _ = d.br.Peek(d.br.Buffered())
		n := 0
		for ; n < len(buf); n++ {
			if c := buf[n]; c == '\n' {
				d.line++
			} else if c != ' ' && c != '\t' && c != '\r' {
				break
			}
		}
		d.off += int64(n)
		d.br.Discard(n)
	}
}

// wsIn skips whitespace inside the document, where the end is an error.
func (d *jsonDoc) wsIn() error {
	err := d.ws()
	if err == io.EOF {
		return d.syntax("the document ends early")
	}
	return err
}

// str reads a string (at its quote) and appends its raw bytes, quotes
// included, to dst when capture is set, stopping the copy past limit
// bytes (*over is set).
func (d *jsonDoc) str(dst []byte, capture bool, limit int, over *bool) ([]byte, error) {
	if _, err := d.readByte(); err != nil { // the opening quote
		return dst, err
	}
	if capture {
		dst = append(dst, '"')
	}
	bs := 0 // the backslashes just before the next byte, across fragments
	for {
		frag, err := d.br.ReadSlice('"')
		d.off += int64(len(frag))
		d.line += int64(bytes.Count(frag, []byte{'\n'}))
		if capture && !*over {
			if len(dst)+len(frag) > limit {
				*over = true
			} else {
				dst = append(dst, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			bs = trailingBackslashes(frag, bs)
			continue
		}
		if err == io.EOF {
			return dst, d.syntax("the document ends inside a string")
		}
		if err != nil {
			return dst, err
		}
		// The quote ends the string unless an odd run of backslashes
		// escapes it.
		if trailingBackslashes(frag[:len(frag)-1], bs)%2 == 0 {
			return dst, nil
		}
		bs = 0
	}
}

// trailingBackslashes counts the backslashes that end b, plus carry when b
// is all backslashes (the run goes on from the fragment before).
func trailingBackslashes(b []byte, carry int) int {
	n := 0
	for i := len(b) - 1; i >= 0 && b[i] == '\\'; i-- {
		n++
	}
	if n == len(b) {
		n += carry
	}
	return n
}

// value reads any JSON value, appending its raw bytes to dst when capture
// is set (up to limit bytes; past it *over is set and the rest is only
// skipped). The check is structural; the record's own parse (jsonText)
// validates it in full.
func (d *jsonDoc) value(dst []byte, capture bool, limit int, over *bool, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return dst, d.syntax("nested too deeply")
	}
	if err := d.wsIn(); err != nil {
		return dst, err
	}
	c, _ := d.peek()
	switch {
	case c == '"':
		return d.str(dst, capture, limit, over)
	case c == '{' || c == '[':
		return d.container(dst, capture, limit, over, depth, c)
	case c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z':
		return d.scalar(dst, capture, limit, over)
	}
	return dst, d.syntax("unexpected character %q", c)
}

// capped appends b to dst as value captures: when capture is set and the
// limit not yet passed (*over is set when b would pass it).
func capped(dst []byte, b byte, capture bool, limit int, over *bool) []byte {
	if capture && !*over {
		if len(dst)+1 > limit {
			*over = true
		} else {
			dst = append(dst, b)
		}
	}
	return dst
}

// container reads the object or list that open ('{' or '[') starts, as
// value does.
func (d *jsonDoc) container(dst []byte, capture bool, limit int, over *bool, depth int, open byte) ([]byte, error) {
	closing := byte('}')
	if open == '[' {
		closing = ']'
	}
	d.readByte()
	dst = capped(dst, open, capture, limit, over)
	for first := true; ; first = false {
		if err := d.wsIn(); err != nil {
			return dst, err
		}
		n, _ := d.peek()
		if n == closing {
			d.readByte()
			return capped(dst, n, capture, limit, over), nil
		}
		if !first {
			if n != ',' {
				return dst, d.syntax("want ',' or '%c'", closing)
			}
			d.readByte()
			dst = capped(dst, ',', capture, limit, over)
			if err := d.wsIn(); err != nil {
				return dst, err
			}
		}
		var err error
		if open == '{' {
			if dst, err = d.memberKey(dst, capture, limit, over); err != nil {
				return dst, err
			}
		}
		if dst, err = d.value(dst, capture, limit, over, depth+1); err != nil {
			return dst, err
		}
	}
}

// memberKey reads an object member's key and its colon, as value does.
func (d *jsonDoc) memberKey(dst []byte, capture bool, limit int, over *bool) ([]byte, error) {
	if n, _ := d.peek(); n != '"' {
		return dst, d.syntax("want a string key")
	}
	var err error
	if dst, err = d.str(dst, capture, limit, over); err != nil {
		return dst, err
	}
	if err := d.wsIn(); err != nil {
		return dst, err
	}
	if n, _ := d.peek(); n != ':' {
		return dst, d.syntax("want ':' after a key")
	}
	d.readByte()
	return capped(dst, ':', capture, limit, over), nil
}

// scalar reads a number or a literal: its bytes up to a delimiter, taken
// from what the reader holds.
func (d *jsonDoc) scalar(dst []byte, capture bool, limit int, over *bool) ([]byte, error) {
	for {
		if _, err := d.br.Peek(1); err == io.EOF {
			return dst, nil
		} else if err != nil {
			return dst, err
		}
		buf, _ := d.br.Peek(d.br.Buffered())
		n := 0
		for ; n < len(buf); n++ {
			if c := buf[n]; !(c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				break
			}
		}
		if room := limit - len(dst); capture && !*over && n > 0 {
			if n > room { // as a byte at a time would: up to the limit
				dst = append(dst, buf[:max(room, 0)]...)
				*over = true
			} else {
				dst = append(dst, buf[:n]...)
			}
		}
		d.off += int64(n)
		d.br.Discard(n)
		if n < len(buf) {
			return dst, nil
		}
	}
}

// key reads an object key and decodes it.
func (d *jsonDoc) key() (string, error) {
	over := false
	raw, err := d.str(nil, true, 1<<20, &over)
	if err != nil {
		return "", err
	}
	if over {
		return "", d.syntax("a key over 1 MiB")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var k string
	if err := json.Unmarshal(raw, &k); err != nil {
		return "", d.syntax("bad key %s", raw)
	}
	return k, nil
}

// next cuts the next record, appending its raw JSON to arena. At the end
// it returns errEnd; a syntax error (or damage of the stream) ends the
// document with inErr set, after the records before it and one Truncated
// record where it broke (a compressed stream's damage counts the same).
func (d *jsonDoc) next(arena []byte) (record, []byte, error) {
	for {
		if d.done {
			return record{}, arena, errEnd
		}
		rec, arena, ok, err := d.step(arena)
		if err != nil {
			var se *errSyntax
			if !errors.As(err, &se) && !isDamage(err) {
				return record{}, arena, err
			}
			d.done = true
			d.inErr = err
			if se != nil {
				d.inErr = &damageError{offset: d.off, detail: se.msg}
			}
			rec = record{line: d.line + 1, off: d.off, start: len(arena), end: len(arena), reason: Truncated,
				detail: fmt.Sprintf("the document is damaged here: %v", d.inErr)}
			ok = true
		}
		if !ok {
			continue
		}
		rec.index = d.index
		d.index++
		if rec.index < d.skip {
			arena = arena[:rec.start]
			continue
		}
		return rec, arena, nil
	}
}

// step advances the walk by one value or one closing bracket; ok says it
// produced a record.
func (d *jsonDoc) step(arena []byte) (record, []byte, bool, error) {
	if !d.started {
		return d.begin(arena)
	}
	if len(d.stack) == 0 {
		return record{}, arena, false, d.end()
	}
	f := &d.stack[len(d.stack)-1]
	if err := d.wsIn(); err != nil {
		return record{}, arena, false, err
	}
	c, _ := d.peek()
	if f.obj && c == '}' || !f.obj && c == ']' {
		return d.closeFrame(arena)
	}
	if !f.first {
		if c != ',' {
			if f.obj {
				return record{}, arena, false, d.syntax("want ',' or '}'")
			}
			return record{}, arena, false, d.syntax("want ',' or ']'")
		}
		d.readByte()
		if err := d.wsIn(); err != nil {
			return record{}, arena, false, err
		}
	}
	f.first = false
	if !f.obj {
		return d.at(arena, f.depth)
	}
	return d.member(arena, f)
}

// begin starts the walk at the document's first value, past a byte order
// mark; an empty input has no records.
func (d *jsonDoc) begin(arena []byte) (record, []byte, bool, error) {
	d.started = true
	if b, _ := d.br.Peek(3); bytes.Equal(b, bom) {
		d.br.Discard(3)
		d.off += 3
	}
	if err := d.ws(); err == io.EOF {
		d.done = true // an empty input: no records
		return record{}, arena, false, nil
	} else if err != nil {
		return record{}, arena, false, err
	}
	return d.at(arena, 0)
}

// end ends the walk after the document, where only whitespace may follow.
func (d *jsonDoc) end() error {
	d.done = true
	if err := d.ws(); err == io.EOF {
		return nil
	} else if err != nil {
		return err
	}
	return d.syntax("data after the JSON document")
}

// closeFrame reads the closing bracket of the innermost open list or
// object; an object on the path without the path's next key is a record
// that lacks it.
func (d *jsonDoc) closeFrame(arena []byte) (record, []byte, bool, error) {
	f := d.stack[len(d.stack)-1]
	d.readByte()
	d.stack = d.stack[:len(d.stack)-1]
	if f.obj && !f.matched && f.depth < len(d.path) {
		rec := record{line: d.line + 1, off: d.off, start: len(arena), end: len(arena), reason: MissingField,
			detail: fmt.Sprintf("an object without %q (--json-path %s)", d.path[f.depth], strings.Join(d.path, "."))}
		return rec, arena, true, nil
	}
	return record{}, arena, false, nil
}

// member reads a member of the open object f: its key, then the value
// walked into when the key is the path's next segment, else skipped.
func (d *jsonDoc) member(arena []byte, f *jframe) (record, []byte, bool, error) {
	if c, _ := d.peek(); c != '"' {
		return record{}, arena, false, d.syntax("want a string key")
	}
	k, err := d.key()
	if err != nil {
		return record{}, arena, false, err
	}
	if err := d.wsIn(); err != nil {
		return record{}, arena, false, err
	}
	if c, _ := d.peek(); c != ':' {
		return record{}, arena, false, d.syntax("want ':' after a key")
	}
	d.readByte()
	if err := d.wsIn(); err != nil {
		return record{}, arena, false, err
	}
	depth := f.depth
	if depth < len(d.path) && k == d.path[depth] {
		f.matched = true
		return d.at(arena, depth+1)
	}
	over := false
	_, err = d.value(nil, false, 0, &over, len(d.stack))
	return record{}, arena, false, err
}

// at handles the value at the stream's position, reached with depth path
// segments matched: a record when the path is done (or a list of them),
// else a list or object to walk into; anything else lacks the path.
func (d *jsonDoc) at(arena []byte, depth int) (record, []byte, bool, error) {
	c, err := d.peek()
	if err != nil {
		return record{}, arena, false, d.syntax("the document ends early")
	}
	if c == '[' {
		d.readByte()
		d.stack = append(d.stack, jframe{depth: depth, first: true})
		return record{}, arena, false, nil
	}
	if depth == len(d.path) {
		rec := record{line: d.line + 1, off: d.off, start: len(arena)}
		over := false
		// The limit is the record's: the arena holds the job's records
		// before it.
		limit := rec.start + min(d.maxDoc, math.MaxInt-rec.start)
		arena, err = d.value(arena, true, limit, &over, len(d.stack))
		if err != nil {
			return record{}, arena[:rec.start], false, err
		}
		if over {
			arena = arena[:rec.start]
			rec.reason, rec.detail = TooLong, fmt.Sprintf("record longer than --max-doc-bytes (%d)", d.maxDoc)
		}
		rec.end = len(arena)
		return rec, arena, true, nil
	}
	if c == '{' {
		d.readByte()
		d.stack = append(d.stack, jframe{obj: true, depth: depth, first: true})
		return record{}, arena, false, nil
	}
	rec := record{line: d.line + 1, off: d.off, start: len(arena), end: len(arena), reason: MissingField,
		detail: fmt.Sprintf("a scalar where --json-path %s expects %q", strings.Join(d.path, "."), d.path[depth])}
	over := false
	if _, err := d.value(nil, false, 0, &over, len(d.stack)); err != nil {
		return record{}, arena, false, err
	}
	return rec, arena, true, nil
}

// jsonDocRecords are the records of a JSON document input.
type jsonDocRecords struct {
	*textRecords
	doc jsonDoc
}

func (j *jsonDocRecords) next(arena []byte) (record, []byte, error) {
	rec, arena, err := j.doc.next(arena)
	j.reader.inErr = j.doc.inErr
	j.reader.line = j.doc.line + 1
	return rec, arena, err
}

// splitPath cuts a --json-path into its segments ("" is none).
func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// jsonDocHead sniffs whether a .json input is one JSON document rather
// than JSON Lines: it starts with '[', or with an object that does not end
// on its first line (pretty-printed), or it is a single object on one
// line that has none of the text fields as a string (a document such as
// {"version": 1, "data": [...]}, not one JSON Lines record).
func jsonDocHead(br *bufio.Reader, fields [][]string, maxLine int) (bool, error) {
	head, _ := br.Peek(4096)
	rest := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")
	if len(rest) == 0 {
		return false, nil
	}
	switch rest[0] {
	case '[':
		return true, nil
	case '{':
	default:
		return false, nil
	}
	// The first line, whole (up to maxLine bytes).
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err == bufio.ErrBufferFull && len(line) <= maxLine {
			continue
		}
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return false, err
		}
		break
	}
	line = bytes.TrimRight(bytes.TrimLeft(line, " \t\r\n\xef\xbb\xbf"), " \t\r\n")
	if _, reason, _, _ := jsonText(nil, line, []string{"\x00"}); reason == BadJSON {
		return true, nil // not a whole object on its line: a document across lines
	}
	more, _ := br.Peek(4096)
	if len(bytes.TrimSpace(more)) > 0 {
		return false, nil // a second line: JSON Lines
	}
	for _, f := range fields {
		if _, reason, _, _ := jsonText(nil, line, f); reason == OK {
			return false, nil // one JSON Lines record
		}
	}
	return true, nil
}

// describeTop lists the top-level keys of a JSON object document with
// what each holds ("data: a list of 442", "version: a string"), to say
// where --json-path should point.
func describeTop(br *bufio.Reader) string {
	d := &jsonDoc{br: br}
	if d.ws() != nil {
		return ""
	}
	if c, _ := d.peek(); c != '{' {
		return ""
	}
	d.readByte()
	var parts []string
	for first := true; len(parts) < 20; first = false {
		if d.wsIn() != nil {
			break
		}
		c, _ := d.peek()
		if c == '}' {
			break
		}
		if !first {
			if c != ',' {
				break
			}
			d.readByte()
			d.wsIn()
		}
		k, err := d.key()
		if err != nil || d.wsIn() != nil {
			break
		}
		if c, _ := d.peek(); c != ':' {
			break
		}
		d.readByte()
		if d.wsIn() != nil {
			break
		}
		c, _ = d.peek()
		what := "a value"
		switch {
		case c == '[':
			n, err := d.countList()
			if err != nil {
				parts = append(parts, fmt.Sprintf("%q: a list", k))
				return strings.Join(parts, ", ")
			}
			what = fmt.Sprintf("a list of %d", n)
		case c == '{':
			what = "an object"
		case c == '"':
			what = "a string"
		}
		if c != '[' {
			over := false
			if _, err := d.value(nil, false, 0, &over, 1); err != nil {
				break
			}
		}
		parts = append(parts, fmt.Sprintf("%q: %s", k, what))
	}
	return strings.Join(parts, ", ")
}

// countList skips a list at the position and counts its elements.
func (d *jsonDoc) countList() (int, error) {
	d.readByte()
	n := 0
	for first := true; ; first = false {
		if err := d.wsIn(); err != nil {
			return n, err
		}
		c, _ := d.peek()
		if c == ']' {
			d.readByte()
			return n, nil
		}
		if !first {
			if c != ',' {
				return n, d.syntax("want ',' or ']'")
			}
			d.readByte()
		}
		over := false
		if _, err := d.value(nil, false, 0, &over, 2); err != nil {
			return n, err
		}
		n++
	}
}

// detectJSONDocs decides, for every .json input read with --format auto,
// whether it is one JSON document (format "json") or JSON Lines, and
// checks --json-path: it applies to JSON documents (every .json input is
// read as one when it is given), and a document whose top level is an
// object needs it.
func detectJSONDocs(ctx context.Context, inputs []Input, cfg Config, dir string) error {
	fields := cfg.textFields()
	for i := range inputs {
		in := &inputs[i]
		if in.Format != "jsonl" && in.Format != "json" {
			continue
		}
		docName := isJSONDocName(in.Path)
		switch {
		case in.Format == "json":
		case cfg.Format == "auto" && docName && cfg.JSONPath != "":
			in.Format = "json"
		case cfg.Format == "auto" && docName && in.Path != Stdin:
			br, closeHead, err := peekInput(*in)
			if err != nil {
				return err
			}
			doc, err := jsonDocHead(br, fields, max(cfg.MaxDocBytes, 1<<16))
			closeHead()
			if err != nil {
				return fmt.Errorf("pipeline: reading %s: %w", in.Path, err)
			}
			if doc {
				in.Format = "json"
			}
		}
		if in.Format == "jsonl" && cfg.JSONPath != "" {
			return fmt.Errorf("pipeline: %s is JSON Lines; --json-path %s applies to JSON documents (.json files that hold one JSON value): drop it, or give --format json", in.Path, cfg.JSONPath)
		}
		if in.Format == "json" && cfg.JSONPath == "" && in.Path != Stdin {
			br, closeHead, err := peekInput(*in)
			if err != nil {
				return err
			}
			head, _ := br.Peek(4096)
			if rest := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf"); len(rest) > 0 && rest[0] == '{' {
				if rest := len(head) - len(bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")); rest > 0 {
					br.Discard(rest)
				}
				keys := describeTop(br)
				closeHead()
				if keys == "" {
					return fmt.Errorf("pipeline: %s is one JSON object with no keys it could list ({} or broken at its start): no records to read, and no --json-path to point at them", in.Path)
				}
				return fmt.Errorf("pipeline: %s is one JSON object (top-level keys: %s), not JSON Lines or a list of records: point --json-path at the records, e.g. --json-path data (a dotted path; the lists on the way are walked through, so SQuAD's data.paragraphs reaches every paragraph)", in.Path, keys)
			}
			closeHead()
		}
	}
	return nil
}

// peekInput opens an input's decompressed bytes for a look at its start
// (the format, not the data: nothing is verified here, so a look at a big
// single-frame file decompresses only what it reads).
func peekInput(in Input) (*bufio.Reader, func(), error) {
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline: input %w", err)
	}
	var r io.Reader = f
	closeAll := func() { f.Close() }
	switch in.Compression {
	case "gzip":
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("pipeline: %s: %w", in.Path, err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("pipeline: %s: %w", in.Path, err)
		}
		r = zr
		closeAll = func() { zr.Close(); f.Close() }
	case "bzip2":
		r = bzip2.NewReader(bufio.NewReaderSize(f, 1<<16))
	}
	return bufio.NewReaderSize(r, 1<<16), closeAll, nil
}

func isJSONDocName(name string) bool {
	return strings.HasSuffix(uncompressedName(name), ".json")
}
