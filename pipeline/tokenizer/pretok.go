package tokenizer

import (
	"unicode/utf8"
)

// Hugging Face's pre-tokenizers, as tokenizer.json names them.

// Split delimiter behaviours (HF's SplitDelimiterBehavior).
const (
	behRemoved = iota
	behIsolated
	behMergedWithPrevious
	behMergedWithNext
	behContiguous
)

var behaviorNames = map[string]int{
	"Removed": behRemoved, "Isolated": behIsolated, "MergedWithPrevious": behMergedWithPrevious,
	"MergedWithNext": behMergedWithNext, "Contiguous": behContiguous,
}

// splitEvent is a gap or a match of find_matches.
type splitEvent struct {
	start, end int32
	match      bool
}

// splitPieces turns the matches of a pattern in sp (st.matches, arena
// offsets, sorted, non-overlapping, empty ones included) into pieces with
// HF's behaviour, appending them to out. Empty pieces are dropped, as
// PreTokenizedString does.
func splitPieces(st *genState, out []span, sp span, behavior int, invert bool) []span {
	ev := findMatches(st.events[:0], st.matches, sp, invert)
	switch behavior {
	case behIsolated:
		for _, e := range ev {
			out = appendPiece(out, sp, e.start, e.end)
		}
	case behRemoved:
		for _, e := range ev {
			if !e.match {
				out = appendPiece(out, sp, e.start, e.end)
			}
		}
	case behContiguous, behMergedWithPrevious, behMergedWithNext:
		out = mergePieces(out, sp, ev, behavior)
	}
	st.events = ev[:0]
	return out
}

// findMatches is HF's find_matches: the gaps and matches of sp (matches
// sorted, non-overlapping, within sp), flagged, appended to ev; invert
// swaps the flags.
func findMatches(ev []splitEvent, matches []span, sp span, invert bool) []splitEvent {
	prev := sp.start
	if sp.start == sp.end {
		ev = append(ev, splitEvent{sp.start, sp.end, false})
	} else {
		for _, m := range matches {
			if prev != m.start {
				ev = append(ev, splitEvent{prev, m.start, false})
			}
			ev = append(ev, splitEvent{m.start, m.end, true})
			prev = m.end
		}
		if prev != sp.end {
			ev = append(ev, splitEvent{prev, sp.end, false})
		}
	}
	if invert {
		for i := range ev {
			ev[i].match = !ev[i].match
		}
	}
	return ev
}

// appendPiece appends the piece [s, e) of sp to out unless it is empty.
func appendPiece(out []span, sp span, s, e int32) []span {
	if s < e {
		out = append(out, span{start: s, end: e, first: sp.first && s == sp.start})
	}
	return out
}

// mergePieces folds events into pieces, left to right: an event extends
// the piece before it when its match flag and that of the event before it
// (prev) say so for the behaviour: a match after a gap
// (MergedWithPrevious), a gap after a match (MergedWithNext: HF folds from
// the right, a match extending the piece after it, which cuts the same
// pieces), or the same flag (Contiguous).
func mergePieces(out []span, sp span, ev []splitEvent, behavior int) []span {
	ps, pe, have, prev := int32(0), int32(0), false, false
	for _, e := range ev {
		var extend bool
		switch behavior {
		case behMergedWithPrevious:
			extend = e.match && !prev
		case behMergedWithNext:
			extend = prev && !e.match
		case behContiguous:
			extend = e.match == prev
		}
		if have && extend {
			pe = e.end
		} else {
			if have {
				out = appendPiece(out, sp, ps, pe)
			}
			ps, pe, have = e.start, e.end, true
		}
		prev = e.match
	}
	if have {
		out = appendPiece(out, sp, ps, pe)
	}
	return out
}

