package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/glmkit/glmkit/masking"
)

// Reason says why a record was not used as a document, or what was
// repaired in it.
type Reason uint8

// Reasons. Blank records are normal (empty lines between paragraphs);
// every other reason is bad input: it is counted, the first few are
// reported with their file and line, and --strict makes them fatal.
const (
	OK             Reason = iota
	Blank                 // an empty or whitespace-only record, or one whose text tokenizes to nothing
	BadJSON               // a JSON Lines record that does not parse
	MissingField          // the text field is absent
	NotString             // the text field is not a string
	TooLong               // a record longer than --max-doc-bytes
	Truncated             // the input ends inside a record (a truncated .gz or .zst)
	TokenizerErr          // the tokenizer failed on the text
	InvalidUTF8           // repaired: invalid UTF-8 replaced by U+FFFD
	NULBytes              // repaired: NUL bytes removed
	DuplicateField        // repaired: a key of the text field's path occurs twice in its object; the last value is used, as Python's json does
	HeldOut               // a record of the other split of a --valid-fraction build (neither bad nor repaired)
	numReasons
)

var reasonNames = [numReasons]string{"ok", "blank", "bad_json", "missing_field", "not_string", "too_long", "truncated", "tokenizer_error", "invalid_utf8", "nul_bytes", "duplicate_field", "held_out"}

func (r Reason) String() string { return reasonNames[r] }

// skip reports whether a record with this reason is left out for bad
// input (a blank record is left out too, but is not bad input).
func (r Reason) skip() bool { return r >= BadJSON && r < InvalidUTF8 }

// repair reports whether a record with this reason was used, repaired (or
// read as Python would read it).
func (r Reason) repair() bool { return r >= InvalidUTF8 && r < HeldOut }

// DocStats counts what the reading and packing of one task saw. It is a
// plain value: the packer snapshots it at every sample boundary, so a
// resumed task starts from exactly the counts of the shards it keeps.
type DocStats struct {
	Records      int64             // records read, blank and skipped included
	Documents    int64             // records that became documents
	Bytes        int64             // bytes of the records' text
	SourceTokens int64             // tokens of the documents, without [CLS] and eos
	Pieces       int64             // document pieces: a long document cut across samples counts once per piece
	Samples      int64             // samples packed
	Reasons      [numReasons]int64 // skipped and repaired records, by reason
	TruncatedIn  int64             // inputs that ended early (truncated .gz/.zst)
}

// RowStats counts the rows a task wrote.
type RowStats struct {
	Rows       int64
	RowTokens  int64 // Σ row length (L + 2K, or L + 1)
	LossTokens int64
	Objectives [masking.NumObjectives]ObjectiveStats
	Shortfall  int64   // token rows that could not reach their target
	ShortTok   int64   // tokens missing from those targets
	Rebalanced int64   // token rows GLM would have dropped
	Fallback   int64   // sentence rows without a sentence, masked at token level
	SentShort  int64   // sentence rows whose sentences all together fall short of the target
	SentShortT int64   // tokens missing from those targets
	SpanLen    []int64 // histogram of token-level span lengths: SpanLen[l] rows of length l
}

// ObjectiveStats are per-objective totals.
type ObjectiveStats struct {
	Rows         int64 `json:"rows"`
	SourceTokens int64 `json:"source_tokens"`
	Masked       int64 `json:"masked_tokens"`
	Spans        int64 `json:"spans"`
}

func (r *RowStats) add(s *masking.Sample) {
	r.Rows++
	r.RowTokens += int64(len(s.Input))
	for _, m := range s.LossMask {
		r.LossTokens += int64(m)
	}
	o := &r.Objectives[s.Objective]
	o.Rows++
	o.SourceTokens += int64(s.NSource)
	o.Masked += int64(s.Masked())
	o.Spans += int64(len(s.Spans))
	if s.Shortfall > 0 {
		r.Shortfall++
		r.ShortTok += int64(s.Shortfall)
	}
	if s.Rebalanced {
		r.Rebalanced++
	}
	if s.Fallback {
		r.Fallback++
	}
	if s.SentenceShort > 0 {
		r.SentShort++
		r.SentShortT += int64(s.SentenceShort)
	}
	if s.Objective == masking.Token {
		for _, sp := range s.Spans {
			l := int(sp.Len())
			if l >= len(r.SpanLen) {
				r.SpanLen = append(r.SpanLen, make([]int64, l+1-len(r.SpanLen))...)
			}
			r.SpanLen[l]++
		}
	}
}

// Stats are a build's or a task's statistics, as the manifest records
// them.
type Stats struct {
	Doc DocStats
	Row RowStats
	// Damage locates each damaged input: where the verified data ended.
	Damage []Damage
}

