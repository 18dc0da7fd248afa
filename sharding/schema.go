// Package sharding writes and reads glmkit's training shards: Arrow IPC
// files (the file format, with a footer, so they map with no copy and open
// in pyarrow, polars, Arrow JS and arrow-go) plus a manifest.json.
//
// One row is one GLM blank-infilling example (see package masking):
//
//	input_ids           list<int32>   Part A ++ Part B inputs
//	target_ids          list<int32>   aligned targets (no shift)
//	loss_mask           list<uint8>   1 on Part B
//	position_ids        list<int32>   dim-1 positions
//	block_position_ids  list<int32>   dim-2 positions
//	sep                 int32         len(Part A)
//	objective           dictionary<int8, utf8>  token | sentence | document
//	doc_id              uint64        first document of the row (task<<40 | index)
//	n_source            int32         source tokens before masking
//
// The schema's metadata records the format version, the tokenizer and its
// sha256, every special id, seq_len, the masking config and the seed.
package sharding

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/glmkit/glmkit/masking"
)

// FormatVersion is the version of the rows and files glmkit writes; it is
// masking.FormatVersion, so a change in the seeded masking output or in the
// shard layout is one version bump.
const FormatVersion = masking.FormatVersion

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

var objectiveType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}

// Schema returns the Arrow schema of a build's shards.
func Schema(m Meta) (*arrow.Schema, error) {
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
	md := arrow.NewMetadata(keys, vals)
	i32list := arrow.ListOf(arrow.PrimitiveTypes.Int32)
	return arrow.NewSchema([]arrow.Field{
		{Name: ColInput, Type: i32list},
		{Name: ColTarget, Type: i32list},
		{Name: ColLossMask, Type: arrow.ListOf(arrow.PrimitiveTypes.Uint8)},
		{Name: ColPos, Type: i32list},
		{Name: ColBlockPos, Type: i32list},
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
	return m, nil
}
