package pipeline

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonText finds the string at a dotted path (["meta", "text"]) in one JSON
// object and appends its decoded value to dst. It checks the whole record
// is valid JSON (RFC 8259), without building any value, so records are
// parsed at the speed of a scan and allocate nothing. A key of the path
// that occurs twice in its object takes its last value, as Python's json
// and encoding/json do.
//
// It returns reason OK, MissingField, NotString or BadJSON (with err), and
// with OK what was repaired: repairDupBit for a key of the path given
// twice, repairSurrBit for a lone surrogate escape in the text (\ud800,
// which no UTF-8 can hold), decoded as U+FFFD.
func jsonText(dst, data []byte, path []string) ([]byte, Reason, uint8, error) {
	p := jparser{data: data, dst: dst, base: len(dst), mark: len(dst)}
	p.ws()
	if p.i >= len(p.data) || p.data[p.i] != '{' {
		return dst, BadJSON, 0, p.errf("a record must be a JSON object")
	}
	status := MissingField
	if err := p.object(path, &status); err != nil {
		return dst, BadJSON, 0, err
	}
	p.ws()
	if p.i != len(p.data) {
		return dst, BadJSON, 0, p.errf("data after the object")
	}
	var repair uint8
	if p.dup && status == OK {
		repair |= repairDupBit
	}
	if p.lone && status == OK {
		repair |= repairSurrBit
	}
	return p.dst[:p.mark], status, repair, nil
}

type jparser struct {
	data  []byte
	i     int
	dst   []byte
	base  int // where the found text starts in dst
	mark  int // where it ends
	depth int
	dup   bool // a key of the path occurred twice in its object
	surr  int  // lone surrogate escapes decoded (as U+FFFD) so far
	lone  bool // the text found holds one
}

func (p *jparser) errf(format string, a ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", p.i+1, fmt.Sprintf(format, a...))
}

func (p *jparser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

const maxJSONDepth = 10000

// enter steps into the object or array that opens at p.i, one level
// deeper, and past the white space after its opening byte; empty reports
// that end, its closing byte, comes next, and steps past it. The caller
// defers p.leave().
func (p *jparser) enter(end byte) (empty bool, err error) {
	p.depth++
	if p.depth > maxJSONDepth {
		return false, p.errf("nested too deeply")
	}
	p.i++
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == end {
		p.i++
		return true, nil
	}
	return false, nil
}

// leave ends what enter began.
func (p *jparser) leave() { p.depth-- }

// object parses an object at p.i; path is the rest of the field path
// (nil when the field is not below this object).
func (p *jparser) object(path []string, status *Reason) error {
	defer p.leave()
	if empty, err := p.enter('}'); err != nil || empty {
		return err
	}
	seen := false // the path's key, in this object
	for {
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return p.errf("want a string key")
		}
		// Decode the key into dst past the mark, compare, then drop it.
		keyStart := len(p.dst)
		if err := p.str(); err != nil {
			return err
		}
		match := len(path) > 0 && string(p.dst[keyStart:]) == path[0]
		p.dst = p.dst[:keyStart]
		if match && seen {
			// The later value is the key's, whatever the earlier held.
			p.dup, p.lone = true, false
			p.dst, p.mark = p.dst[:p.base], p.base
			*status = MissingField
		}
		seen = seen || match
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return p.errf("want ':' after a key")
		}
		p.i++
		p.ws()
		if p.i >= len(p.data) {
			return p.errf("unexpected end")
		}
		switch {
		case match && len(path) == 1 && p.data[p.i] == '"':
			// The field: decode it to the front of dst (an earlier
			// duplicate is overwritten).
			p.dst = p.dst[:p.base]
			surr := p.surr
			if err := p.str(); err != nil {
				return err
			}
			p.mark = len(p.dst)
			p.lone = p.surr > surr
			*status = OK
		case match && len(path) == 1:
			p.dst, p.mark = p.dst[:p.base], p.base
			*status = NotString
			if err := p.value(nil, status); err != nil {
				return err
			}
		case match && p.data[p.i] == '{':
			if err := p.object(path[1:], status); err != nil {
				return err
			}
		default:
			if err := p.value(nil, status); err != nil {
				return err
			}
		}
		p.ws()
		if p.i >= len(p.data) {
			return p.errf("unexpected end inside an object")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errf("want ',' or '}'")
		}
	}
}

