package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a backtracking regular-expression engine with Oniguruma's
// semantics, as Hugging Face tokenizers runs the patterns of Split
// pre-tokenizers and Replace normalizers: leftmost-first alternation, greedy,
// lazy and possessive quantifiers, look-ahead and look-behind, atomic groups,
// line anchors (^ and $ match at line boundaries, . does not match \n unless
// (?m)), and character classes whose Unicode properties come from Oniguruma
// itself (unicode_tables.go), so that \p{L}, \s or \w match exactly the code
// points HF's do.
//
// What Oniguruma does that this engine does not (back-references, \K, \X,
// \R, POSIX brackets, case-insensitive matching outside ASCII letters, ...)
// is an error at compile time, never a silent difference. Case-insensitive
// matching is where Oniguruma folds several characters into one (ß matches
// (?i)ss), so under (?i) only ASCII letters, never repeated, and never an
// adjacent pair that some character folds to ("ss", "st", "ff", "fi", "fl"),
// are accepted.

// regex is a compiled pattern. It is read-only and shared; matching state
// lives in a reMatcher.
type regex struct {
	src     string
	prog    []reInst
	classes []*reClass
	nslots  int
	first   *reClass // characters a match can start with; nil: any position (the pattern can match empty)
}

type reOp uint8

const (
	opMatch     reOp = iota
	opRune           // one ASCII-or-not rune: arg
	opClass          // one character of classes[arg]
	opSplit          // try x, then y
	opJmp            // go to x
	opAssert         // arg: assertion kind
	opLook           // sub-program x..y (ends in opMatch); arg: look kind
	opAtomic         // sub-program x..y, first match only, then continue at y
	opSetSlot        // slots[arg] = pos (restored on backtracking)
	opCheckSlot      // fail when pos == slots[arg] (an empty loop iteration)
)

type reInst struct {
	op   reOp
	arg  int32
	x, y int32
}

// Assertions.
const (
	asLineStart = iota // ^
	asLineEnd          // $
	asTextStart        // \A
	asTextEnd          // \z
	asTextEndNL        // \Z: end, or before a final \n
	asWordB            // \b
	asNotWordB         // \B
)

// Look-around kinds.
const (
	lookAhead = iota
	lookNotAhead
	lookBehind
	lookNotBehind
)

// reClass is a set of code points: a bitmap of the BMP and sorted ranges
// above it.
type reClass struct {
	bmp   []uint64 // 1024 words
	upper []runeRange
}

func newReClass(rs []runeRange) *reClass {
	c := &reClass{bmp: make([]uint64, 0x10000/64)}
	for _, r := range rs {
		if r.lo < 0x10000 {
			lo, hi := int(r.lo), min(int(r.hi), 0xFFFF)
			for w := lo >> 6; w <= hi>>6; w++ {
				mask := ^uint64(0)
				if w == lo>>6 {
					mask &= ^uint64(0) << (lo & 63)
				}
				if w == hi>>6 {
					mask &= ^uint64(0) >> (63 - hi&63)
				}
				c.bmp[w] |= mask
			}
		}
		if r.hi >= 0x10000 {
			c.upper = append(c.upper, runeRange{max(r.lo, 0x10000), r.hi})
		}
	}
	return c
}

func (c *reClass) has(r rune) bool {
	if r < 0x10000 {
		return c.bmp[r>>6]&(1<<(r&63)) != 0
	}
	return inRanges(c.upper, r)
}

// Parsing: an AST first.

type reNodeKind uint8

const (
	nLit    reNodeKind = iota // runes: one of set (a fold orbit or a single rune)
	nClass                    // ranges
	nCat                      // subs in sequence
	nAlt                      // subs, first that matches
	nRepeat                   // sub{min,max}; max < 0: unbounded
	nAssert                   // assertion
	nLook                     // look-around of sub
	nAtomic                   // atomic group of sub
	nEmpty
)

type reNode struct {
	kind     reNodeKind
	runes    []rune // nLit: the characters that match (more than one under (?i))
	ranges   []runeRange
	subs     []*reNode
	min, max int
	lazy     bool
	assert   int
	look     int
	fold     bool // nLit under (?i)
}

type reParser struct {
	src string
	pos int
}

func (p *reParser) errf(format string, a ...any) error {
	return fmt.Errorf("regular expression %q at offset %d: %s", p.src, p.pos, fmt.Sprintf(format, a...))
}

type reFlags struct {
	icase, dotall bool
}

// compileRegex compiles an Oniguruma pattern.
func compileRegex(src string) (*regex, error) {
	if !utf8.ValidString(src) {
		return nil, fmt.Errorf("regular expression %q: not valid UTF-8", src)
	}
	p := &reParser{src: src}
	n, err := p.parseAlt(reFlags{}, 0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, p.errf("unbalanced )")
	}
	if err := checkFold(n, p); err != nil {
		return nil, err
	}
	re := &regex{src: src}
	c := &reCompiler{re: re}
	c.emit(n)
	c.add(reInst{op: opMatch})
	if len(c.prog) > 100_000 || len(re.classes) > 1000 {
		return nil, fmt.Errorf("regular expression %q: too large once its repetitions are expanded", src)
	}
	re.prog = c.prog
	re.nslots = c.nslots
	if fs, ok := firstSet(n); ok {
		re.first = newReClass(fs)
	}
	return re, nil
}

