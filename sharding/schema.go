// Package sharding is glmkit's file format: the training shards, Arrow IPC
// files (the file format, with a footer, so they map with no copy and open
// in pyarrow, polars, Arrow JS and arrow-go), and the manifest.json that
// lists and seals them. It owns the schema, the Writer, the manifest, the
// zero-copy Reader and the checks every read makes (checksums, structure,
// row invariants, Check and Verify). Batches, epochs, orders and mixtures
// are the training side's: package trainer/loader. With
// pipeline/parquettext it is one of the two packages that import arrow-go.
//
// One row is one GLM blank-infilling example (see package masking). Format
// 2, which glmkit writes, stores ids and positions in 16 bits where they fit:
//
//	input_ids           list<uint16>  Part A ++ Part B inputs (list<int32> when the vocabulary exceeds 65,536 ids)
//	target_ids          list<uint16>  aligned targets, no shift (likewise)
//	loss_mask           list<bool>    true on Part B (one bit per position)
//	position_ids        list<uint16>  dim-1 positions (list<int32> when seq_len > 65,534)
//	block_position_ids  list<uint16>  dim-2 positions (likewise)
//	sep                 int32         len(Part A)
//	objective           dictionary<int8, utf8>  token | sentence | document
//	doc_id              uint64        first document of the row (task<<40 | index)
//	n_source            int32         source tokens before masking
//
// Format 1 stored the four id and position columns as list<int32> and the
// loss mask as list<uint8>; the readers accept both, and a mixture may
// combine them. The schema's metadata records the format version, the
// element types, the tokenizer and its sha256, every special id, seq_len,
// the masking config and the seed.
package sharding

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/glmkit/glmkit/masking"
)

// FormatVersion is the version of the shard files glmkit writes. Version 2
// changed only the storage of the rows (narrow types, a bit per loss mask
// position); the rows themselves, and the seeded masking output that
// masking.FormatVersion versions, are those of version 1.
const FormatVersion = 2

// MinFormatVersion is the oldest format the readers accept.
const MinFormatVersion = 1

// Column names, in schema order.
const (
	ColInput     = "input_ids"
	ColTarget    = "target_ids"
	ColLossMask  = "loss_mask"
	ColPos       = "position_ids"
	ColBlockPos  = "block_position_ids"
	ColSep       = "sep"
	ColObjective = "objective"
	ColDocID     = "doc_id"
	ColNSource   = "n_source"
)

// Meta is what every shard of a build records in its schema metadata, under
// keys prefixed "glmkit.".
type Meta struct {
	FormatVersion   int                `json:"format_version"`
	Tokenizer       string             `json:"tokenizer"`
	TokenizerSHA256 string             `json:"tokenizer_sha256"`
	VocabSize       int                `json:"vocab_size"` // model vocabulary, padded to a multiple of 128
	Special         masking.SpecialIDs `json:"special_ids"`
	SeqLen          int                `json:"seq_len"`
	MaskEpochs      int                `json:"mask_epochs"`
	Masking         masking.Config     `json:"masking"` // includes the seed

	// TokenizerFamily is the tokenizer's model family ("wordpiece",
	// "bpe/cl100k", "sentencepiece/unigram", ...); TokenizerOptions the
	// load options that are not in its files (the pattern of a .tiktoken,
	// the lower-casing of a vocab.txt), as tokenizer.LoadOptions.String
	// writes them. Both are optional in the schema metadata (older shards
	// lack them).
	TokenizerFamily  string `json:"tokenizer_family,omitempty"`
	TokenizerOptions string `json:"tokenizer_options,omitempty"`
}

// TokenizerDiff names the first field of the tokenization where a and b
// differ (the tokenizer file's hash, its family, the vocabulary size, the
// special ids) with its two values, or returns "". Builds with no
// difference turn text into the same ids, so one training run can mix
// them. The tokenizer's path may differ, and so may the options it was
// loaded with, since the family says what they decided (a vocab.txt's
// casing, a pattern); a family that one of them does not record (a format
// 1 build) is not compared (SameFamily).
func TokenizerDiff(a, b Meta) string {
	if SameFamily(a.TokenizerFamily, b.TokenizerFamily) {
		a.TokenizerFamily = b.TokenizerFamily
	}
	if name, ja, jb := firstDiff(a, b, true); name != "" {
		return fmt.Sprintf("%s %s and %s", name, ja, jb)
	}
	return ""
}

