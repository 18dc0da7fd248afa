package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
)

// This file reads SentencePiece's ModelProto (sentencepiece_model.proto,
// proto2) with a small wire-format reader: no protobuf dependency.
//
// API:
//
//	m, err := parseModelProto(data) // never panics; errors name the field
//
// Only the fields that affect encoding, decoding and GLM's special ids are
// kept; every other field (training options, extensions ≥ 200, fields added
// by later SentencePiece releases) is skipped by its wire type. Proto2
// defaults apply to absent fields. Where the C++ parser would quietly accept
// a malformed field (a known field with the wrong wire type, an enum value
// outside the enum), this reader returns an error instead: a guess about a
// tokenizer file is worse than a refusal.

// SentencePiece piece types (ModelProto.SentencePiece.Type), and spHidden:
// glmkit's mark for a piece kept out of encoding altogether (a USER_DEFINED
// piece adopted as one of GLM's command tokens).
const (
	spHidden      = 0
	spNormal      = 1
	spUnknown     = 2
	spControl     = 3
	spUserDefined = 4
	spUnused      = 5
	spByte        = 6
)

// spPieceTypeName names a piece type for messages.
func spPieceTypeName(t int32) string {
	switch t {
	case spNormal:
		return "NORMAL"
	case spUnknown:
		return "UNKNOWN"
	case spControl:
		return "CONTROL"
	case spUserDefined:
		return "USER_DEFINED"
	case spUnused:
		return "UNUSED"
	case spByte:
		return "BYTE"
	}
	return fmt.Sprintf("type %d", t)
}

// SentencePiece model types (TrainerSpec.ModelType).
const (
	spModelUnigram = 1
	spModelBPE     = 2
	spModelWord    = 3
	spModelChar    = 4
)

// spPiece is one ModelProto.SentencePiece.
type spPiece struct {
	piece string
	score float32
	typ   int32
}

// spTrainerSpec holds the TrainerSpec fields that matter after training.
type spTrainerSpec struct {
	modelType               int32
	vocabSize               int32
	byteFallback            bool
	treatWhitespaceAsSuffix bool
	splitByWhitespace       bool // recorded only: training-time option in 0.1.97
	splitByUnicodeScript    bool // recorded only
	splitByNumber           bool // recorded only
	splitDigits             bool // recorded only
	unkID, bosID, eosID     int32
	padID                   int32
	unkPiece, bosPiece      string
	eosPiece, padPiece      string
	unkSurface              string
}

// spNormalizerSpec is a NormalizerSpec.
type spNormalizerSpec struct {
	name                   string
	precompiledCharsmap    []byte
	addDummyPrefix         bool
	removeExtraWhitespaces bool
	escapeWhitespaces      bool
	hasRuleTSV             bool // normalization_rule_tsv is set (training only)
}

// spSample is a SelfTestData sample: SentencePiece checks them when it
// loads a model, and so do we.
type spSample struct{ input, expected string }

// modelProto is the part of a SentencePiece ModelProto glmkit uses.
type modelProto struct {
	pieces        []spPiece
	trainer       spTrainerSpec
	normalizer    spNormalizerSpec
	denormalizer  *spNormalizerSpec
	hasNormalizer bool
	selfTest      []spSample
}

func defaultTrainerSpec() spTrainerSpec {
	return spTrainerSpec{
		modelType: spModelUnigram, vocabSize: 8000,
		splitByWhitespace: true, splitByUnicodeScript: true, splitByNumber: true,
		unkID: 0, bosID: 1, eosID: 2, padID: -1,
		unkPiece: "<unk>", bosPiece: "<s>", eosPiece: "</s>", padPiece: "<pad>",
		unkSurface: " \u2047 ",
	}
}

func defaultNormalizerSpec() spNormalizerSpec {
	return spNormalizerSpec{addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true}
}

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireStart   = 3
	wireEnd     = 4
	wireFixed32 = 5
)

// pbReader walks one message's fields.
type pbReader struct {
	b    []byte
	path string // the message's field path, for errors ("trainer_spec")
}

// pbField is one decoded field: its number, wire type and value (v for
// varint and fixed, data for length-delimited).
type pbField struct {
	num  int32
	wire int
	v    uint64
	data []byte
}

