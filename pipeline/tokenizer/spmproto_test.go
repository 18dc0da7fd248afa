package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// pbWriter writes protobuf wire format, for building test models.
type pbWriter struct{ b []byte }

func (w *pbWriter) key(num, wire int) { w.b = binary.AppendUvarint(w.b, uint64(num)<<3|uint64(wire)) }
func (w *pbWriter) varint(num int, v uint64) {
	w.key(num, wireVarint)
	w.b = binary.AppendUvarint(w.b, v)
}
func (w *pbWriter) int32(num int, v int32) { w.varint(num, uint64(int64(v))) }
func (w *pbWriter) bool(num int, v bool) {
	x := uint64(0)
	if v {
		x = 1
	}
	w.varint(num, x)
}
func (w *pbWriter) bytes(num int, b []byte) {
	w.key(num, wireBytes)
	w.b = binary.AppendUvarint(w.b, uint64(len(b)))
	w.b = append(w.b, b...)
}
func (w *pbWriter) fixed32(num int, v uint32) {
	w.key(num, wireFixed32)
	w.b = binary.LittleEndian.AppendUint32(w.b, v)
}

// fields writes each of fields that holds a value: all but an empty
// []byte.
func (w *pbWriter) fields(fields []protoField) {
	for _, f := range fields {
		num := int(f.num)
		switch v := f.dst.(type) {
		case *int32:
			w.int32(num, *v)
		case *bool:
			w.bool(num, *v)
		case *float32:
			w.fixed32(num, math.Float32bits(*v))
		case *string:
			w.bytes(num, []byte(*v))
		case *[]byte:
			if len(*v) > 0 {
				w.bytes(num, *v)
			}
		default:
			panic(fmt.Sprintf("pbWriter.fields: %T", f.dst))
		}
	}
}

// encodeModelProto serializes every field parseModelProto reads.
func encodeModelProto(m *modelProto) []byte {
	var w pbWriter
	for _, p := range m.pieces {
		var pw pbWriter
		pw.bytes(1, []byte(p.piece))
		pw.fixed32(2, math.Float32bits(p.score))
		pw.int32(3, p.typ)
		w.bytes(1, pw.b)
	}
	var tw pbWriter
	tw.fields(m.trainer.fields())
	w.bytes(2, tw.b)
	norm := func(n *spNormalizerSpec) []byte {
		var nw pbWriter
		nw.fields(n.fields())
		return nw.b
	}
	if m.hasNormalizer {
		w.bytes(3, norm(&m.normalizer))
	}
	if len(m.selfTest) > 0 {
		var sw pbWriter
		for _, s := range m.selfTest {
			var s1 pbWriter
			s1.bytes(1, []byte(s.input))
			s1.bytes(2, []byte(s.expected))
			sw.bytes(1, s1.b)
		}
		w.bytes(4, sw.b)
	}
	if m.denormalizer != nil {
		w.bytes(5, norm(m.denormalizer))
	}
	return w.b
}

// tinyModel returns a small valid model: <unk>, <s>, </s>, [MASK] as a
// USER_DEFINED piece, the letters of "hello world" and a few merges, as
// Unigram or BPE, with byte pieces when byteFallback.
func tinyModel(modelType int32, byteFallback bool) *modelProto {
	m := &modelProto{trainer: defaultTrainerSpec(), normalizer: defaultNormalizerSpec(), hasNormalizer: true}
	m.trainer.modelType, m.trainer.byteFallback = modelType, byteFallback
	m.normalizer.name = "identity"
	add := func(s string, score float32, typ int32) {
		m.pieces = append(m.pieces, spPiece{piece: s, score: score, typ: typ})
	}
	add("<unk>", 0, spUnknown)
	add("<s>", 0, spControl)
	add("</s>", 0, spControl)
	add("[MASK]", 0, spUserDefined)
	if byteFallback {
		for b := range 256 {
			add(fmt.Sprintf("<0x%02X>", b), 0, spByte)
		}
	}
	for i, s := range []string{"▁he", "ll", "▁hello", "o", "▁w", "or", "ld", "▁", "h", "e", "l", "w", "r", "d", "▁world", "!"} {
		add(s, -float32(i)-1, spNormal)
	}
	m.trainer.vocabSize = int32(len(m.pieces))
	return m
}