// charMatches fills st.matches with every character of sp for which in
// reports true, one match each (HF's Pattern for a char predicate).
func charMatches(st *genState, sp span, in func(r rune, cl uint16) bool) {
	st.matches = st.matches[:0]
	text := st.arena
	for i := sp.start; i < sp.end; {
		var r rune
		sz := int32(1)
		if b := text[i]; b < utf8.RuneSelf {
			r = rune(b)
		} else {
			var n int
			r, n = utf8.DecodeRune(text[i:sp.end])
			sz = int32(n)
		}
		if in(r, st.tab.class(r)) {
			st.matches = append(st.matches, span{start: i, end: i + sz})
		}
		i += sz
	}
}

// splitPre is Split: a regex (or a recognised pattern's scanner) or a
// string, a behaviour, invert.
type splitPre struct {
	re       *regex
	scan     scanKind
	behavior int
	invert   bool
}

func (p *splitPre) preTokenize(st *genState, in, out []span) ([]span, error) {
	for _, sp := range in {
		st.matches = st.matches[:0]
		text := st.arena[:sp.end]
		if p.scan != scanRegex && p.scan != scanGPT2 {
			for i := int(sp.start); i < int(sp.end); {
				j := p.scan.next(st.tab, text[sp.start:], i-int(sp.start)) + int(sp.start)
				st.matches = append(st.matches, span{start: int32(i), end: int32(j)})
				i = j
			}
		} else {
			seg := text[sp.start:]
			err := st.re.findAll(p.re, seg, func(s, e int) {
				st.matches = append(st.matches, span{start: sp.start + int32(s), end: sp.start + int32(e)})
			})
			if err != nil {
				return out, err
			}
		}
		out = splitPieces(st, out, sp, p.behavior, p.invert)
	}
	return out, nil
}

// byteLevelPre is ByteLevel: a space before each piece (add_prefix_space),
// GPT-2's pattern (use_regex), then every byte as its byte-level character
// (done by the model on raw pieces, or by materializeRaw).
type byteLevelPre struct {
	prefixSpace, useRegex bool
	gpt2                  *bytePair // the GPT-2 scanner
}

func (p *byteLevelPre) preTokenize(st *genState, in, out []span) ([]span, error) {
	for _, sp := range in {
		if p.prefixSpace && sp.start < sp.end && st.arena[sp.start] != ' ' {
			start := int32(len(st.arena))
			st.arena = append(st.arena, ' ')
			st.arena = append(st.arena, st.arena[sp.start:sp.end]...)
			sp = span{start: start, end: int32(len(st.arena)), first: sp.first}
		}
		if !p.useRegex {
			sp.raw = true
			if sp.start < sp.end {
				out = append(out, sp)
			}
			continue
		}
		text := st.arena[sp.start:sp.end]
		for i := 0; i < len(text); {
			j := p.gpt2.nextPreToken(text, i, false)
			out = append(out, span{start: sp.start + int32(i), end: sp.start + int32(j), first: sp.first && i == 0, raw: true})
			i = j
		}
	}
	return out, nil
}

// PrependScheme values of Metaspace.
const (
	prependAlways = iota
	prependFirst
	prependNever
)

// metaspacePre is Metaspace: ' ' becomes the replacement character, which
// is prepended (always, on the first piece, or never) and split on (the
// replacement starts each piece).
type metaspacePre struct {
	repl   string
	scheme int
	split  bool
}