// SameFamily reports whether two tokenizer families (Meta.TokenizerFamily)
// can be the same tokenization: equal, or one of them not recorded (a
// format 1 build, an older glmtrain's record), which is not compared.
func SameFamily(a, b string) bool { return a == "" || b == "" || a == b }

// firstDiff returns the first field of Meta (of the tokenization alone,
// with tokenization) where a and b differ, by its JSON name, and its two
// values as JSON; name is "" where none differs.
func firstDiff(a, b Meta, tokenization bool) (name string, ja, jb []byte) {
	for _, f := range []struct {
		name string
		tok  bool // a field of the tokenization
		a, b any
	}{
		{"format_version", false, a.FormatVersion, b.FormatVersion},
		{"tokenizer", false, a.Tokenizer, b.Tokenizer},
		{"tokenizer_sha256", true, a.TokenizerSHA256, b.TokenizerSHA256},
		{"tokenizer_family", true, a.TokenizerFamily, b.TokenizerFamily},
		{"tokenizer_options", false, a.TokenizerOptions, b.TokenizerOptions},
		{"vocab_size", true, a.VocabSize, b.VocabSize},
		{"special_ids", true, a.Special, b.Special},
		{"seq_len", false, a.SeqLen, b.SeqLen},
		{"mask_epochs", false, a.MaskEpochs, b.MaskEpochs},
		{"masking", false, a.Masking, b.Masking},
	} {
		if tokenization && !f.tok {
			continue
		}
		ja, _ = json.Marshal(f.a)
		jb, _ = json.Marshal(f.b)
		if !bytes.Equal(ja, jb) {
			return f.name, ja, jb
		}
	}
	return "", nil, nil
}

// Narrow16 bounds: an id column is uint16 when every id of the vocabulary
// is below 65,536; a position column when positions (< seq_len) and block
// positions (≤ seq_len + 1) are below 65,536.
const (
	maxNarrowVocab  = 1 << 16
	maxNarrowSeqLen = 1<<16 - 2
)

// NarrowIDs reports whether the build's input and target ids are stored as
// uint16 (format 2 with a vocabulary of at most 65,536 ids).
func (m Meta) NarrowIDs() bool { return m.FormatVersion >= 2 && m.VocabSize <= maxNarrowVocab }

// NarrowPositions reports whether the build's position and block position
// columns are stored as uint16 (format 2 with seq_len ≤ 65,534).
func (m Meta) NarrowPositions() bool { return m.FormatVersion >= 2 && m.SeqLen <= maxNarrowSeqLen }

// BytesPerPosition is what one row position costs in the shard's buffers:
// the four id and position columns and the loss mask (17 in format 1; 8⅛
// in format 2 with narrow ids and positions).
func (m Meta) BytesPerPosition() float64 {
	if m.FormatVersion < 2 {
		return 17
	}
	b := 4*4 + 0.125
	if m.NarrowIDs() {
		b -= 4
	}
	if m.NarrowPositions() {
		b -= 4
	}
	return b
}

func (m Meta) idType() arrow.DataType {
	if m.NarrowIDs() {
		return arrow.PrimitiveTypes.Uint16
	}
	return arrow.PrimitiveTypes.Int32
}

func (m Meta) posType() arrow.DataType {
	if m.NarrowPositions() {
		return arrow.PrimitiveTypes.Uint16
	}
	return arrow.PrimitiveTypes.Int32
}

func (m Meta) lossType() arrow.DataType {
	if m.FormatVersion >= 2 {
		return arrow.FixedWidthTypes.Boolean
	}
	return arrow.PrimitiveTypes.Uint8
}

var objectiveType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}