func TestModelProtoRoundTrip(t *testing.T) {
	for _, m := range []*modelProto{tinyModel(spModelUnigram, false), tinyModel(spModelBPE, true)} {
		m.selfTest = []spSample{{"hello", "▁hello"}}
		m.denormalizer = &spNormalizerSpec{name: "x", addDummyPrefix: true}
		got, err := parseModelProto(encodeModelProto(m))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, m)
		}
	}
	// Absent fields take proto2's defaults; unknown fields are skipped.
	var w pbWriter
	w.varint(9999, 7)      // unknown field
	w.bytes(200, []byte{}) // extension range
	m, err := parseModelProto(w.b)
	if err != nil {
		t.Fatal(err)
	}
	if m.trainer != defaultTrainerSpec() || !m.normalizer.addDummyPrefix || !m.normalizer.removeExtraWhitespaces || !m.normalizer.escapeWhitespaces {
		t.Fatalf("defaults: %+v %+v", m.trainer, m.normalizer)
	}
}

// TestSentencePieceMalformed: every broken file is an error naming the
// file and the field, never a panic.
func TestSentencePieceMalformed(t *testing.T) {
	good := encodeModelProto(tinyModel(spModelBPE, true))
	withPiece := func(p []byte) []byte {
		var w pbWriter
		w.bytes(1, p)
		return append(append([]byte{}, good...), w.b...)
	}
	piece := func(f func(*pbWriter)) []byte {
		var w pbWriter
		f(&w)
		return w.b
	}
	trainer := func(f func(*pbWriter)) []byte {
		var w pbWriter
		f(&w)
		var o pbWriter
		o.bytes(2, w.b)
		return append(append([]byte{}, good...), o.b...)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "no pieces"},
		{"truncated", good[:len(good)-3], "runs past the end"},
		{"bad key", []byte{0x80}, "truncated or over-long field key"},
		{"field 0", []byte{0x00, 0x01}, "invalid field number 0"},
		{"group", []byte{0x0b}, "unsupported wire type 3"},
		{"piece wire type", piece(func(w *pbWriter) { w.varint(1, 3) }), "pieces (field 1): wire type 0, want 2"},
		{"score wire type", withPiece(piece(func(w *pbWriter) { w.bytes(1, []byte("x")); w.varint(2, 1) })), "pieces[276].score (field 2): wire type 0, want 5"},
		{"piece type", withPiece(piece(func(w *pbWriter) { w.bytes(1, []byte("x")); w.int32(3, 9) })), "pieces[276].type: 9 is not a SentencePiece piece type"},
		{"empty piece", withPiece(piece(func(w *pbWriter) { w.int32(3, spNormal) })), "pieces[276]: piece must not be empty"},
		{"duplicate piece", withPiece(piece(func(w *pbWriter) { w.bytes(1, []byte("ll")) })), `pieces[276]: "ll" is already defined (pieces[261])`},
		{"second unk", withPiece(piece(func(w *pbWriter) { w.bytes(1, []byte("<unk2>")); w.int32(3, spUnknown) })), "unk is already defined"},
		{"bad byte piece", withPiece(piece(func(w *pbWriter) { w.bytes(1, []byte("<0xZZ>")); w.int32(3, spByte) })), `byte piece "<0xZZ>" is invalid`},
		{"model type", trainer(func(w *pbWriter) { w.int32(3, 7) }), "trainer_spec.model_type: 7 is not"},
		{"byte_fallback off", trainer(func(w *pbWriter) { w.bool(35, false) }), "is found although byte_fallback is false"},
		{"trainer wire type", trainer(func(w *pbWriter) { w.bytes(35, []byte{1}) }), "trainer_spec.byte_fallback (field 35): wire type 2, want 0"},
		{"charsmap", func() []byte {
			var n, o pbWriter
			n.bytes(2, []byte{8, 0, 0, 0, 1, 2, 3, 4, 5})
			o.bytes(3, n.b)
			return append(append([]byte{}, good...), o.b...)
		}(), "normalizer_spec.precompiled charsmap"},
		{"varint", append(append([]byte{}, good...), 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "over-long varint"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".model")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want the path and %q", c.name, err, c.want)
		}
	}
	// A model missing byte pieces that byte_fallback needs.
	m := tinyModel(spModelUnigram, true)
	m.pieces = append(m.pieces[:10], m.pieces[11:]...)
	path := filepath.Join(dir, "bytes.model")
	if err := os.WriteFile(path, encodeModelProto(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "not 256 byte pieces") {
		t.Errorf("missing byte piece: %v", err)
	}
}

