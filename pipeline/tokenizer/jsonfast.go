package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A strict, fast reader for the large parts of a tokenizer.json (the
// model's vocabulary and merges, megabytes of strings), where
// encoding/json's reflection takes seconds. Everything else goes through
// encoding/json. Strings are decoded exactly as encoding/json decodes valid
// JSON; invalid UTF-8, lone surrogates and control characters are errors
// (Hugging Face's serde_json refuses them too).

type jscan struct {
	b []byte
	i int
}

var errJSONEnd = errors.New("unexpected end of JSON")

func (s *jscan) errf(format string, a ...any) error {
	return fmt.Errorf("JSON at byte %d: %s", s.i, fmt.Sprintf(format, a...))
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jscan) expect(c byte) error {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return errJSONEnd
		}
		return s.errf("want %q, got %q", c, s.b[s.i])
	}
	s.i++
	return nil
}

// str reads a string.
func (s *jscan) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(raw) {
				return "", s.errf("invalid UTF-8 in a string")
			}
			return string(raw), nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return "", s.errf("control character in a string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
		s.i++
	}
	return "", errJSONEnd
}

// strSlow decodes a string with escapes from start (after the quote).
func (s *jscan) strSlow(start int) (string, error) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				return "", s.errf("invalid UTF-8 in a string")
			}
			return string(out), nil
		case c < 0x20:
			return "", s.errf("control character in a string")
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", errJSONEnd
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := s.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
					return "", s.errf("lone surrogate \\u%04X", r)
				}
				s.i += 2
				r2, err := s.hex4()
				if err != nil {
					return "", err
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", s.errf("bad surrogate pair")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", s.errf("bad escape \\%c", e)
		}
	}
	return "", errJSONEnd
}

func (s *jscan) hex4() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, errJSONEnd
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, s.errf("bad \\u escape")
	}
	s.i += 4
	return rune(v), nil
}

// number returns the bytes of a JSON number.
func (s *jscan) number() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, s.errf("want a number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, s.errf("bad number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, s.errf("bad number")
		}
	}
	return s.b[start:s.i], nil
}

// id reads a non-negative integer that fits an int32.
func (s *jscan) id() (int32, error) {
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil || v < 0 || v != math.Trunc(v) || v > math.MaxInt32 {
		return 0, s.errf("want an id (an integer ≥ 0), got %s", n)
	}
	return int32(v), nil
}

// skip skips one value, checking its structure (encoding/json checks the
// small sections again when it decodes them).
func (s *jscan) skip(depth int) error {
	if depth > 10000 {
		return s.errf("nested too deeply")
	}
	switch c := s.peek(); c {
	case '"':
		_, err := s.str()
		return err
	case '{':
		return s.object(func(string) error { return s.skip(depth + 1) })
	case '[':
		return s.array(func(int) error { return s.skip(depth + 1) })
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return s.errf("bad literal")
	case 0:
		return errJSONEnd
	default:
		_, err := s.number()
		return err
	}
}

// object calls fn for each key of an object; fn reads the value.
func (s *jscan) object(fn func(key string) error) error {
	return s.items('{', '}', func(int) error {
		k, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		return fn(k)
	})
}

// array calls fn for each element of an array; fn reads it.
func (s *jscan) array(fn func(i int) error) error { return s.items('[', ']', fn) }

// items reads a sequence of items between open and end, separated by
// commas: item reads item i.
func (s *jscan) items(open, end byte, item func(i int) error) error {
	if err := s.expect(open); err != nil {
		return err
	}
	if s.peek() == end {
		s.i++
		return nil
	}
	for i := 0; ; i++ {
		if err := item(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case end:
			s.i++
			return nil
		case 0:
			return errJSONEnd
		default:
			return s.errf("want ',' or %q", end)
		}
	}
}