// literalRegex compiles a pattern that matches s literally.
func literalRegex(s string) *regex {
	var sub []*reNode
	for _, r := range s {
		sub = append(sub, &reNode{kind: nLit, runes: []rune{r}})
	}
	n := &reNode{kind: nCat, subs: sub}
	re := &regex{src: s}
	c := &reCompiler{re: re}
	c.emit(n)
	c.add(reInst{op: opMatch})
	re.prog = c.prog
	if fs, ok := firstSet(n); ok {
		re.first = newReClass(fs)
	}
	return re
}

func (p *reParser) more() bool { return p.pos < len(p.src) }
func (p *reParser) peek() byte { return p.src[p.pos] }

func (p *reParser) parseAlt(f reFlags, depth int) (*reNode, error) {
	if depth > 100 {
		return nil, p.errf("nested too deeply")
	}
	var alts []*reNode
	for {
		n, err := p.parseCat(&f, depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
		if !p.more() || p.peek() != '|' {
			break
		}
		p.pos++
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &reNode{kind: nAlt, subs: alts}, nil
}

// parseCat parses a sequence up to | or ). Inline flags "(?i)" change f for
// the rest of the enclosing group.
func (p *reParser) parseCat(f *reFlags, depth int) (*reNode, error) {
	var seq []*reNode
	for p.more() && p.peek() != '|' && p.peek() != ')' {
		atom, err := p.parseAtom(f, depth)
		if err != nil {
			return nil, err
		}
		if atom == nil {
			continue // a flag group
		}
		atom, err = p.parseQuant(atom)
		if err != nil {
			return nil, err
		}
		seq = append(seq, atom)
	}
	switch len(seq) {
	case 0:
		return &reNode{kind: nEmpty}, nil
	case 1:
		return seq[0], nil
	}
	return &reNode{kind: nCat, subs: seq}, nil
}

func (p *reParser) parseQuant(atom *reNode) (*reNode, error) {
	for p.more() {
		min, max := -1, -1
		start := p.pos
		switch p.peek() {
		case '*':
			min, max = 0, -1
			p.pos++
		case '+':
			min, max = 1, -1
			p.pos++
		case '?':
			min, max = 0, 1
			p.pos++
		case '{':
			lo, hi, ok := p.parseInterval()
			if !ok {
				p.pos = start
				return atom, nil // a literal {, as Oniguruma reads it
			}
			min, max = lo, hi
		default:
			return atom, nil
		}
		if atom.kind == nAssert || atom.kind == nLook {
			return nil, p.errf("quantifier on an assertion")
		}
		if max > 1000 || min > 1000 {
			return nil, p.errf("repetition count over 1000")
		}
		rep := &reNode{kind: nRepeat, subs: []*reNode{atom}, min: min, max: max}
		if p.more() {
			switch p.peek() {
			case '?':
				rep.lazy = true
				p.pos++
			case '+':
				if p.src[start] != '{' { // Oniguruma: {n,m}+ is a repetition of a repetition
					p.pos++
					rep = &reNode{kind: nAtomic, subs: []*reNode{rep}}
				}
			}
		}
		atom = rep
	}
	return atom, nil
}

// parseInterval reads {n}, {n,}, {,m} or {n,m} at p.pos.
func (p *reParser) parseInterval() (int, int, bool) {
	end := strings.IndexByte(p.src[p.pos:], '}')
	if end < 0 {
		return 0, 0, false
	}
	body := p.src[p.pos+1 : p.pos+end]
	lo, hi, comma := strings.Cut(body, ",")
	num := func(s string) (int, bool) {
		if s == "" || len(s) > 6 {
			return 0, false
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		n, _ := strconv.Atoi(s)
		return n, true
	}
	var a, b int
	var ok bool
	switch {
	case !comma:
		if a, ok = num(lo); !ok {
			return 0, 0, false
		}
		b = a
	case lo == "":
		if b, ok = num(hi); !ok {
			return 0, 0, false
		}
	case hi == "":
		if a, ok = num(lo); !ok {
			return 0, 0, false
		}
		b = -1
	default:
		if a, ok = num(lo); !ok {
			return 0, 0, false
		}
		if b, ok = num(hi); !ok || b < a {
			return 0, 0, false
		}
	}
	p.pos += end + 1
	return a, b, true
}

func (p *reParser) parseAtom(f *reFlags, depth int) (*reNode, error) {
	c := p.peek()
	switch c {
	case '(':
		return p.parseGroup(f, depth)
	case '[':
		rs, err := p.parseClass(depth)
		if err != nil {
			return nil, err
		}
		return p.classNode(rs, *f)
	case '.':
		p.pos++
		if f.dotall {
			return p.classNode([]runeRange{{0, 0x10FFFF}}, *f)
		}
		return p.classNode([]runeRange{{0, '\n' - 1}, {'\n' + 1, 0x10FFFF}}, *f)
	case '^':
		p.pos++
		return &reNode{kind: nAssert, assert: asLineStart}, nil
	case '$':
		p.pos++
		return &reNode{kind: nAssert, assert: asLineEnd}, nil
	case '\\':
		return p.parseEscape(*f)
	case '*', '+', '?':
		return nil, p.errf("nothing to repeat")
	}
	r, sz := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += sz
	return p.litNode(r, *f)
}

func (p *reParser) litNode(r rune, f reFlags) (*reNode, error) {
	if !f.icase {
		return &reNode{kind: nLit, runes: []rune{r}}, nil
	}
	if r < utf8.RuneSelf {
		if u := r &^ 0x20; u >= 'A' && u <= 'Z' {
			return &reNode{kind: nLit, runes: onigFoldASCII[u-'A'], fold: true}, nil
		}
		return &reNode{kind: nLit, runes: []rune{r}}, nil
	}
	return nil, p.errf("case-insensitive matching of %q is not supported (Oniguruma folds it with other characters)", r)
}

func (p *reParser) classNode(rs []runeRange, f reFlags) (*reNode, error) {
	if f.icase {
		return nil, p.errf("a character class under (?i) is not supported")
	}
	return &reNode{kind: nClass, ranges: rs}, nil
}

func (p *reParser) parseGroup(f *reFlags, depth int) (*reNode, error) {
	p.pos++ // (
	inner := *f
	var wrap func(*reNode) *reNode
	if strings.HasPrefix(p.src[p.pos:], "?") {
		var none bool
		var err error
		if wrap, none, err = p.groupKind(f, &inner); err != nil || none {
			return nil, err
		}
	}
	n, err := p.parseAlt(inner, depth+1)
	if err != nil {
		return nil, err
	}
	if !p.more() || p.peek() != ')' {
		return nil, p.errf("missing )")
	}
	p.pos++
	if wrap != nil {
		n = wrap(n)
	}
	return n, nil
}

// groupKind reads what follows "(?" at p.pos: the kind of group, as wrap
// (nil: a plain group), or none true for a comment or a flag group, which
// have no node. Flags go to inner for a group's body, or to f for the rest
// of the enclosing group.
func (p *reParser) groupKind(f, inner *reFlags) (wrap func(*reNode) *reNode, none bool, err error) {
	rest := p.src[p.pos+1:]
	if kind, n := lookAroundPrefix(rest); n > 0 {
		p.pos += 1 + n
		return lookWrap(kind), false, nil
	}
	switch {
	case strings.HasPrefix(rest, ":"):
		p.pos += 2
	case strings.HasPrefix(rest, ">"):
		p.pos += 2
		wrap = func(n *reNode) *reNode { return &reNode{kind: nAtomic, subs: []*reNode{n}} }
	case strings.HasPrefix(rest, "<"), strings.HasPrefix(rest, "P<"), strings.HasPrefix(rest, "'"):
		// A named group: the name does not matter here.
		end := strings.IndexAny(rest, ">'")
		if end < 0 {
			return nil, false, p.errf("unterminated group name")
		}
		p.pos += 1 + end + 1
	case strings.HasPrefix(rest, "#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return nil, false, p.errf("unterminated comment")
		}
		p.pos += 1 + end + 1
		return nil, true, nil
	default:
		none, err = p.groupFlags(f, inner, rest)
		return nil, none, err
	}
	return wrap, false, nil
}

// lookAroundPrefix reads a look-around group's opening after "(?": its
// kind and length, or n 0 when rest opens no look-around.
func lookAroundPrefix(rest string) (kind, n int) {
	for _, l := range [...]struct {
		prefix string
		kind   int
	}{{"=", lookAhead}, {"!", lookNotAhead}, {"<=", lookBehind}, {"<!", lookNotBehind}} {
		if strings.HasPrefix(rest, l.prefix) {
			return l.kind, len(l.prefix)
		}
	}
	return 0, 0
}

// lookWrap returns the maker of a look-around node of kind.
func lookWrap(kind int) func(*reNode) *reNode {
	return func(n *reNode) *reNode { return &reNode{kind: nLook, look: kind, subs: []*reNode{n}} }
}

// groupFlags reads flags, (?imx-imx) or (?imx-imx:...), from rest (what
// follows the "?"): the first applies to the rest of the enclosing group
// (f; none true), the second to the group's body (inner).
func (p *reParser) groupFlags(f, inner *reFlags, rest string) (none bool, err error) {
	k := 0
	on := true
	nf := *f
	for ; k < len(rest); k++ {
		switch rest[k] {
		case 'i':
			nf.icase = on
		case 'm':
			nf.dotall = on
		case '-':
			on = false
		case ':', ')':
		default:
			p.pos += 1 + k
			return false, p.errf("group option %q is not supported", rest[k])
		}
		if rest[k] == ':' || rest[k] == ')' {
			break
		}
	}
	if k == len(rest) {
		return false, p.errf("unterminated group")
	}
	p.pos += 1 + k + 1
	if rest[k] == ')' {
		*f = nf // applies to the rest of the enclosing group
		return true, nil
	}
	*inner = nf
	return false, nil
}

// escapeClass returns the ranges of a class escape (\s \S \d \D \w \W \h
// \H \p{..} \P{..}), or ok false when the escape at p.pos is not one.
func (p *reParser) escapeClass() ([]runeRange, bool, error) {
	if p.pos+1 >= len(p.src) {
		return nil, false, nil
	}
	c := p.src[p.pos+1]
	var rs []runeRange
	switch c | 0x20 {
	case 's':
		rs = onigEscSpace[:]
	case 'd':
		rs = onigEscDigit[:]
	case 'w':
		rs = onigEscWord[:]
	case 'h':
		rs = onigEscHex[:]
	case 'p':
		p.pos += 2
		if !p.more() || p.peek() != '{' {
			return nil, false, p.errf("\\p needs {NAME}")
		}
		end := strings.IndexByte(p.src[p.pos:], '}')
		if end < 0 {
			return nil, false, p.errf("unterminated \\p{")
		}
		name := p.src[p.pos+1 : p.pos+end]
		p.pos += end + 1
		neg := c == 'P'
		if strings.HasPrefix(name, "^") {
			neg, name = !neg, name[1:]
		}
		rs, ok := unicodeProperty(name)
		if !ok {
			p.pos -= end + 1
			return nil, false, p.errf("Unicode property \\p{%s} is not supported", name)
		}
		if neg {
			rs = complementRanges(rs)
		}
		return rs, true, nil
	default:
		return nil, false, nil
	}
	p.pos += 2
	if c >= 'A' && c <= 'Z' {
		rs = complementRanges(rs)
	}
	return rs, true, nil
}

func (p *reParser) parseEscape(f reFlags) (*reNode, error) {
	rs, ok, err := p.escapeClass()
	if err != nil {
		return nil, err
	}
	if ok {
		return p.classNode(rs, f)
	}
	if p.pos+1 >= len(p.src) {
		return nil, p.errf("trailing backslash")
	}
	switch c := p.src[p.pos+1]; c {
	case 'A', 'z', 'Z', 'b', 'B':
		p.pos += 2
		a := map[byte]int{'A': asTextStart, 'z': asTextEnd, 'Z': asTextEndNL, 'b': asWordB, 'B': asNotWordB}[c]
		return &reNode{kind: nAssert, assert: a}, nil
	}
	r, err := p.escapedRune()
	if err != nil {
		return nil, err
	}
	return p.litNode(r, f)
}

// escapedRune reads a single-character escape at p.pos.
func (p *reParser) escapedRune() (rune, error) {
	if p.pos+1 >= len(p.src) {
		return 0, p.errf("a pattern that ends in \\")
	}
	c := p.src[p.pos+1]
	p.pos += 2
	switch c {
	case 't':
		return '\t', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 'f':
		return '\f', nil
	case 'v':
		return '\v', nil
	case 'a':
		return '\a', nil
	case 'e':
		return 0x1B, nil
	case 'x':
		if p.more() && p.peek() == '{' {
			end := strings.IndexByte(p.src[p.pos:], '}')
			if end < 0 {
				return 0, p.errf("unterminated \\x{")
			}
			v, err := strconv.ParseUint(p.src[p.pos+1:p.pos+end], 16, 32)
			if err != nil || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000) {
				return 0, p.errf("bad \\x{...}")
			}
			p.pos += end + 1
			return rune(v), nil
		}
		n := 0
		for n < 2 && p.pos+n < len(p.src) && isHex(p.src[p.pos+n]) {
			n++
		}
		if n == 0 {
			return 0, p.errf("bad \\x")
		}
		v, _ := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		p.pos += n
		return rune(v), nil
	case 'u':
		if p.pos+4 > len(p.src) {
			return 0, p.errf("bad \\u")
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+4], 16, 32)
		if err != nil || (v >= 0xD800 && v < 0xE000) {
			return 0, p.errf("bad \\u")
		}
		p.pos += 4
		return rune(v), nil
	case '0':
		n := 0
		for n < 2 && p.pos+n < len(p.src) && p.src[p.pos+n] >= '0' && p.src[p.pos+n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint("0"+p.src[p.pos:p.pos+n], 8, 32)
		p.pos += n
		return rune(v), nil
	}
	if c >= utf8.RuneSelf {
		p.pos -= 2
		r, sz := utf8.DecodeRuneInString(p.src[p.pos+1:])
		p.pos += 1 + sz
		return r, nil
	}
	if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9') {
		p.pos -= 2
		return 0, p.errf("escape \\%c is not supported", c)
	}
	return rune(c), nil // an escaped punctuation character stands for itself
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'f')
}

