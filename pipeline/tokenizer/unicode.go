package tokenizer

import (
	"sort"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// runeRange is an inclusive range of code points.
type runeRange struct{ lo, hi rune }

// inRanges reports whether r lies in one of the sorted ranges rs.
func inRanges(rs []runeRange, r rune) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= r })
	return i < len(rs) && rs[i].lo <= r
}

// Character class bits. The tables behind them come from Hugging Face
// tokenizers itself (unicode_tables.go), because HF mixes Unicode versions:
// BertNormalizer and BertPreTokenizer take Cf, Mn and P* from an old
// unicode_categories crate, lowercasing and White_Space come from Rust's std
// (Unicode 16), and the GPT-2 pattern's classes from Oniguruma, while Go 1.26
// ships Unicode 15.0.
const (
	cDrop  uint16 = 1 << iota // BertNormalizer clean_text deletes it
	cSpace                    // clean_text turns it into ' '
	cPunct                    // BertPreTokenizer isolates it
	cWhite                    // BertPreTokenizer splits on it
	cMn                       // strip_accents deletes it after NFD
	cCJK                      // handle_chinese_chars puts spaces around it
	cNFD                      // NFD may change it (decomposes, or a non-starter)
	cLower                    // lowercasing changes it
	cL                        // GPT-2 pattern: \p{L}
	cN                        // GPT-2 pattern: \p{N}
	cS                        // GPT-2 pattern: \s
	cU                        // o200k pattern: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cW                        // o200k pattern: [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	cInert                    // HF's normalizers leave it alone where x/text would not (normInert)
)

// charTables holds the classes and simple lowercase mappings of the Basic
// Multilingual Plane, so that the hot paths need one load per character.
// Built once, read-only afterwards.
type charTables struct {
	cls      [0x10000]uint16
	lower    [0x10000]uint16
	byteRune [256]rune // GPT-2's bytes_to_unicode
}

// tables returns the shared, immutable BMP tables, building them on first use
// (a few milliseconds).
var tables = sync.OnceValue(func() *charTables {
	t := new(charTables)
	for r := rune(0); r < 0x10000; r++ {
		t.cls[r] = classSlow(r)
		t.lower[r] = uint16(r)
	}
	for _, m := range hfLower {
		if m[0] < 0x10000 && m[1] < 0x10000 {
			t.lower[m[0]] = uint16(m[1])
		}
	}
	t.byteRune = byteLevelAlphabet()
	return t
})

// rangeClasses are the class bits that membership of a range table gives.
var rangeClasses = [...]struct {
	ranges []runeRange
	bits   uint16
}{
	{hfBertDrop[:], cDrop},
	{hfBertSpace[:], cSpace},
	{hfBertPunct[:], cPunct},
	{hfBertWhite[:], cWhite},
	{hfBertMn[:], cMn},
	{hfGPT2Letter[:], cL},
	{hfGPT2Number[:], cN},
	{hfGPT2Space[:], cS},
	{onigCatLu[:], cU},
	{onigCatLt[:], cU},
	{onigCatLl[:], cW},
	{onigCatLm[:], cU | cW},
	{onigCatLo[:], cU | cW},
	{onigCatMn[:], cU | cW},
	{onigCatMc[:], cU | cW},
	{onigCatMe[:], cU | cW},
}

// classSlow computes the class bits of r from the range tables.
func classSlow(r rune) uint16 {
	var c uint16
	for _, rc := range rangeClasses {
		if inRanges(rc.ranges, r) {
			c |= rc.bits
		}
	}
	if isChineseChar(r) {
		c |= cCJK
	}
	if r >= 0x80 && r != utf8.RuneError {
		var buf [4]byte
		n := utf8.EncodeRune(buf[:], r)
		p := norm.NFD.Properties(buf[:n])
		// Hangul syllables decompose algorithmically: no table entry.
		if p.Decomposition() != nil || p.CCC() != 0 || p.LeadCCC() != 0 || (r >= 0xAC00 && r <= 0xD7A3) {
			c |= cNFD
		}
	}
	if lowerSlow(r) != r || r == 0x130 {
		c |= cLower
	}
	if normInert(r) {
		c |= cInert
	}
	return c
}