// next reads the next field; ok is false at the end of the message.
func (r *pbReader) next() (f pbField, ok bool, err error) {
	if len(r.b) == 0 {
		return f, false, nil
	}
	key, n := binary.Uvarint(r.b)
	if n <= 0 {
		return f, false, fmt.Errorf("%s: truncated or over-long field key", r.where())
	}
	r.b = r.b[n:]
	num := key >> 3
	if num == 0 || num > math.MaxInt32>>3 {
		return f, false, fmt.Errorf("%s: invalid field number %d", r.where(), num)
	}
	f.num, f.wire = int32(num), int(key&7)
	switch f.wire {
	case wireVarint:
		v, n := binary.Uvarint(r.b)
		if n <= 0 {
			return f, false, fmt.Errorf("%s: field %d: truncated or over-long varint", r.where(), num)
		}
		f.v, r.b = v, r.b[n:]
	case wireFixed64:
		if len(r.b) < 8 {
			return f, false, fmt.Errorf("%s: field %d: truncated fixed64", r.where(), num)
		}
		f.v, r.b = binary.LittleEndian.Uint64(r.b), r.b[8:]
	case wireFixed32:
		if len(r.b) < 4 {
			return f, false, fmt.Errorf("%s: field %d: truncated fixed32", r.where(), num)
		}
		f.v, r.b = uint64(binary.LittleEndian.Uint32(r.b)), r.b[4:]
	case wireBytes:
		l, n := binary.Uvarint(r.b)
		if n <= 0 {
			return f, false, fmt.Errorf("%s: field %d: truncated length", r.where(), num)
		}
		r.b = r.b[n:]
		if l > uint64(len(r.b)) {
			return f, false, fmt.Errorf("%s: field %d: length %d runs past the end (%d bytes left)", r.where(), num, l, len(r.b))
		}
		f.data, r.b = r.b[:l], r.b[l:]
	default: // groups (3, 4) are not used by SentencePiece; 6 and 7 are invalid
		return f, false, fmt.Errorf("%s: field %d: unsupported wire type %d", r.where(), num, f.wire)
	}
	return f, true, nil
}

func (r *pbReader) where() string {
	if r.path == "" {
		return "ModelProto"
	}
	return r.path
}

// want checks that a known field has the wire type its declaration gives.
func (r *pbReader) want(f pbField, name string, wire int) error {
	if f.wire != wire {
		return fmt.Errorf("%s.%s (field %d): wire type %d, want %d", r.where(), name, f.num, f.wire, wire)
	}
	return nil
}

// set checks that field f, called name, has the wire type of dst and
// stores it there: a varint in an int32 or a bool, a fixed32 in a float32,
// bytes in a string or a []byte (not copied).
func (r *pbReader) set(f pbField, name string, dst any) error {
	wire := wireVarint
	switch dst.(type) {
	case *float32:
		wire = wireFixed32
	case *string, *[]byte:
		wire = wireBytes
	}
	if err := r.want(f, name, wire); err != nil {
		return err
	}
	switch d := dst.(type) {
	case *int32:
		*d = int32Of(f.v)
	case *bool:
		*d = f.v != 0
	case *float32:
		*d = math.Float32frombits(uint32(f.v))
	case *string:
		*d = string(f.data)
	case *[]byte:
		*d = f.data
	default:
		panic(fmt.Sprintf("pbReader.set: %T", dst))
	}
	return nil
}

// int32Of decodes a proto int32 varint (negative values are sign-extended
// to 64 bits on the wire).
func int32Of(v uint64) int32 { return int32(v) }

