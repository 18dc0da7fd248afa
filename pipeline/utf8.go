package pipeline

import "unicode/utf8"

// repairUTF8 appends text to dst with every ill-formed sequence replaced by
// U+FFFD, one per maximal subpart (the Unicode recommendation that Python's
// errors="replace" and Rust's from_utf8_lossy follow, so glmkit reads a
// broken file the way those readers would). It reports how many
// replacements it made.
func repairUTF8(dst, text []byte) ([]byte, int) {
	n := 0
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, text[i:i+size]...)
			i += size
			continue
		}
		i += maximalSubpart(text[i:])
		dst = append(dst, "\uFFFD"...)
		n++
	}
	return dst, n
}

// maximalSubpart is the length of the longest prefix of b (which starts
// with an ill-formed sequence) that is a prefix of some well-formed UTF-8
// sequence, or 1.
func maximalSubpart(b []byte) int {
	lo, hi := byte(0x80), byte(0xbf)
	var need int
	switch c := b[0]; {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		need = 2
	case c == 0xed:
		need, hi = 2, 0x9f
	case c == 0xf0:
		need, lo = 3, 0x90
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4:
		need, hi = 3, 0x8f
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
		n++
	}
	return n
}