func (p *metaspacePre) preTokenize(st *genState, in, out []span) ([]span, error) {
	for _, sp := range in {
		start := int32(len(st.arena))
		for k := sp.start; k < sp.end; k++ {
			if c := st.arena[k]; c == ' ' {
				st.arena = append(st.arena, p.repl...)
			} else {
				st.arena = append(st.arena, c)
			}
		}
		text := st.arena[start:]
		if len(text) > 0 && !hasPrefix(text, p.repl) && (p.scheme == prependAlways || (p.scheme == prependFirst && sp.first)) {
			// Prepend: move the text right by the replacement's length.
			n := len(p.repl)
			st.arena = append(st.arena, p.repl...)
			copy(st.arena[int(start)+n:], st.arena[start:len(st.arena)-n])
			copy(st.arena[start:], p.repl)
		}
		nsp := span{start: start, end: int32(len(st.arena)), first: sp.first}
		if !p.split {
			if nsp.start < nsp.end {
				out = append(out, nsp)
			}
			continue
		}
		r, _ := utf8.DecodeRuneInString(p.repl)
		charMatches(st, nsp, func(c rune, _ uint16) bool { return c == r })
		out = splitPieces(st, out, nsp, behMergedWithNext, false)
	}
	return out, nil
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// classPre splits on characters of a class with a behaviour: WhitespaceSplit
// (Rust whitespace, Removed), Punctuation (HF's is_punc, with its
// behaviour), Digits (Rust's is_numeric: Isolated, or Contiguous),
// CharDelimiterSplit (one character, Removed).
type classPre struct {
	in       func(r rune, cl uint16) bool
	behavior int
}

func (p *classPre) preTokenize(st *genState, in, out []span) ([]span, error) {
	for _, sp := range in {
		charMatches(st, sp, p.in)
		out = splitPieces(st, out, sp, p.behavior, false)
	}
	return out, nil
}

func isRustSpace(_ rune, cl uint16) bool { return cl&cWhite != 0 }
func isHFPunct(_ rune, cl uint16) bool   { return cl&cPunct != 0 }
func isRustNumeric(r rune, _ uint16) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return inRanges(hfNumeric[:], r)
}

// whitespacePre is Whitespace: runs of \w and runs of [^\w\s], whitespace
// removed. HF runs this one with Rust's regex crate, not Oniguruma: its \w
// has Join_Control and not the No numbers.
type whitespacePre struct{}

func (whitespacePre) preTokenize(st *genState, in, out []span) ([]span, error) {
	text := st.arena
	kind := func(i int32, end int32) (int, int32) {
		r, sz := rune(text[i]), int32(1)
		if r >= utf8.RuneSelf {
			var n int
			r, n = utf8.DecodeRune(text[i:end])
			sz = int32(n)
		}
		switch {
		case isRustWord(r):
			return 1, sz
		case st.tab.class(r)&cS != 0:
			return 0, sz
		}
		return 2, sz
	}
	for _, sp := range in {
		for i := sp.start; i < sp.end; {
			k, sz := kind(i, sp.end)
			if k == 0 {
				i += sz
				continue
			}
			j := i + sz
			for j < sp.end {
				k2, sz2 := kind(j, sp.end)
				if k2 != k {
					break
				}
				j += sz2
			}
			out = append(out, span{start: i, end: j, first: sp.first && i == sp.start})
			i = j
		}
	}
	return out, nil
}

// bertPre is BertPreTokenizer: split on Rust whitespace (removed), then
// isolate HF's punctuation.
type bertPre struct{}

func (bertPre) preTokenize(st *genState, in, out []span) ([]span, error) {
	tmp := st.spans2[:0]
	for _, sp := range in {
		charMatches(st, sp, isRustSpace)
		tmp = splitPieces(st, tmp, sp, behRemoved, false)
	}
	for _, sp := range tmp {
		charMatches(st, sp, isHFPunct)
		out = splitPieces(st, out, sp, behIsolated, false)
	}
	st.spans2 = tmp
	return out, nil
}

// fixedLengthPre is FixedLength: each piece cut into pieces of n
// characters (the last one shorter).
type fixedLengthPre struct{ n int }

func (p fixedLengthPre) preTokenize(st *genState, in, out []span) ([]span, error) {
	for _, sp := range in {
		start, count := sp.start, 0
		for k := sp.start; k < sp.end; {
			_, sz := utf8.DecodeRune(st.arena[k:sp.end])
			k += int32(sz)
			if count++; count == p.n {
				out = appendPiece(out, sp, start, k)
				start, count = k, 0
			}
		}
		out = appendPiece(out, sp, start, sp.end)
	}
	return out, nil
}