// Damage is where an input turned out damaged (a corrupt or truncated
// compressed frame or gzip member, a damaged Parquet row group): what was
// read before it is kept, nothing after it in that input is.
type Damage struct {
	Input  string `json:"input"`
	Offset int64  `json:"offset"` // byte offset of the damaged frame, member or column chunk in the file
	Line   int64  `json:"line"`   // first line (Parquet: row) not read
	Detail string `json:"detail"`
}

// maxDamageNotes bounds the damage notes a task record may hold.
const maxDamageNotes = 16

// Add adds o to s: every counter (see fields), the span length
// histograms, and o's damage notes after s's.
func (s *Stats) Add(o Stats) {
	sf, of := s.fields(), o.fields()
	for i, f := range sf {
		f.v.add(of[i].v)
	}
}

// Skipped is the number of records left out for bad input (blank records
// not included).
func (s *Stats) Skipped() int64 { return s.records(Reason.skip) }

// Repaired is the number of records used after a repair (see Reason).
func (s *Stats) Repaired() int64 { return s.records(Reason.repair) }

// records is the number of records of the reasons that are.
func (s *Stats) records(are func(Reason) bool) int64 {
	var n int64
	for r, c := range s.Doc.Reasons {
		if are(Reason(r)) {
			n += c
		}
	}
	return n
}

// fields is the JSON form of s, key by key in its order: every counter of
// Stats appears here once, so that Add, MarshalJSON and UnmarshalJSON,
// which all go through this list, cover the same fields
// (TestStatsAddCoversEveryField checks that they are all of them).
func (s *Stats) fields() []statsField {
	d, r := &s.Doc, &s.Row
	return []statsField{
		{"records", count{&d.Records}},
		{"documents", count{&d.Documents}},
		{"blank_records", count{&d.Reasons[Blank]}},
		{"skipped", reasons{&d.Reasons, BadJSON, InvalidUTF8}},
		{"repaired", reasons{&d.Reasons, InvalidUTF8, HeldOut}},
		{"truncated_inputs", count{&d.TruncatedIn}},
		{"text_bytes", count{&d.Bytes}},
		{"text_tokens", count{&d.SourceTokens}}, // the documents' tokens, without [CLS] and eos
		{"source_tokens", formerName{&d.SourceTokens}},
		{"document_pieces", count{&d.Pieces}},
		{"samples", count{&d.Samples}},
		{"rows", count{&r.Rows}},
		{"row_tokens", count{&r.RowTokens}},
		{"loss_tokens", count{&r.LossTokens}},
		{"objectives", objectives{&r.Objectives}},
		{"masked_fraction", maskedFraction{&r.Objectives}},
		{"token_rows_short_of_target", count{&r.Shortfall}},
		{"token_shortfall_tokens", count{&r.ShortTok}},
		{"token_rows_rebalanced", count{&r.Rebalanced}},
		{"sentence_rows_fallback_to_token", count{&r.Fallback}},
		{"sentence_rows_short_of_target", omitZero{count{&r.SentShort}}}, // left out while zero: the manifests of builds before it read the same
		{"sentence_shortfall_tokens", omitZero{count{&r.SentShortT}}},
		{"token_span_length_histogram", histogram{&r.SpanLen}},
		{"damaged", damage{&s.Damage}},
		{"held_out", omitZero{count{&d.Reasons[HeldOut]}}}, // records of the other split
	}
}

// A statsField is one key of the JSON form of Stats and the value it
// names.
type statsField struct {
	key string
	v   statsValue
}

// A statsValue is one or more fields of a Stats: it adds the same value of
// another Stats to itself, writes itself as JSON, reads itself back, and
// checks what it read.
type statsValue interface {
	add(o statsValue)
	json() (v any, write bool)
	set(raw json.RawMessage) error
	check() error
}

var errNegative = errors.New("a negative count")

func nonNegative(ns ...int64) error {
	for _, n := range ns {
		if n < 0 {
			return errNegative
		}
	}
	return nil
}

// count is one counter.
type count struct{ n *int64 }

func (c count) add(o statsValue)              { *c.n += *o.(count).n }
func (c count) json() (any, bool)             { return *c.n, true }
func (c count) set(raw json.RawMessage) error { return json.Unmarshal(raw, c.n) }
func (c count) check() error                  { return nonNegative(*c.n) }

// omitZero is a counter whose key is left out while it is zero.
type omitZero struct{ count }

func (c omitZero) add(o statsValue)  { c.count.add(o.(omitZero).count) }
func (c omitZero) json() (any, bool) { return *c.n, *c.n != 0 }

// formerName is what builds before text_tokens called it: read (the larger
// of the two wins), never written; text_tokens's count adds and checks it.
type formerName struct{ n *int64 }