// parseClass reads a bracket expression at p.pos: [...], [^...], with
// ranges, escapes, properties, nested classes and && intersections.
func (p *reParser) parseClass(depth int) ([]runeRange, error) {
	if depth > 100 {
		return nil, p.errf("nested too deeply")
	}
	p.pos++ // [
	neg := false
	if p.more() && p.peek() == '^' {
		neg = true
		p.pos++
	}
	var acc []runeRange   // the current operand of &&
	var inter []runeRange // the intersection so far
	haveInter := false
	for first := true; ; first = false {
		if !p.more() {
			return nil, p.errf("missing ]")
		}
		c := p.peek()
		if c == ']' && !first {
			p.pos++
			break
		}
		var rs []runeRange
		var err error
		switch {
		case strings.HasPrefix(p.src[p.pos:], "&&"):
			p.pos += 2
			if haveInter {
				inter = intersectRanges(inter, normRanges(acc))
			} else {
				inter, haveInter = normRanges(acc), true
			}
			acc = nil
			continue
		case c == '[':
			if strings.HasPrefix(p.src[p.pos:], "[:") {
				return nil, p.errf("POSIX bracket classes are not supported")
			}
			rs, err = p.parseClass(depth + 1)
		default:
			rs, err = p.classItem()
		}
		if err != nil {
			return nil, err
		}
		acc = append(acc, rs...)
	}
	rs := normRanges(acc)
	if haveInter {
		rs = intersectRanges(inter, rs)
	}
	if neg {
		rs = complementRanges(rs)
	}
	return rs, nil
}