// FuzzSentencePieceModel: any bytes as a .model file load or fail with an
// error, never a panic, and a model that loads encodes anything.
func FuzzSentencePieceModel(f *testing.F) {
	for _, m := range []*modelProto{tinyModel(spModelUnigram, false), tinyModel(spModelBPE, true), tinyModel(spModelChar, false), tinyModel(spModelWord, true)} {
		f.Add(encodeModelProto(m))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseModelProto(data); err != nil {
			return
		}
		path := filepath.Join(dir, "f.model")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tk, err := Load(path)
		if err != nil {
			return
		}
		e := tk.NewEncoder()
		for _, s := range []string{"", "hello world", " [MASK]  héllo\n", "\xff\x00中", strings.Repeat("lo", 50)} {
			ids, _ := e.Encode(nil, []byte(s))
			for _, id := range ids {
				if id < 0 || int(id) >= tk.BaseVocabSize() {
					t.Fatalf("id %d outside the base vocabulary %d", id, tk.BaseVocabSize())
				}
			}
			_ = tk.Decode(ids)
		}
	})
}

// TestTinyModels checks hand-made models (every model type, with and
// without byte fallback, all normalizer flag combinations) against
// SentencePiece on edge-case strings, and GLM's literal-token rule: the
// model's USER_DEFINED "[MASK]" becomes GLM's mask id and a literal
// "[MASK]" in text is encoded as SentencePiece encodes the same model with
// that piece made CONTROL (never matched in text).
func TestTinyModels(t *testing.T) {
	py := spmPython(t)
	dir := t.TempDir()
	texts := []string{"", " ", "   ", "hello world", "  hello   world!  ", "hello\r\nworld\n", "héllo wörld", "héé!",
		"a [MASK] b", "[MASK]", "x[MASK]y [MASK][MASK]", "▁hello ▁▁world", "\u3000hello\u00a0world", "☃☃ ☃", "ll" + strings.Repeat("lo", 40), "a\x00b \x00", "\x00"}
	var docs []corpus
	c := corpus{name: "tiny"}
	for _, s := range texts {
		c.docs = append(c.docs, []byte(s))
	}
	docs = append(docs, c)
	docsPath := filepath.Join(dir, "docs.json")
	writeDocsJSON(t, docsPath, docs)
	var models, refModels []string
	n := 0
	for _, typ := range []int32{spModelUnigram, spModelBPE, spModelChar, spModelWord} {
		for _, bf := range []bool{false, true} {
			for flags := range 8 {
				m := tinyModel(typ, bf)
				m.normalizer.addDummyPrefix = flags&1 != 0
				m.normalizer.removeExtraWhitespaces = flags&2 != 0
				m.trainer.treatWhitespaceAsSuffix = flags&4 != 0
				path := filepath.Join(dir, fmt.Sprintf("tiny%d.model", n))
				if err := os.WriteFile(path, encodeModelProto(m), 0o644); err != nil {
					t.Fatal(err)
				}
				// glmkit keeps the adopted [MASK] out of encoding: as if the
				// piece were an UNUSED one that no text can reach.
				m.pieces[3] = spPiece{piece: "\uFFFF[MASK]", typ: spUnused}
				ref := filepath.Join(dir, fmt.Sprintf("tiny%d-ref.model", n))
				if err := os.WriteFile(ref, encodeModelProto(m), 0o644); err != nil {
					t.Fatal(err)
				}
				models, refModels = append(models, path), append(refModels, ref)
				n++
			}
		}
	}
	// A WORD model without the dummy prefix sees "<s>" as a whole word:
	// SentencePiece cannot encode it (EncodeAsIds returns a truncated
	// result), glmkit returns an error for that document.
	if tk, err := Load(models[48]); err != nil {
		t.Fatal(err)
	} else if _, err := tk.NewEncoder().Encode(nil, []byte("<s>")); err == nil || !strings.Contains(err.Error(), "CONTROL piece") {
		t.Errorf("WORD model, text <s>: error %v, want the CONTROL piece error", err)
	}
	want := spmReference(t, py, dir, docsPath, len(texts), refModels)
	for i, path := range models {
		tk, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if s := tk.Special(); s.Mask != 3 || s.EOS != 2 || s.CLS != 1 || s.Unk != 0 || s.Sep != 2 || int(s.SOP) != tk.BaseVocabSize() {
			t.Errorf("%s: special ids %+v", path, s)
		}
		e := tk.NewEncoder()
		for k, s := range texts {
			ids, _ := e.Encode(nil, []byte(s))
			if !slices.Equal(ids, want[i][k]) {
				t.Errorf("%s: %q: ids %v, SentencePiece %v", path, s, ids, want[i][k])
			}
			for _, id := range ids {
				if id == tk.Special().Mask {
					t.Errorf("%s: %q: literal [MASK] encoded as the mask id", path, s)
				}
			}
		}
	}
}