func (formerName) add(statsValue)    {}
func (formerName) json() (any, bool) { return nil, false }
func (formerName) check() error      { return nil }

func (c formerName) set(raw json.RawMessage) error {
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return err
	}
	*c.n = max(*c.n, n)
	return nil
}

// reasons are the counts of the reasons [lo, hi), by name.
type reasons struct {
	n      *[numReasons]int64
	lo, hi Reason
}

func (c reasons) add(o statsValue) {
	for r := c.lo; r < c.hi; r++ {
		c.n[r] += o.(reasons).n[r]
	}
}

func (c reasons) check() error { return nonNegative(c.n[c.lo:c.hi]...) }

func (c reasons) json() (any, bool) {
	m := map[string]int64{}
	for r := c.lo; r < c.hi; r++ {
		m[r.String()] = c.n[r]
	}
	return m, true
}

func (c reasons) set(raw json.RawMessage) error {
	var m map[string]int64
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	for r := c.lo; r < c.hi; r++ {
		c.n[r] = m[r.String()]
	}
	return nil
}

// objectives are the per-objective totals, by objective name.
type objectives struct {
	o *[masking.NumObjectives]ObjectiveStats
}

func (c objectives) add(o statsValue) {
	for i, b := range o.(objectives).o {
		a := &c.o[i]
		a.Rows += b.Rows
		a.SourceTokens += b.SourceTokens
		a.Masked += b.Masked
		a.Spans += b.Spans
	}
}

func (c objectives) check() error {
	for _, o := range c.o {
		if err := nonNegative(o.Rows, o.SourceTokens, o.Masked, o.Spans); err != nil {
			return err
		}
	}
	return nil
}

func (c objectives) json() (any, bool) {
	m := map[string]ObjectiveStats{}
	for o, st := range c.o {
		m[masking.Objective(o).String()] = st
	}
	return m, true
}

func (c objectives) set(raw json.RawMessage) error {
	var m map[string]ObjectiveStats
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	for name, st := range m {
		o, err := masking.ParseObjective(name)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		c.o[o] = st
	}
	return nil
}

// maskedFraction is derived from the objectives: written, not read.
type maskedFraction struct {
	o *[masking.NumObjectives]ObjectiveStats
}

func (maskedFraction) add(statsValue)            {}
func (maskedFraction) set(json.RawMessage) error { return nil }
func (maskedFraction) check() error              { return nil }

func (m maskedFraction) json() (any, bool) {
	f := map[string]float64{}
	for o, st := range m.o {
		if st.SourceTokens > 0 {
			f[masking.Objective(o).String()] = float64(st.Masked) / float64(st.SourceTokens)
		}
	}
	return f, true
}

// histogram is the token span length histogram.
type histogram struct{ s *[]int64 }

func (h histogram) add(o statsValue) {
	more := *o.(histogram).s
	if len(more) > len(*h.s) {
		*h.s = append(*h.s, make([]int64, len(more)-len(*h.s))...)
	}
	for i, n := range more {
		(*h.s)[i] += n
	}
}

func (h histogram) check() error {
	if len(*h.s) > 1<<16 {
		return fmt.Errorf("%d entries", len(*h.s))
	}
	return nonNegative(*h.s...)
}

func (h histogram) json() (any, bool) {
	if *h.s == nil {
		return []int64{}, true
	}
	return *h.s, true
}

func (h histogram) set(raw json.RawMessage) error {
	var s []int64
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	if *h.s = nil; len(s) > 0 {
		*h.s = s
	}
	return nil
}

// damage are the damage notes, in order; the key is left out when there
// are none.
type damage struct{ s *[]Damage }

func (d damage) add(o statsValue)              { *d.s = append(*d.s, *o.(damage).s...) }
func (d damage) json() (any, bool)             { return *d.s, len(*d.s) > 0 }
func (d damage) set(raw json.RawMessage) error { return json.Unmarshal(raw, d.s) }

func (d damage) check() error {
	if len(*d.s) > maxDamageNotes {
		return fmt.Errorf("%d damage notes", len(*d.s))
	}
	return nil
}

// MarshalJSON writes the stats with named reasons and objectives, as one
// object whose keys are those of fields, in its order.
func (s Stats) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for _, f := range s.fields() {
		v, ok := f.v.json()
		if !ok {
			continue
		}
		jv, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(strconv.AppendQuote(b, f.key), ':')
		b = append(b, jv...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON wrote; a key it does not write is
// ignored, and a key it writes that is missing leaves its fields zero.
func (s *Stats) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = Stats{}
	for _, f := range s.fields() {
		if raw, ok := m[f.key]; ok {
			if err := f.v.set(raw); err != nil {
				return err
			}
		}
	}
	return nil
}