// rawValue skips a value and returns its bytes.
func (s *jscan) rawValue() (json.RawMessage, error) {
	s.ws()
	start := s.i
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// splitTokenizerJSON reads the top level of a tokenizer.json: its sections
// as raw JSON, the model's fields as raw JSON but for a vocabulary and
// merges, which are decoded here.
type fastModelParts struct {
	fields   map[string]json.RawMessage
	vocab    map[string]int32 // an object vocabulary
	pieces   []vocabPiece     // a Unigram list
	listKind bool             // vocab was a list
	merges   [][2]string
	hasMerge bool
}

func splitTokenizerJSON(data []byte) (map[string]json.RawMessage, *fastModelParts, error) {
	s := &jscan{b: data}
	top := map[string]json.RawMessage{}
	var mp *fastModelParts
	err := s.object(func(k string) error {
		if k == "model" && s.peek() == '{' {
			var err error
			mp, err = s.model()
			top[k] = json.RawMessage("{}")
			return err
		}
		raw, err := s.rawValue()
		top[k] = raw
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if s.peek() != 0 {
		return nil, nil, s.errf("data after the top-level object")
	}
	return top, mp, nil
}

func (s *jscan) model() (*fastModelParts, error) {
	mp := &fastModelParts{fields: map[string]json.RawMessage{}}
	err := s.object(func(k string) error {
		switch k {
		case "vocab":
			mp.fields[k] = json.RawMessage(`"fast"`)
			return s.modelVocab(mp)
		case "merges":
			if s.peek() == 'n' {
				raw, err := s.rawValue()
				mp.fields[k] = raw
				return err
			}
			mp.hasMerge = true
			mp.fields[k] = json.RawMessage(`"fast"`)
			return s.array(func(i int) error { return s.merge(mp, i) })
		}
		raw, err := s.rawValue()
		mp.fields[k] = raw
		return err
	})
	return mp, err
}

// modelVocab reads model.vocab: an object of token → id, or a Unigram list
// of [piece, score].
func (s *jscan) modelVocab(mp *fastModelParts) error {
	switch s.peek() {
	case '{':
		mp.vocab = make(map[string]int32, len(s.b)/20)
		return s.object(func(tok string) error {
			id, err := s.id()
			if err != nil {
				return fmt.Errorf("model.vocab[%q]: %w", tok, err)
			}
			mp.vocab[tok] = id
			return nil
		})
	case '[':
		mp.listKind = true
		return s.array(func(i int) error {
			p, err := s.scoredPiece(i)
			if err != nil {
				return err
			}
			mp.pieces = append(mp.pieces, p)
			return nil
		})
	}
	return s.errf("model.vocab: want an object or a list")
}

// scoredPiece reads the [piece, score] of model.vocab[i].
func (s *jscan) scoredPiece(i int) (vocabPiece, error) {
	var p vocabPiece
	n := 0
	err := s.array(func(j int) error {
		n++
		switch j {
		case 0:
			var err error
			p.piece, err = s.str()
			return err
		case 1:
			num, err := s.number()
			if err != nil {
				return err
			}
			if p.score, err = strconv.ParseFloat(string(num), 64); err != nil {
				return s.errf("bad score")
			}
			return nil
		}
		return s.errf("want [piece, score]")
	})
	if err != nil || n != 2 {
		return p, fmt.Errorf("model.vocab[%d]: want [piece, score]: %v", i, err)
	}
	return p, nil
}

// merge reads model.merges[i], "a b" or [a, b], into mp.merges.
func (s *jscan) merge(mp *fastModelParts, i int) error {
	switch s.peek() {
	case '"':
		m, err := s.str()
		if err != nil {
			return err
		}
		a, b, ok := cutSpace(m)
		if !ok {
			return fieldErr(fmt.Sprintf("model.merges[%d]", i), "want two tokens separated by a space, got %q", m)
		}
		mp.merges = append(mp.merges, [2]string{a, b})
		return nil
	case '[':
		var pair [2]string
		n := 0
		err := s.array(func(j int) error {
			if j > 1 {
				return s.errf("want a pair")
			}
			var err error
			pair[j], err = s.str()
			n++
			return err
		})
		if err != nil || n != 2 {
			return fieldErr(fmt.Sprintf("model.merges[%d]", i), "want a pair of strings")
		}
		mp.merges = append(mp.merges, pair)
		return nil
	}
	return fieldErr(fmt.Sprintf("model.merges[%d]", i), "want \"a b\" or [a, b]")
}

// cutSpace splits "a b" at its one space.
func cutSpace(m string) (string, string, bool) {
	for i := 0; i < len(m); i++ {
		if m[i] == ' ' {
			a, b := m[:i], m[i+1:]
			for j := 0; j < len(b); j++ {
				if b[j] == ' ' {
					return "", "", false
				}
			}
			return a, b, true
		}
	}
	return "", "", false
}