// classItem reads one item of a bracket expression at p.pos: a class
// escape, a character, or a range of characters.
func (p *reParser) classItem() ([]runeRange, error) {
	if p.peek() == '\\' {
		rs, ok, err := p.escapeClass()
		if err != nil {
			return nil, err
		}
		if ok {
			return rs, nil
		}
	}
	lo, err := p.classRune()
	if err != nil {
		return nil, err
	}
	hi := lo
	if p.pos+1 < len(p.src) && p.peek() == '-' && p.src[p.pos+1] != ']' {
		p.pos++
		if hi, err = p.rangeEnd(); err != nil {
			return nil, err
		}
		if hi < lo {
			return nil, p.errf("range out of order")
		}
	}
	return []runeRange{{lo, hi}}, nil
}

// classRune reads a character of a bracket expression at p.pos, where \b
// is a backspace.
func (p *reParser) classRune() (rune, error) {
	if p.peek() != '\\' {
		r, sz := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += sz
		return r, nil
	}
	if p.pos+1 >= len(p.src) {
		return 0, p.errf("trailing backslash")
	}
	if p.src[p.pos+1] == 'b' {
		p.pos += 2
		return '\b', nil
	}
	return p.escapedRune()
}

// rangeEnd reads the character after the - of a range at p.pos.
func (p *reParser) rangeEnd() (rune, error) {
	switch p.peek() {
	case '[':
		return 0, p.errf("bad range")
	case '\\':
		if _, ok, err := p.escapeClass(); err != nil {
			return 0, err
		} else if ok {
			return 0, p.errf("bad range end")
		}
		return p.escapedRune()
	}
	r, sz := utf8.DecodeRuneInString(p.src[p.pos:])
	p.pos += sz
	return r, nil
}