// each calls fn with each field of the message in turn, up to the first
// error.
func (r *pbReader) each(fn func(f pbField) error) error {
	for {
		f, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

// parseModelProto decodes a serialized ModelProto.
func parseModelProto(data []byte) (*modelProto, error) {
	m := &modelProto{trainer: defaultTrainerSpec(), normalizer: defaultNormalizerSpec()}
	r := pbReader{b: data}
	names := [...]string{1: "pieces", 2: "trainer_spec", 3: "normalizer_spec", 4: "self_test_data", 5: "denormalizer_spec"}
	err := r.each(func(f pbField) error {
		if f.num < 1 || int(f.num) >= len(names) {
			return nil // not used by glmkit
		}
		// Every field glmkit reads is a message.
		if err := r.want(f, names[f.num], wireBytes); err != nil {
			return err
		}
		switch f.num {
		case 1:
			p, err := parsePiece(f.data, len(m.pieces))
			if err != nil {
				return err
			}
			m.pieces = append(m.pieces, p)
			return nil
		case 2:
			return parseTrainerSpec(f.data, &m.trainer)
		case 3:
			m.hasNormalizer = true
			return parseNormalizerSpec(f.data, "normalizer_spec", &m.normalizer)
		case 4:
			return parseSelfTest(f.data, &m.selfTest)
		default:
			if m.denormalizer == nil {
				d := defaultNormalizerSpec()
				m.denormalizer = &d
			}
			return parseNormalizerSpec(f.data, "denormalizer_spec", m.denormalizer)
		}
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func parsePiece(data []byte, i int) (spPiece, error) {
	p := spPiece{typ: spNormal}
	r := pbReader{b: data, path: fmt.Sprintf("pieces[%d]", i)}
	err := r.each(func(f pbField) error {
		switch f.num {
		case 1:
			return r.set(f, "piece", &p.piece)
		case 2:
			return r.set(f, "score", &p.score)
		case 3:
			if err := r.set(f, "type", &p.typ); err != nil {
				return err
			}
			if p.typ < spNormal || p.typ > spByte {
				return fmt.Errorf("%s.type: %d is not a SentencePiece piece type (1..6)", r.where(), p.typ)
			}
		}
		return nil
	})
	return p, err
}

// protoField is one scalar field of a message: its number, its name in
// sentencepiece_model.proto, and where its value goes (a *int32, *bool,
// *float32, *string or *[]byte, as pbReader.set takes).
type protoField struct {
	num  int32
	name string
	dst  any
}

// fields lists the TrainerSpec fields glmkit reads.
func (t *spTrainerSpec) fields() []protoField {
	return []protoField{
		{3, "model_type", &t.modelType},
		{4, "vocab_size", &t.vocabSize},
		{35, "byte_fallback", &t.byteFallback},
		{24, "treat_whitespace_as_suffix", &t.treatWhitespaceAsSuffix},
		{22, "split_by_whitespace", &t.splitByWhitespace},
		{21, "split_by_unicode_script", &t.splitByUnicodeScript},
		{23, "split_by_number", &t.splitByNumber},
		{25, "split_digits", &t.splitDigits},
		{40, "unk_id", &t.unkID},
		{41, "bos_id", &t.bosID},
		{42, "eos_id", &t.eosID},
		{43, "pad_id", &t.padID},
		{44, "unk_surface", &t.unkSurface},
		{45, "unk_piece", &t.unkPiece},
		{46, "bos_piece", &t.bosPiece},
		{47, "eos_piece", &t.eosPiece},
		{48, "pad_piece", &t.padPiece},
	}
}

// fields lists the NormalizerSpec fields glmkit reads as they are
// (normalization_rule_tsv, read only for whether it is set, is not one).
func (n *spNormalizerSpec) fields() []protoField {
	return []protoField{
		{1, "name", &n.name},
		{2, "precompiled_charsmap", &n.precompiledCharsmap},
		{3, "add_dummy_prefix", &n.addDummyPrefix},
		{4, "remove_extra_whitespaces", &n.removeExtraWhitespaces},
		{5, "escape_whitespaces", &n.escapeWhitespaces},
	}
}

// setKnown stores f in the field of fields with its number, if any, and
// reports whether there was one.
func (r *pbReader) setKnown(f pbField, fields []protoField) (bool, error) {
	for _, k := range fields {
		if k.num == f.num {
			return true, r.set(f, k.name, k.dst)
		}
	}
	return false, nil
}

func parseTrainerSpec(data []byte, t *spTrainerSpec) error {
	r := pbReader{b: data, path: "trainer_spec"}
	fields := t.fields()
	return r.each(func(f pbField) error {
		_, err := r.setKnown(f, fields)
		return err
	})
}

func parseNormalizerSpec(data []byte, path string, n *spNormalizerSpec) error {
	r := pbReader{b: data, path: path}
	fields := n.fields()
	return r.each(func(f pbField) error {
		if known, err := r.setKnown(f, fields); known || f.num != 6 {
			return err
		}
		var tsv []byte
		if err := r.set(f, "normalization_rule_tsv", &tsv); err != nil {
			return err
		}
		n.hasRuleTSV = len(tsv) > 0
		return nil
	})
}

func parseSelfTest(data []byte, out *[]spSample) error {
	r := pbReader{b: data, path: "self_test_data"}
	return r.each(func(f pbField) error {
		if f.num != 1 {
			return nil
		}
		if err := r.want(f, "samples", wireBytes); err != nil {
			return err
		}
		var s spSample
		sr := pbReader{b: f.data, path: fmt.Sprintf("self_test_data.samples[%d]", len(*out))}
		err := sr.each(func(g pbField) error {
			switch g.num {
			case 1:
				return sr.set(g, "input", &s.input)
			case 2:
				return sr.set(g, "expected", &s.expected)
			}
			return nil
		})
		if err != nil {
			return err
		}
		*out = append(*out, s)
		return nil
	})
}
