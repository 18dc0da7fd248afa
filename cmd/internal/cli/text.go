package cli

import (
	"strconv"
	"strings"
)

// Printable is s with its control characters written as escapes (\n, \t,
// \r, \x1b, \u202e), each passed through mark (nil: as is). Text from a
// corpus or a model goes to the terminal through it: raw, a control
// character would break the layout or drive the terminal (an ESC sequence,
// a bidi override).
func Printable(s string, mark func(string) string) string { return escape(s, IsControl, mark) }

// escape is s with the runes that are to be escaped written as escapes,
// each passed through mark (nil: as is).
func escape(s string, escaped func(rune) bool, mark func(string) string) string {
	if !strings.ContainsFunc(s, escaped) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !escaped(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
		esc := q[1 : len(q)-1]
		if mark != nil {
			esc = mark(esc)
		}
		b.WriteString(esc)
	}
	return b.String()
}

// Message is an error or warning as it is printed on a terminal: a file
// name or a record's text in it cannot drive the terminal, since every
// control character but a line end and a tab is shown as its escape (see
// Printable).
func Message(s string) string {
	return escape(s, func(r rune) bool { return r != '\n' && r != '\t' && IsControl(r) }, nil)
}

// IsControl reports a C0 or C1 control, DEL, or a bidirectional embedding,
// override or isolate.
func IsControl(r rune) bool {
	return r < 0x20 || r >= 0x7f && r < 0xa0 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}