// unicodeProperty returns the ranges of a \p{NAME} that Oniguruma knows and
// these tables hold.
func unicodeProperty(name string) ([]runeRange, bool) {
	key := strings.ToLower(strings.NewReplacer("_", "", " ", "", "-", "").Replace(name))
	long := map[string]string{
		"letter": "l", "uppercaseletter": "lu", "lowercaseletter": "ll", "titlecaseletter": "lt", "modifierletter": "lm", "otherletter": "lo",
		"mark": "m", "combiningmark": "m", "nonspacingmark": "mn", "spacingmark": "mc", "enclosingmark": "me",
		"number": "n", "decimalnumber": "nd", "letternumber": "nl", "othernumber": "no",
		"punctuation": "p", "connectorpunctuation": "pc", "dashpunctuation": "pd", "openpunctuation": "ps", "closepunctuation": "pe",
		"initialpunctuation": "pi", "finalpunctuation": "pf", "otherpunctuation": "po",
		"symbol": "s", "mathsymbol": "sm", "currencysymbol": "sc", "modifiersymbol": "sk", "othersymbol": "so",
		"separator": "z", "spaceseparator": "zs", "lineseparator": "zl", "paragraphseparator": "zp",
		"control": "cc", "cntrl": "cc", "format": "cf", "privateuse": "co",
	}
	if k, ok := long[key]; ok {
		key = k
	}
	cats := map[string][]runeRange{
		"lu": onigCatLu[:], "ll": onigCatLl[:], "lt": onigCatLt[:], "lm": onigCatLm[:], "lo": onigCatLo[:],
		"mn": onigCatMn[:], "mc": onigCatMc[:], "me": onigCatMe[:], "nd": onigCatNd[:], "nl": onigCatNl[:], "no": onigCatNo[:],
		"pc": onigCatPc[:], "pd": onigCatPd[:], "ps": onigCatPs[:], "pe": onigCatPe[:], "pi": onigCatPi[:], "pf": onigCatPf[:], "po": onigCatPo[:],
		"sm": onigCatSm[:], "sc": onigCatSc[:], "sk": onigCatSk[:], "so": onigCatSo[:],
		"zs": onigCatZs[:], "zl": onigCatZl[:], "zp": onigCatZp[:], "cc": onigCatCc[:], "cf": onigCatCf[:], "co": onigCatCo[:],
		"han": onigScriptHan[:], "hiragana": onigScriptHiragana[:], "katakana": onigScriptKatakana[:], "hangul": onigScriptHangul[:],
		"latin": onigScriptLatin[:], "greek": onigScriptGreek[:], "cyrillic": onigScriptCyrillic[:], "arabic": onigScriptArabic[:],
		"hebrew": onigScriptHebrew[:], "thai": onigScriptThai[:], "devanagari": onigScriptDevanagari[:],
		"common": onigScriptCommon[:], "inherited": onigScriptInherited[:],
		"space": onigEscSpace[:], "word": onigEscWord[:], "digit": onigEscDigit[:], "xdigit": onigEscHex[:],
		"any": {{0, 0x10FFFF}},
	}
	if rs, ok := cats[key]; ok {
		return rs, true
	}
	if len(key) == 1 && strings.Contains("lmnpsz", key) {
		var all []runeRange
		for k, rs := range cats {
			if len(k) == 2 && k[0] == key[0] {
				all = append(all, rs...)
			}
		}
		return normRanges(all), true
	}
	return nil, false
}

