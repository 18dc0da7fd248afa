package tokenizer

import (
	"errors"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Hugging Face's normalizers, as tokenizer.json names them. Character
// classes and mappings come from HF itself (unicode_tables.go).

// unicodeNorm is NFC, NFD, NFKC or NFKD. HF's tables are older than
// x/text's, so the text is normalized in pieces cut at the characters HF
// does not know (normInert), which are copied as they are.
type unicodeNorm struct{ form norm.Form }

func (n unicodeNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	return appendNormalized(st, n.form, dst, src), true, nil
}

// appendNormalized appends form(src) to dst as HF computes it.
func appendNormalized(st *genState, form norm.Form, dst, src []byte) []byte {
	tab := st.tab
	run := 0
	flush := func(seg []byte) {
		if len(seg) == 0 {
			return
		}
		ascii := true
		for _, b := range seg {
			if b >= utf8.RuneSelf {
				ascii = false
				break
			}
		}
		if ascii {
			dst = append(dst, seg...)
			return
		}
		st.iter.Init(form, seg)
		for !st.iter.Done() {
			dst = append(dst, st.iter.Next()...)
		}
	}
	for i := 0; i < len(src); {
		if src[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, sz := utf8.DecodeRune(src[i:])
		if tab.class(r)&cInert != 0 {
			flush(src[run:i])
			dst = append(dst, src[i:i+sz]...)
			run = i + sz
		}
		i += sz
	}
	flush(src[run:])
	return dst
}

// lowercaseNorm is Lowercase: Rust's char::to_lowercase of every character.
type lowercaseNorm struct{}

func (lowercaseNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	return appendLower(st.tab, dst, src), true, nil
}

func appendLower(tab *charTables, dst, src []byte) []byte {
	for i := 0; i < len(src); {
		b := src[i]
		if b < utf8.RuneSelf {
			if b >= 'A' && b <= 'Z' {
				b += 'a' - 'A'
			}
			dst = append(dst, b)
			i++
			continue
		}
		r, sz := utf8.DecodeRune(src[i:])
		i += sz
		if tab.class(r)&cLower == 0 {
			dst = utf8.AppendRune(dst, r)
		} else if r == 0x130 {
			dst = appendLowerMulti(dst, r)
		} else {
			dst = utf8.AppendRune(dst, tab.lowerRune(r))
		}
	}
	return dst
}

// stripNorm is Strip: Rust whitespace off the left and/or right.
type stripNorm struct{ left, right bool }

func (n stripNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	tab := st.tab
	lo, hi := 0, len(src)
	if n.left {
		for lo < hi {
			r, sz := utf8.DecodeRune(src[lo:])
			if tab.class(r)&cWhite == 0 {
				break
			}
			lo += sz
		}
	}
	if n.right {
		for hi > lo {
			r, sz := utf8.DecodeLastRune(src[lo:hi])
			if tab.class(r)&cWhite == 0 {
				break
			}
			hi -= sz
		}
	}
	return append(dst, src[lo:hi]...), lo == 0, nil
}

// stripAccentsNorm is StripAccents: removes combining marks (HF's
// is_combining_mark).
type stripAccentsNorm struct{}

func (stripAccentsNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	kept := true
	for i := 0; i < len(src); {
		if src[i] < utf8.RuneSelf {
			dst = append(dst, src[i])
			i++
			continue
		}
		r, sz := utf8.DecodeRune(src[i:])
		if inRanges(hfCombiningMark[:], r) {
			if len(dst) == 0 {
				kept = false
			}
		} else {
			dst = append(dst, src[i:i+sz]...)
		}
		i += sz
	}
	return dst, kept, nil
}

// replaceNorm is Replace: every match of the pattern becomes content.
type replaceNorm struct {
	re      *regex
	content string
	// noEmpty: an empty match is an error, Hugging Face panicking on the
	// text (a later normalizer or ByteLevel transforms it; see
	// markEmptyReplace).
	noEmpty bool
}

// errEmptyReplace is Hugging Face's panic on an empty Replace match that a
// later step transforms.
var errEmptyReplace = errors.New("a Replace pattern matches empty text here, and Hugging Face panics on that text (a later normalizer or ByteLevel transforms it)")

func (n replaceNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	if len(src) == 0 {
		return dst, true, nil // HF finds no match in an empty string
	}
	prev, kept := 0, true
	empty := false
	err := st.re.findAll(n.re, src, func(s, e int) {
		empty = empty || s == e
		dst = append(dst, src[prev:s]...)
		dst = append(dst, n.content...)
		if s == 0 && e > 0 && n.content == "" {
			kept = false
		}
		prev = e
	})
	if err != nil {
		return dst, false, err
	}
	if empty && n.noEmpty {
		return dst, false, errEmptyReplace
	}
	return append(dst, src[prev:]...), kept, nil
}

// prependNorm is Prepend: the string before any non-empty text.
type prependNorm struct{ s string }

func (n prependNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	if len(src) > 0 {
		dst = append(dst, n.s...)
	}
	return append(dst, src...), true, nil
}

// bertNorm is BertNormalizer with its options: clean text, space CJK
// characters, strip accents (NFD, then HF's Mn removed), lowercase, in
// that order.
type bertNorm struct{ opts bertOptions }

func (n bertNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	tab := st.tab
	o := n.opts
	kept := true
	// Two scratch buffers beyond dst: a and b.
	a := st.bertScratch(0)
	for i := 0; i < len(src); {
		r, sz := utf8.DecodeRune(src[i:])
		i += sz
		cl := tab.class(r)
		if o.cleanText && cl&cDrop != 0 && len(a) == 0 {
			kept = false // the first character is dropped
		}
		a, _ = o.clean(a, r, cl)
	}
	if o.stripAccents {
		b := st.bertScratch(1)
		b = appendNormalized(st, norm.NFD, b, a)
		a = a[:0]
		for i := 0; i < len(b); {
			r, sz := utf8.DecodeRune(b[i:])
			if tab.class(r)&cMn != 0 {
				if len(a) == 0 {
					kept = false
				}
			} else {
				a = append(a, b[i:i+sz]...)
			}
			i += sz
		}
		st.setBertScratch(1, b)
	}
	if o.lowercase {
		dst = appendLower(tab, dst, a)
	} else {
		dst = append(dst, a...)
	}
	st.setBertScratch(0, a)
	return dst, kept, nil
}

func (st *genState) bertScratch(i int) []byte       { return st.bert[i][:0] }
func (st *genState) setBertScratch(i int, b []byte) { st.bert[i] = b }

// byteLevelNorm is the ByteLevel normalizer: every byte as its byte-level
// character (GPT-2's bytes_to_unicode), with no split.
type byteLevelNorm struct{}

func (byteLevelNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	return st.tab.appendByteLevel(dst, src), true, nil
}

// nmtNorm is Nmt (HF's do_nmt, as in its SentencePieceUnigramTokenizer):
// the ASCII and C1 control characters it lists are dropped, and the other
// characters SentencePiece's nmt rules treat as white space (tab, line
// ends, U+1680, U+200B–U+200F, U+2028, U+2029, U+2581, U+FEFF, U+FFFD)
// become a space. NUL is kept.
type nmtNorm struct{}

func (nmtNorm) normalize(st *genState, dst, src []byte) ([]byte, bool, error) {
	kept := true
	for i := 0; i < len(src); {
		r, sz := rune(src[i]), 1
		if r >= utf8.RuneSelf {
			r, sz = utf8.DecodeRune(src[i:])
		}
		switch {
		case nmtDrops(r):
			if len(dst) == 0 {
				kept = false // the first character is dropped
			}
		case nmtSpace(r) && !(r == utf8.RuneError && sz == 1):
			dst = append(dst, ' ')
		default:
			dst = append(dst, src[i:i+sz]...)
		}
		i += sz
	}
	return dst, kept, nil
}

func nmtDrops(r rune) bool {
	return r >= 0x01 && r <= 0x08 || r == 0x0B || r >= 0x0E && r <= 0x1F || r == 0x7F || r == 0x8F || r == 0x9F
}

func nmtSpace(r rune) bool {
	switch r {
	case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD:
		return true
	}
	return r >= 0x200B && r <= 0x200F
}