// value skips any JSON value at p.i.
func (p *jparser) value(path []string, status *Reason) error {
	if p.i >= len(p.data) {
		return p.errf("unexpected end")
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(path, status)
	case c == '[':
		defer p.leave()
		if empty, err := p.enter(']'); err != nil || empty {
			return err
		}
		for {
			p.ws()
			if err := p.value(nil, status); err != nil {
				return err
			}
			p.ws()
			if p.i >= len(p.data) {
				return p.errf("unexpected end inside an array")
			}
			if p.data[p.i] == ']' {
				p.i++
				return nil
			}
			if p.data[p.i] != ',' {
				return p.errf("want ',' or ']'")
			}
			p.i++
		}
	case c == '"':
		mark := len(p.dst)
		err := p.str()
		p.dst = p.dst[:mark]
		return err
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return p.errf("unexpected character %q", p.data[p.i])
}

func (p *jparser) lit(s string) error {
	if len(p.data)-p.i < len(s) || string(p.data[p.i:p.i+len(s)]) != s {
		return p.errf("want %s", s)
	}
	p.i += len(s)
	return nil
}

// number steps past the number at p.i (RFC 8259: -?(0|[1-9][0-9]*), an
// optional fraction .[0-9]+ and an optional exponent [eE][+-]?[0-9]+).
func (p *jparser) number() error {
	d := p.data
	i := p.i
	ok := true
	if i < len(d) && d[i] == '-' {
		i++
	}
	if i < len(d) && d[i] == '0' {
		i++
	} else if i, ok = digits(d, i); !ok {
		return p.badNumber(i)
	}
	if i < len(d) && d[i] == '.' {
		if i, ok = digits(d, i+1); !ok {
			return p.badNumber(i)
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i, ok = digits(d, i); !ok {
			return p.badNumber(i)
		}
	}
	p.i = i
	return nil
}

// digits returns the end of the run of digits at d[i:], and whether the
// run has one digit at least.
func digits(d []byte, i int) (int, bool) {
	j := i
	for j < len(d) && d[j] >= '0' && d[j] <= '9' {
		j++
	}
	return j, j > i
}

func (p *jparser) badNumber(at int) error {
	p.i = at
	return p.errf("bad number")
}

// str decodes the string at p.i (at its opening quote) and appends it to
// p.dst. Bytes that are not UTF-8 are kept (the pipeline repairs them
// later and counts it); a lone surrogate escape becomes U+FFFD.
func (p *jparser) str() error {
	d := p.data
	i := p.i + 1
	for {
		// Copy the run of plain bytes in one go.
		j := i
		for j < len(d) && d[j] != '"' && d[j] != '\\' && d[j] >= 0x20 {
			j++
		}
		p.dst = append(p.dst, d[i:j]...)
		i = j
		if i >= len(d) {
			p.i = i
			return p.errf("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			p.i = i + 1
			return nil
		case c < 0x20:
			p.i = i
			return p.errf("control character %#x in a string", c)
		}
		// A backslash escape.
		if i+1 >= len(d) {
			p.i = i
			return p.errf("unterminated escape")
		}
		switch e := d[i+1]; e {
		case '"', '\\', '/':
			p.dst = append(p.dst, e)
			i += 2
		case 'b', 'f', 'n', 'r', 't':
			// \b \f \n \r \t: the control character at the same place.
			p.dst = append(p.dst, "\b\f\n\r\t"[strings.IndexByte("bfnrt", e)])
			i += 2
		case 'u':
			r, ok := hex4(d, i+2)
			if !ok {
				p.i = i
				return p.errf("bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if i+6 <= len(d) && d[i] == '\\' && d[i+1] == 'u' {
					r2, ok2 = hex4(d, i+2)
				}
				if ok2 && utf16.DecodeRune(r, r2) != utf8.RuneError {
					r = utf16.DecodeRune(r, r2)
					i += 6
				} else {
					r = utf8.RuneError
					p.surr++
				}
			}
			p.dst = utf8.AppendRune(p.dst, r)
		default:
			p.i = i
			return p.errf("bad escape \\%c", e)
		}
	}
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var v rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// jsonString decodes a record that is one JSON string (an element of a
// JSON document's list of texts) and appends its value to dst; repair is
// repairSurrBit when it held a lone surrogate escape (see jsonText).
func jsonString(dst, data []byte) ([]byte, Reason, uint8, error) {
	p := jparser{data: data, dst: dst}
	p.ws()
	if p.i >= len(p.data) || p.data[p.i] != '"' {
		return dst, BadJSON, 0, p.errf("a record must be a JSON object or string")
	}
	if err := p.str(); err != nil {
		return dst, BadJSON, 0, err
	}
	p.ws()
	if p.i != len(p.data) {
		return dst, BadJSON, 0, p.errf("data after the string")
	}
	var repair uint8
	if p.surr > 0 {
		repair = repairSurrBit
	}
	return p.dst, OK, repair, nil
}

// recordText extracts a JSON record's text: the string at the one field
// path (decoded in place over the record), or the strings at several paths
// joined in their order by a blank line ("\n\n"; fields that are missing or
// empty are left out), or the record itself when it
// is a JSON string (allowString). scratch holds a joined text. The reason is OK,
// MissingField (none of the fields is there), NotString (one of them is
// not a string; null included) or BadJSON, with detail saying what is
// wrong. With OK, repair has the bits of what was repaired (see jsonText);
// for repairDupBit detail names the field given twice.
func recordText(raw []byte, fields [][]string, allowString bool, scratch []byte) (text, scratchOut []byte, reason Reason, repair uint8, detail string) {
	lead := 0
	for lead < len(raw) && (raw[lead] == ' ' || raw[lead] == '\t' || raw[lead] == '\n' || raw[lead] == '\r') {
		lead++
	}
	if allowString && lead < len(raw) && raw[lead] == '"' {
		// Decoded in place: a JSON string is never shorter than its value.
		t, reason, repair, err := jsonString(raw[:0:len(raw)], raw)
		if err != nil {
			return nil, scratch, reason, 0, err.Error()
		}
		return t, scratch, OK, repair, ""
	}
	if allowString && (lead >= len(raw) || raw[lead] != '{') {
		return nil, scratch, BadJSON, 0, "a record of a JSON document must be an object or a string"
	}
	if bytes.HasPrefix(raw[lead:], bom) {
		// Only an input's first record may start with one (it is not
		// text there); inside, it is where files were joined.
		return nil, scratch, BadJSON, 0, "a UTF-8 byte order mark (EF BB BF) starts the record, not '{': files that each begin with one were joined (cat a.jsonl b.jsonl); remove the marks first (sed -i 's/^\\xEF\\xBB\\xBF//')"
	}
	name := func(f []string) string { return fmt.Sprintf("%q", joinPath(f)) }
	if len(fields) == 1 {
		// Decoded in place: the value overwrites only what was parsed.
		t, reason, repair, err := jsonText(raw[:0:len(raw)], raw, fields[0])
		switch reason {
		case BadJSON:
			return nil, scratch, reason, 0, err.Error()
		case MissingField:
			return nil, scratch, reason, 0, "no field " + name(fields[0])
		case NotString:
			return nil, scratch, reason, 0, fmt.Sprintf("field %s is not a string", name(fields[0]))
		}
		return t, scratch, OK, repair, twice(repair, fields[0])
	}
	scratch = scratch[:0]
	present, found := 0, 0
	var names []string
	for _, f := range fields {
		names = append(names, name(f))
		mark := len(scratch)
		if found > 0 {
			scratch = append(scratch, '\n', '\n')
		}
		start := len(scratch)
		var err error
		var r Reason
		var rp uint8
		scratch, r, rp, err = jsonText(scratch, raw, f)
		switch r {
		case BadJSON:
			return nil, scratch, r, 0, err.Error()
		case NotString:
			return nil, scratch, r, 0, fmt.Sprintf("field %s is not a string", name(f))
		case MissingField:
			scratch = scratch[:mark]
			continue
		}
		if detail == "" {
			detail = twice(rp, f)
		}
		repair |= rp
		present++
		if len(scratch) == start { // an empty string: no separator either
			scratch = scratch[:mark]
			continue
		}
		found++
	}
	if present == 0 {
		return nil, scratch, MissingField, 0, "none of the fields " + joinNames(names)
	}
	return scratch, scratch, OK, repair, detail
}

// twice is the note on field f given twice, when repair says it was ("").
func twice(repair uint8, f []string) string {
	if repair&repairDupBit == 0 {
		return ""
	}
	return fmt.Sprintf("field %q is given twice (a key of its path occurs twice in one object); the last value is used, as Python's json does", joinPath(f))
}

func joinPath(f []string) string {
	s := ""
	for i, p := range f {
		if i > 0 {
			s += "."
		}
		s += p
	}
	return s
}

func joinNames(n []string) string {
	s := ""
	for i, x := range n {
		switch {
		case i == 0:
		case i == len(n)-1:
			s += " or "
		default:
			s += ", "
		}
		s += x
	}
	return s
}
