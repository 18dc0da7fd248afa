package tokenizer

import "unicode/utf8"

// Hand-written scanners for the pre-tokenization patterns that matter for
// speed. Each returns where the match that starts at text[i] ends, exactly
// as Oniguruma's leftmost-first backtracking would (the patterns match
// every character, so the matches tile the text). They are checked against
// the regex engine on the same pattern strings (FuzzScanners, and every
// corpus in TestScannersAgree).

type scanKind uint8

const (
	scanRegex  scanKind = iota // no scanner: the regex engine
	scanGPT2                   // GPT-2, r50k_base, p50k_base
	scanCL100K                 // cl100k_base, Llama-3, GLM-4
	scanQwen2                  // Qwen2 (cl100k with single digits)
	scanO200K                  // o200k_base
)

// Patterns, as tokenizer.json and tiktoken write them.
const (
	patGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patCL100K = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patO200K  = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// scannerFor returns the scanner of a pattern string, recognised exactly,
// or scanRegex.
func scannerFor(pattern string) scanKind {
	switch pattern {
	case patGPT2:
		return scanGPT2
	case patCL100K:
		return scanCL100K
	case patQwen2:
		return scanQwen2
	case patO200K:
		return scanO200K
	}
	return scanRegex
}

// charAt returns the class bits and size of the character at text[i].
func charAt(tab *charTables, text []byte, i int) (uint16, int) {
	if b := text[i]; b < utf8.RuneSelf {
		return tab.cls[b], 1
	}
	r, sz := utf8.DecodeRune(text[i:])
	return tab.class(r), sz
}

// runOf returns the end of the run of characters from i that have one of
// the bits in mask.
func runOf(tab *charTables, text []byte, i int, mask uint16) int {
	for i < len(text) {
		c, sz := charAt(tab, text, i)
		if c&mask == 0 {
			break
		}
		i += sz
	}
	return i
}

// foldLetter returns the size of the character at text[i] when (?i:x)
// matches it (x an ASCII lowercase letter), else 0.
func foldLetter(text []byte, i int, x byte) int {
	if i >= len(text) {
		return 0
	}
	if b := text[i]; b < utf8.RuneSelf {
		if b|0x20 == x && b|0x20 >= 'a' && b|0x20 <= 'z' {
			return 1
		}
		return 0
	}
	r, sz := utf8.DecodeRune(text[i:])
	for _, f := range onigFoldASCII[x-'a'] {
		if f == r {
			return sz
		}
	}
	return 0
}

// contraction returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, or 0.
func contraction(text []byte, i int) int {
	if i+1 >= len(text) || text[i] != '\'' {
		return 0
	}
	j := i + 1
	for _, x := range [...]byte{'s', 't', 'm', 'd'} {
		if n := foldLetter(text, j, x); n > 0 {
			return 1 + n
		}
	}
	for _, xy := range [...][2]byte{{'r', 'e'}, {'v', 'e'}, {'l', 'l'}} {
		if n := foldLetter(text, j, xy[0]); n > 0 {
			if m := foldLetter(text, j+n, xy[1]); m > 0 {
				return 1 + n + m
			}
		}
	}
	return 0
}

// isOther reports [^\s\p{L}\p{N}].
func isOther(c uint16) bool { return c&(cS|cL|cN) == 0 }

// scanWhitespace matches \s*[\r\n]+ | \s+(?!\S) | \s+ at i, where text[i]
// is whitespace.
func scanWhitespace(tab *charTables, text []byte, i int) int {
	j, last, lastNL := i, 0, -1
	for j < len(text) {
		c, sz := charAt(tab, text, j)
		if c&cS == 0 {
			break
		}
		if text[j] == '\r' || text[j] == '\n' {
			lastNL = j
		}
		j += sz
		last = sz
	}
	switch {
	case lastNL >= 0: // \s*[\r\n]+ ends after the last line break of the run
		return lastNL + 1
	case j == len(text) || j-last == i: // \s+(?!\S) at the end, or \s+ of one character
		return j
	}
	return j - last // \s+(?!\S): leave the last space to the next word
}

// scanPunct matches ` ?[^\s\p{L}\p{N}]+[\r\n]*` at i (slash: the o200k
// pattern's [\r\n/]*), or returns -1.
func scanPunct(tab *charTables, text []byte, i int, slash bool) int {
	j := i
	if text[i] == ' ' && i+1 < len(text) {
		if c, _ := charAt(tab, text, i+1); isOther(c) {
			j = i + 1
		}
	}
	c, sz := charAt(tab, text, j)
	if !isOther(c) {
		return -1
	}
	j += sz
	for j < len(text) {
		c, sz := charAt(tab, text, j)
		if !isOther(c) {
			break
		}
		j += sz
	}
	for j < len(text) && (text[j] == '\r' || text[j] == '\n' || (slash && text[j] == '/')) {
		j++
	}
	return j
}

// next returns the end of the pre-token that starts at text[i].
func (k scanKind) next(tab *charTables, text []byte, i int) int {
	switch k {
	case scanCL100K, scanQwen2:
		return scanCL100KNext(tab, text, i, k == scanQwen2)
	case scanO200K:
		return scanO200KNext(tab, text, i)
	}
	panic("tokenizer: no scanner")
}

func scanCL100KNext(tab *charTables, text []byte, i int, single bool) int {
	if n := contraction(text, i); n > 0 {
		return i + n
	}
	c0, s0 := charAt(tab, text, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0&cL != 0 {
		return runOf(tab, text, i+s0, cL)
	}
	if c0&cN == 0 && text[i] != '\r' && text[i] != '\n' && i+s0 < len(text) {
		if c1, s1 := charAt(tab, text, i+s0); c1&cL != 0 {
			return runOf(tab, text, i+s0+s1, cL)
		}
	}
	// \p{N}{1,3} (Qwen2: \p{N})
	if c0&cN != 0 {
		if single {
			return i + s0
		}
		return numbersAfter(tab, text, i+s0, 2)
	}
	if j := scanPunct(tab, text, i, false); j >= 0 {
		return j
	}
	return scanWhitespace(tab, text, i)
}

// numbersAfter extends a match of \p{N} that ends at j by up to more
// further \p{N} characters, and returns its new end.
func numbersAfter(tab *charTables, text []byte, j, more int) int {
	for ; more > 0 && j < len(text); more-- {
		c, sz := charAt(tab, text, j)
		if c&cN == 0 {
			break
		}
		j += sz
	}
	return j
}

// o200kA matches [U]*[W]+C? at s (U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], W =
// [\p{Ll}\p{Lm}\p{Lo}\p{M}], C the contractions): U* backtracks to the last
// position from which W+ matches. Returns -1 when it does not match.
func o200kA(tab *charTables, text []byte, s int) int {
	k, ksz := -1, 0
	j := s
	for j < len(text) {
		c, sz := charAt(tab, text, j)
		if c&cU == 0 {
			if c&cW != 0 { // W+ from the end of U*
				return o200kTail(text, runOf(tab, text, j+sz, cW))
			}
			break
		}
		if c&cW != 0 {
			k, ksz = j, sz
		}
		j += sz
	}
	if k < 0 {
		return -1
	}
	// The last character of U* that is also in W starts W+, which ends on
	// it: the characters after it are in U but not W.
	return o200kTail(text, k+ksz)
}

// o200kB matches [U]+[W]*C? at s, or returns -1.
func o200kB(tab *charTables, text []byte, s int) int {
	j := runOf(tab, text, s, cU)
	if j == s {
		return -1
	}
	return o200kTail(text, runOf(tab, text, j, cW))
}

func o200kTail(text []byte, e int) int { return e + contraction(text, e) }

func scanO200KNext(tab *charTables, text []byte, i int) int {
	c0, s0 := charAt(tab, text, i)
	optional := c0&(cL|cN) == 0 && text[i] != '\r' && text[i] != '\n' && i+s0 < len(text) // [^\r\n\p{L}\p{N}]? can take it
	if optional {
		if e := o200kA(tab, text, i+s0); e >= 0 {
			return e
		}
	}
	if e := o200kA(tab, text, i); e >= 0 {
		return e
	}
	if optional {
		if e := o200kB(tab, text, i+s0); e >= 0 {
			return e
		}
	}
	if e := o200kB(tab, text, i); e >= 0 {
		return e
	}
	if c0&cN != 0 { // \p{N}{1,3}
		return numbersAfter(tab, text, i+s0, 2)
	}
	if j := scanPunct(tab, text, i, true); j >= 0 {
		return j
	}
	return scanWhitespace(tab, text, i)
}