// normRanges sorts and merges ranges.
func normRanges(rs []runeRange) []runeRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b runeRange) int { return int(a.lo - b.lo) })
	var out []runeRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// complementRanges returns the code points (surrogates aside) not in rs.
func complementRanges(rs []runeRange) []runeRange {
	rs = normRanges(rs)
	var out []runeRange
	next := rune(0)
	for _, r := range rs {
		if r.lo > next {
			out = append(out, runeRange{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= 0x10FFFF {
		out = append(out, runeRange{next, 0x10FFFF})
	}
	return out
}

func intersectRanges(a, b []runeRange) []runeRange {
	var out []runeRange
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		if lo <= hi {
			out = append(out, runeRange{lo, hi})
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	return out
}

// checkFold enforces the (?i) restrictions described at the top of the
// file: folded letters are never repeated, and no adjacent pair of them is
// one that a single character folds to.
func checkFold(n *reNode, p *reParser) error {
	var walk func(n *reNode, repeated bool) error
	risky := []string{"ss", "st", "ff", "fi", "fl"}
	lower := func(n *reNode) (byte, bool) {
		if n.kind == nLit && n.fold {
			return byte(n.runes[0]) | 0x20, true
		}
		return 0, false
	}
	walk = func(n *reNode, repeated bool) error {
		if n.kind == nLit && n.fold && repeated {
			return fmt.Errorf("regular expression %q: a repeated case-insensitive letter is not supported (Oniguruma folds ß to ss)", p.src)
		}
		if n.kind == nCat {
			for i := 0; i+1 < len(n.subs); i++ {
				a, okA := lower(n.subs[i])
				b, okB := lower(n.subs[i+1])
				if okA && okB && slices.Contains(risky, string([]byte{a, b})) {
					return fmt.Errorf("regular expression %q: case-insensitive %q is not supported (a single character folds to it)", p.src, string([]byte{a, b}))
				}
			}
		}
		rep := repeated || (n.kind == nRepeat && (n.max < 0 || n.max > 1))
		for _, s := range n.subs {
			if err := walk(s, rep); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n, false)
}

// firstSet returns the characters a match of n can start with; ok is false
// when n can match the empty string. Assertions and look-arounds consume
// nothing, so the first character comes from what follows them.
func firstSet(n *reNode) ([]runeRange, bool) {
	rs, empty := firstChars(n)
	return normRanges(rs), !empty
}

// firstChars returns the characters that can start a non-empty match of n,
// and whether n can match the empty string.
func firstChars(n *reNode) ([]runeRange, bool) {
	switch n.kind {
	case nLit:
		var rs []runeRange
		for _, r := range n.runes {
			rs = append(rs, runeRange{r, r})
		}
		return rs, false
	case nClass:
		return n.ranges, false
	case nCat:
		var all []runeRange
		for _, s := range n.subs {
			rs, empty := firstChars(s)
			all = append(all, rs...)
			if !empty {
				return all, false
			}
		}
		return all, true
	case nAlt:
		var all []runeRange
		anyEmpty := false
		for _, s := range n.subs {
			rs, empty := firstChars(s)
			all = append(all, rs...)
			anyEmpty = anyEmpty || empty
		}
		return all, anyEmpty
	case nRepeat:
		rs, empty := firstChars(n.subs[0])
		return rs, empty || n.min == 0
	case nAtomic:
		return firstChars(n.subs[0])
	}
	return nil, true // assertions, look-arounds, empty
}

// nullable reports whether n can match the empty string.
func nullable(n *reNode) bool {
	switch n.kind {
	case nLit, nClass:
		return false
	case nCat:
		for _, s := range n.subs {
			if !nullable(s) {
				return false
			}
		}
		return true
	case nAlt:
		for _, s := range n.subs {
			if nullable(s) {
				return true
			}
		}
		return false
	case nRepeat:
		return n.min == 0 || nullable(n.subs[0])
	case nAtomic:
		return nullable(n.subs[0])
	}
	return true
}

// Compiling.

type reCompiler struct {
	re     *regex
	prog   []reInst
	nslots int
}

func (c *reCompiler) add(i reInst) int {
	c.prog = append(c.prog, i)
	return len(c.prog) - 1
}

func (c *reCompiler) class(rs []runeRange) int32 {
	c.re.classes = append(c.re.classes, newReClass(rs))
	return int32(len(c.re.classes) - 1)
}

func (c *reCompiler) emit(n *reNode) {
	switch n.kind {
	case nEmpty:
	case nLit:
		if len(n.runes) == 1 {
			c.add(reInst{op: opRune, arg: n.runes[0]})
			return
		}
		var rs []runeRange
		for _, r := range n.runes {
			rs = append(rs, runeRange{r, r})
		}
		c.add(reInst{op: opClass, arg: c.class(normRanges(rs))})
	case nClass:
		c.add(reInst{op: opClass, arg: c.class(n.ranges)})
	case nCat:
		for _, s := range n.subs {
			c.emit(s)
		}
	case nAlt:
		var jumps []int
		for i, s := range n.subs {
			if i == len(n.subs)-1 {
				c.emit(s)
				break
			}
			split := c.add(reInst{op: opSplit})
			c.prog[split].x = int32(len(c.prog))
			c.emit(s)
			jumps = append(jumps, c.add(reInst{op: opJmp}))
			c.prog[split].y = int32(len(c.prog))
		}
		for _, j := range jumps {
			c.prog[j].x = int32(len(c.prog))
		}
	case nRepeat:
		sub := n.subs[0]
		for range n.min {
			c.emit(sub)
		}
		if n.max < 0 {
			c.star(sub, n.lazy)
			return
		}
		// max-min optional copies, nested: (x(x(x)?)?)?
		var splits []int
		for range n.max - n.min {
			s := c.add(reInst{op: opSplit})
			splits = append(splits, s)
			c.emitBranch(s, n.lazy)
			c.emit(sub)
		}
		end := int32(len(c.prog))
		for _, s := range splits {
			c.fixExit(s, n.lazy, end)
		}
	case nAssert:
		c.add(reInst{op: opAssert, arg: int32(n.assert)})
	case nLook:
		at := c.add(reInst{op: opLook, arg: int32(n.look)})
		c.prog[at].x = int32(len(c.prog))
		c.emit(n.subs[0])
		c.add(reInst{op: opMatch})
		c.prog[at].y = int32(len(c.prog))
	case nAtomic:
		at := c.add(reInst{op: opAtomic})
		c.prog[at].x = int32(len(c.prog))
		c.emit(n.subs[0])
		c.add(reInst{op: opMatch})
		c.prog[at].y = int32(len(c.prog))
	}
}

// emitBranch fills the "continue" side of split s with the next instruction.
func (c *reCompiler) emitBranch(s int, lazy bool) {
	if lazy {
		c.prog[s].y = int32(len(c.prog))
	} else {
		c.prog[s].x = int32(len(c.prog))
	}
}

func (c *reCompiler) fixExit(s int, lazy bool, end int32) {
	if lazy {
		c.prog[s].x = end
	} else {
		c.prog[s].y = end
	}
}

// star emits sub*, guarding against empty iterations when sub can match
// the empty string.
func (c *reCompiler) star(sub *reNode, lazy bool) {
	guard := nullable(sub)
	slot := int32(-1)
	if guard {
		slot = int32(c.nslots)
		c.nslots++
	}
	loop := c.add(reInst{op: opSplit})
	c.emitBranch(loop, lazy)
	if guard {
		c.add(reInst{op: opSetSlot, arg: slot})
	}
	c.emit(sub)
	if guard {
		c.add(reInst{op: opCheckSlot, arg: slot})
	}
	c.add(reInst{op: opJmp, x: int32(loop)})
	c.fixExit(loop, lazy, int32(len(c.prog)))
}

// Matching.

// reMatcher holds the backtracking stack of one goroutine.
type reMatcher struct {
	stack []reFrame
	slots []int32
	steps int
}

type reFrame struct {
	pc, pos int32
	slot    int32 // ≥ 0: restore slots[slot] = pos when popped
}

// errRegexBudget reports a match that backtracked too much.
var errRegexBudget = errors.New("regular expression backtracked over 10 million steps on one match (Oniguruma's retry limit)")

// reStepBudget is Oniguruma's default retry-limit-in-match.
const reStepBudget = 10_000_000

// find returns the leftmost match of re in text starting at or after from:
// its start and end, or -1.
func (m *reMatcher) find(re *regex, text []byte, from int) (int, int, error) {
	if len(m.slots) < re.nslots {
		m.slots = make([]int32, re.nslots)
	}
	for start := from; start <= len(text); {
		if re.first != nil {
			// Skip to a possible first character.
			for start < len(text) {
				b := text[start]
				if b < utf8.RuneSelf {
					if re.first.bmp[b>>6]&(1<<(b&63)) != 0 {
						break
					}
					start++
					continue
				}
				r, sz := utf8.DecodeRune(text[start:])
				if re.first.has(r) {
					break
				}
				start += sz
			}
			if start == len(text) {
				return -1, -1, nil
			}
		}
		m.steps = 0
		end, err := m.run(re, text, 0, start)
		if err != nil {
			return -1, -1, err
		}
		if end >= 0 {
			return start, end, nil
		}
		if start == len(text) {
			break
		}
		_, sz := utf8.DecodeRune(text[start:])
		start += sz
	}
	return -1, -1, nil
}

// run matches the program from pc at pos and returns the end of the first
// match in backtracking order, or -1. After an instruction fails, the loop
// at its end backtracks: it is written out here rather than called, as this
// is the engine's hottest code (group runs the look-arounds and atomic
// groups).
func (m *reMatcher) run(re *regex, text []byte, pc, pos int) (int, error) {
	base := len(m.stack)
	defer func() { m.stack = m.stack[:base] }()
	prog := re.prog
	for {
		m.steps++
		if m.steps > reStepBudget {
			return -1, errRegexBudget
		}
		in := &prog[pc]
		ok := true
		switch in.op {
		case opMatch:
			return pos, nil
		case opRune:
			if r := rune(in.arg); r >= utf8.RuneSelf {
				pos, ok = runeAt(text, pos, r)
			} else if pos < len(text) && text[pos] == byte(r) {
				pos++
			} else {
				ok = false
			}
		case opClass:
			if pos >= len(text) {
				ok = false
				break
			}
			cl := re.classes[in.arg]
			if b := text[pos]; b < utf8.RuneSelf {
				if cl.bmp[b>>6]&(1<<(b&63)) == 0 {
					ok = false
				}
				pos++
				break
			}
			r, sz := utf8.DecodeRune(text[pos:])
			if !cl.has(r) {
				ok = false
			}
			pos += sz
		case opSplit:
			m.stack = append(m.stack, reFrame{pc: in.y, pos: int32(pos), slot: -1})
			pc = int(in.x)
			continue
		case opJmp:
			pc = int(in.x)
			continue
		case opAssert:
			ok = assertAt(int(in.arg), text, pos)
		case opSetSlot:
			m.stack = append(m.stack, reFrame{pc: -1, pos: m.slots[in.arg], slot: in.arg})
			m.slots[in.arg] = int32(pos)
		case opCheckSlot:
			ok = m.slots[in.arg] != int32(pos)
		case opLook, opAtomic:
			var err error
			if pc, pos, ok, err = m.group(re, text, pc, pos); err != nil {
				return -1, err
			} else if ok {
				continue
			}
		}
		if ok {
			pc++
			continue
		}
		for {
			if len(m.stack) == base {
				return -1, nil
			}
			f := m.stack[len(m.stack)-1]
			m.stack = m.stack[:len(m.stack)-1]
			if f.slot < 0 {
				pc, pos = int(f.pc), int(f.pos)
				break
			}
			m.slots[f.slot] = f.pos // a slot's saved value
		}
	}
}

// runeAt matches the rune r (not ASCII) at text[pos]: it returns the
// position after it, or ok false.
func runeAt(text []byte, pos int, r rune) (int, bool) {
	if pos < len(text) {
		if got, sz := utf8.DecodeRune(text[pos:]); got == r {
			return pos + sz, true
		}
	}
	return pos, false
}

// group runs the look-around or atomic group at pc and pos, for run:
// it returns the pc and pos to go on at, or ok false to backtrack.
func (m *reMatcher) group(re *regex, text []byte, pc, pos int) (int, int, bool, error) {
	in := &re.prog[pc]
	switch in.op {
	case opLook:
		if !m.look(re, text, in, pos) {
			return pc, pos, false, nil
		}
		if m.steps > reStepBudget {
			return pc, pos, false, errRegexBudget
		}
		return int(in.y), pos, true, nil
	}
	end, err := m.run(re, text, int(in.x), pos) // opAtomic
	if err != nil || end < 0 {
		return pc, pos, false, err
	}
	return int(in.y), end, true, nil
}

// look evaluates a look-around at pos.
func (m *reMatcher) look(re *regex, text []byte, in *reInst, pos int) bool {
	switch in.arg {
	case lookAhead, lookNotAhead:
		end, err := m.run(re, text, int(in.x), pos)
		if err != nil {
			m.steps = reStepBudget + 1
			return false
		}
		return (end >= 0) == (in.arg == lookAhead)
	}
	// Look-behind: some start before pos from which the body ends exactly
	// at pos. The body runs on text[:pos], so $ and \z see pos as the end,
	// as the lengths Oniguruma allows there are fixed.
	found := false
	for start := pos; start >= 0 && !found; start-- {
		if start < pos && !utf8.RuneStart(text[start]) {
			continue
		}
		end, err := m.run(re, text[:pos], int(in.x), start)
		if err != nil {
			m.steps = reStepBudget + 1
			return false
		}
		found = end == pos
		if pos-start > 64 {
			break // Oniguruma's look-behind is bounded; so is this search
		}
	}
	return found == (in.arg == lookBehind)
}

func isOnigWord(text []byte, pos int, before bool) bool {
	if before {
		if pos == 0 {
			return false
		}
		r, _ := utf8.DecodeLastRune(text[:pos])
		return inRanges(onigEscWord[:], r)
	}
	if pos >= len(text) {
		return false
	}
	r, _ := utf8.DecodeRune(text[pos:])
	return inRanges(onigEscWord[:], r)
}

func assertAt(kind int, text []byte, pos int) bool {
	switch kind {
	case asLineStart:
		return pos == 0 || text[pos-1] == '\n'
	case asLineEnd:
		return pos == len(text) || text[pos] == '\n'
	case asTextStart:
		return pos == 0
	case asTextEnd:
		return pos == len(text)
	case asTextEndNL:
		return pos == len(text) || (pos == len(text)-1 && text[pos] == '\n')
	case asWordB:
		return isOnigWord(text, pos, true) != isOnigWord(text, pos, false)
	case asNotWordB:
		return isOnigWord(text, pos, true) == isOnigWord(text, pos, false)
	}
	return false
}

// findAll calls fn for every match of re in text, in order, with Oniguruma's
// iteration (an empty match right where the previous match ended is
// skipped).
func (m *reMatcher) findAll(re *regex, text []byte, fn func(start, end int)) error {
	from, lastEnd := 0, -1
	for from <= len(text) {
		s, e, err := m.find(re, text, from)
		if err != nil {
			return err
		}
		if s < 0 {
			return nil
		}
		if s == e && e == lastEnd {
			if from == len(text) {
				return nil
			}
			_, sz := utf8.DecodeRune(text[from:])
			from += sz
			continue
		}
		fn(s, e)
		from, lastEnd = e, e
	}
	return nil
}