// Schema returns the Arrow schema of a build's shards, for the format
// version m names.
func Schema(m Meta) (*arrow.Schema, error) {
	if m.FormatVersion < MinFormatVersion || m.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("format version %d; this glmkit reads versions %d to %d", m.FormatVersion, MinFormatVersion, FormatVersion)
	}
	special, err := json.Marshal(m.Special)
	if err != nil {
		return nil, err
	}
	mask, err := json.Marshal(m.Masking)
	if err != nil {
		return nil, err
	}
	keys := []string{"glmkit.format_version", "glmkit.tokenizer", "glmkit.tokenizer_sha256", "glmkit.vocab_size",
		"glmkit.special_ids", "glmkit.seq_len", "glmkit.mask_epochs", "glmkit.masking", "glmkit.seed"}
	vals := []string{strconv.Itoa(m.FormatVersion), m.Tokenizer, m.TokenizerSHA256, strconv.Itoa(m.VocabSize),
		string(special), strconv.Itoa(m.SeqLen), strconv.Itoa(m.MaskEpochs), string(mask),
		strconv.FormatUint(m.Masking.Seed, 10)}
	for _, kv := range [][2]string{{"glmkit.tokenizer_family", m.TokenizerFamily}, {"glmkit.tokenizer_options", m.TokenizerOptions}} {
		if kv[1] != "" {
			keys, vals = append(keys, kv[0]), append(vals, kv[1])
		}
	}
	if m.FormatVersion >= 2 {
		keys = append(keys, "glmkit.id_type", "glmkit.position_type", "glmkit.loss_mask_type")
		vals = append(vals, m.idType().String(), m.posType().String(), m.lossType().String())
	}
	md := arrow.NewMetadata(keys, vals)
	ids, pos := arrow.ListOf(m.idType()), arrow.ListOf(m.posType())
	return arrow.NewSchema([]arrow.Field{
		{Name: ColInput, Type: ids},
		{Name: ColTarget, Type: ids},
		{Name: ColLossMask, Type: arrow.ListOf(m.lossType())},
		{Name: ColPos, Type: pos},
		{Name: ColBlockPos, Type: pos},
		{Name: ColSep, Type: arrow.PrimitiveTypes.Int32},
		{Name: ColObjective, Type: objectiveType},
		{Name: ColDocID, Type: arrow.PrimitiveTypes.Uint64},
		{Name: ColNSource, Type: arrow.PrimitiveTypes.Int32},
	}, &md), nil
}

// MetaFromSchema reads a shard schema's metadata back and checks that the
// schema is glmkit's.
func MetaFromSchema(s *arrow.Schema) (Meta, error) {
	var m Meta
	get := func(k string) (string, error) {
		v, ok := s.Metadata().GetValue("glmkit." + k)
		if !ok {
			return "", fmt.Errorf("schema metadata has no glmkit.%s: not a glmkit shard", k)
		}
		return v, nil
	}
	var err error
	atoi := func(k string) int {
		if err != nil {
			return 0
		}
		var v string
		if v, err = get(k); err == nil {
			var n int
			n, err = strconv.Atoi(v)
			if err != nil {
				err = fmt.Errorf("glmkit.%s: %w", k, err)
			}
			return n
		}
		return 0
	}
	m.FormatVersion = atoi("format_version")
	m.VocabSize = atoi("vocab_size")
	m.SeqLen = atoi("seq_len")
	m.MaskEpochs = atoi("mask_epochs")
	if err != nil {
		return m, err
	}
	if m.Tokenizer, err = get("tokenizer"); err != nil {
		return m, err
	}
	if m.TokenizerSHA256, err = get("tokenizer_sha256"); err != nil {
		return m, err
	}
	m.TokenizerFamily, _ = s.Metadata().GetValue("glmkit.tokenizer_family")
	m.TokenizerOptions, _ = s.Metadata().GetValue("glmkit.tokenizer_options")
	for _, f := range []struct {
		k   string
		dst any
	}{{"special_ids", &m.Special}, {"masking", &m.Masking}} {
		k, dst := f.k, f.dst
		v, err := get(k)
		if err != nil {
			return m, err
		}
		if err := json.Unmarshal([]byte(v), dst); err != nil {
			return m, fmt.Errorf("glmkit.%s: %w", k, err)
		}
	}
	want, err := Schema(m)
	if err != nil {
		return m, err
	}
	if !s.Equal(want) {
		return m, fmt.Errorf("columns differ from glmkit format %d: have %v", m.FormatVersion, s)
	}
	if !s.Metadata().Equal(want.Metadata()) {
		return m, fmt.Errorf("schema metadata %v differs from what glmkit format %d writes for it (%v)", s.Metadata(), m.FormatVersion, want.Metadata())
	}
	return m, nil
}