// appendByteLevel appends the byte-level characters of src (GPT-2's
// bytes_to_unicode, one character a byte) to dst.
func (t *charTables) appendByteLevel(dst, src []byte) []byte {
	for _, c := range src {
		dst = utf8.AppendRune(dst, t.byteRune[c])
	}
	return dst
}

// class returns the class bits of r.
func (t *charTables) class(r rune) uint16 {
	if r < 0x10000 {
		return t.cls[r]
	}
	return classSlow(r)
}

// lowerSlow returns Rust's single-code-point lowercase of r (r itself when
// the lowercase is several code points; see hfLowerMulti).
func lowerSlow(r rune) rune {
	i := sort.Search(len(hfLower), func(i int) bool { return hfLower[i][0] >= r })
	if i < len(hfLower) && hfLower[i][0] == r {
		return hfLower[i][1]
	}
	return r
}

// lowerRune returns Rust's char::to_lowercase of r when that is a single
// code point (everything but U+0130, see appendLowerMulti).
func (t *charTables) lowerRune(r rune) rune {
	if r < 0x10000 {
		return rune(t.lower[r])
	}
	return lowerSlow(r)
}

func appendLowerMulti(b []byte, r rune) []byte {
	for _, m := range hfLowerMulti {
		if m.r == r {
			return append(b, m.to...)
		}
	}
	return utf8.AppendRune(b, r)
}

// isChineseChar reports whether r is in the CJK ideograph blocks that BERT
// (and Hugging Face's BertNormalizer, with its 0x2B920 typo) spaces out.
func isChineseChar(r rune) bool {
	switch {
	case r >= 0x4E00 && r <= 0x9FFF,
		r >= 0x3400 && r <= 0x4DBF,
		r >= 0x20000 && r <= 0x2A6DF,
		r >= 0x2A700 && r <= 0x2B73F,
		r >= 0x2B740 && r <= 0x2B81F,
		r >= 0x2B920 && r <= 0x2CEAF,
		r >= 0xF900 && r <= 0xFAFF,
		r >= 0x2F800 && r <= 0x2FA1F:
		return true
	}
	return false
}

// appendRepaired appends text to dst with every byte that is not part of a
// valid UTF-8 sequence replaced by U+FFFD, one per byte, as Go's range loop,
// utf8.DecodeRune and encoding/json do.
func appendRepaired(dst, text []byte) []byte {
	dst, _ = repairUTF8(dst, text, func([]byte) int { return 1 })
	return dst
}

// normInert reports whether HF's NFC/NFD/NFKC/NFKD treat r as a plain
// starter (no decomposition, combining class 0, composing with nothing)
// where golang.org/x/text/unicode/norm, on newer Unicode tables, would not:
// characters HF's old normalization tables do not know, and the characters
// x/text would compose them from (U+11935 U+11930 into U+11938). Normalizing
// text in pieces cut at these characters, and copying them as they are,
// gives HF's result with x/text (normalize.go). The table is generated from
// hfNormActive and x/text by TestNormInertTable.
func normInert(r rune) bool { return r >= 0x80 && inRanges(hfNormInert[:], r) }

// computeNormInert derives hfNormInert.
func computeNormInert() []runeRange {
	active := func(r rune) bool {
		var buf [4]byte
		n := utf8.EncodeRune(buf[:], r)
		p := norm.NFKD.Properties(buf[:n])
		return p.Decomposition() != nil || p.CCC() != 0 || p.LeadCCC() != 0 || (r >= 0xAC00 && r <= 0xD7A3)
	}
	set := map[rune]bool{}
	for r := rune(0x80); r <= 0x10FFFF; r++ {
		if (r >= 0xD800 && r < 0xE000) || inRanges(hfNormActive[:], r) || !active(r) {
			continue
		}
		set[r] = true
		var buf [4]byte
		n := utf8.EncodeRune(buf[:], r)
		for _, c := range norm.NFD.String(string(buf[:n])) {
			if !inRanges(hfNormActive[:], c) {
				set[c] = true
			}
		}
	}
	var rs []runeRange
	for r := range set {
		rs = append(rs, runeRange{r, r})
	}
	return normRanges(rs)
}