// TestSelfTestData: a model's own self_test_data is checked when it loads,
// as SentencePiece does; a sample that does not encode as recorded is an
// error naming the sample.
func TestSelfTestData(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(spModelBPE, true)
	m.selfTest = []spSample{{"hello world", "▁ h e ll o ▁w or ld"}}
	path := filepath.Join(dir, "ok.model")
	if err := os.WriteFile(path, encodeModelProto(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("matching self test: %v", err)
	}
	m.selfTest = append(m.selfTest, spSample{"hello", "▁hello"})
	path = filepath.Join(dir, "bad.model")
	if err := os.WriteFile(path, encodeModelProto(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "self_test_data.samples[1]") {
		t.Fatalf("failing self test: %v", err)
	}
}

// TestSentencePieceSpecialNames: the trainer's eos_id and bos_id give GLM's
// eos and [CLS] even when the pieces have other names.
func TestSentencePieceSpecialNames(t *testing.T) {
	m := tinyModel(spModelUnigram, false)
	m.pieces[1].piece, m.pieces[2].piece = "[BOS]", "[EOS]"
	m.trainer.bosPiece, m.trainer.eosPiece = "[BOS]", "[EOS]"
	path := filepath.Join(t.TempDir(), "names.model")
	if err := os.WriteFile(path, encodeModelProto(m), 0o644); err != nil {
		t.Fatal(err)
	}
	tk, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := tk.Special(); s.EOS != 2 || s.Pad != 2 || s.CLS != 1 || s.Sep != 2 || s.Unk != 0 || s.Mask != 3 {
		t.Errorf("special ids %+v", s)
	}
	if tk.SentenceEnds()[2] || tk.SentenceEnds()[1] {
		t.Error("control pieces end sentences")
	}
}
