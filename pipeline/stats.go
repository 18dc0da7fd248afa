package pipeline

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/glmkit/glmkit/masking"
)

// Reason says why a record was not used as a document, or what was
// repaired in it.
type Reason uint8

// Reasons. Blank records are normal (empty lines between paragraphs);
// every other reason is bad input: it is counted, the first few are
// reported with their file and line, and --strict makes them fatal.
const (
	OK           Reason = iota
	Blank               // an empty or whitespace-only record, or one whose text tokenizes to nothing
	BadJSON             // a JSON Lines record that does not parse
	MissingField        // the text field is absent
	NotString           // the text field is not a string
	TooLong             // a record longer than --max-doc-bytes
	Truncated           // the input ends inside a record (a truncated .gz or .zst)
	TokenizerErr        // the tokenizer failed on the text
	InvalidUTF8         // repaired: invalid UTF-8 replaced by U+FFFD
	NULBytes            // repaired: NUL bytes kept as text (BERT drops them, byte-level BPE encodes them)
	HeldOut             // a record of the other split of a --valid-fraction build (neither bad nor repaired)
	numReasons
)

var reasonNames = [numReasons]string{"ok", "blank", "bad_json", "missing_field", "not_string", "too_long", "truncated", "tokenizer_error", "invalid_utf8", "nul_bytes", "held_out"}

func (r Reason) String() string { return reasonNames[r] }

// skip reports whether a record with this reason is left out.
func (r Reason) skip() bool { return r != OK && r < InvalidUTF8 }

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

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	d, od := &s.Doc, o.Doc
	d.Records += od.Records
	d.Documents += od.Documents
	d.Bytes += od.Bytes
	d.SourceTokens += od.SourceTokens
	d.Pieces += od.Pieces
	d.Samples += od.Samples
	d.TruncatedIn += od.TruncatedIn
	for i := range d.Reasons {
		d.Reasons[i] += od.Reasons[i]
	}
	r, or := &s.Row, o.Row
	r.Rows += or.Rows
	r.RowTokens += or.RowTokens
	r.LossTokens += or.LossTokens
	r.Shortfall += or.Shortfall
	r.ShortTok += or.ShortTok
	r.Rebalanced += or.Rebalanced
	r.Fallback += or.Fallback
	for i := range r.Objectives {
		a, b := &r.Objectives[i], or.Objectives[i]
		a.Rows += b.Rows
		a.SourceTokens += b.SourceTokens
		a.Masked += b.Masked
		a.Spans += b.Spans
	}
	s.Damage = append(s.Damage, o.Damage...)
	if len(or.SpanLen) > len(r.SpanLen) {
		r.SpanLen = append(r.SpanLen, make([]int64, len(or.SpanLen)-len(r.SpanLen))...)
	}
	for i, n := range or.SpanLen {
		r.SpanLen[i] += n
	}
}

// Skipped is the number of records left out for bad input (blank records
// not included).
func (s *Stats) Skipped() int64 {
	var n int64
	for r := BadJSON; r < InvalidUTF8; r++ {
		n += s.Doc.Reasons[r]
	}
	return n
}

// statsJSON is the stable JSON form of Stats (map keys are sorted by
// encoding/json, so it is deterministic).
type statsJSON struct {
	Records    int64                     `json:"records"`
	Documents  int64                     `json:"documents"`
	Blank      int64                     `json:"blank_records"`
	Skipped    map[string]int64          `json:"skipped"`
	Repaired   map[string]int64          `json:"repaired"`
	Truncated  int64                     `json:"truncated_inputs"`
	Bytes      int64                     `json:"text_bytes"`
	TextTokens int64                     `json:"text_tokens"`             // the documents' tokens, without [CLS] and eos
	OldText    int64                     `json:"source_tokens,omitempty"` // what builds before text_tokens called it (read only)
	Pieces     int64                     `json:"document_pieces"`
	Samples    int64                     `json:"samples"`
	Rows       int64                     `json:"rows"`
	RowTokens  int64                     `json:"row_tokens"`
	LossTokens int64                     `json:"loss_tokens"`
	Objectives map[string]ObjectiveStats `json:"objectives"`
	MaskedFrac map[string]float64        `json:"masked_fraction"`
	Shortfall  int64                     `json:"token_rows_short_of_target"`
	ShortTok   int64                     `json:"token_shortfall_tokens"`
	Rebalanced int64                     `json:"token_rows_rebalanced"`
	Fallback   int64                     `json:"sentence_rows_fallback_to_token"`
	SpanLen    []int64                   `json:"token_span_length_histogram"`
	Damage     []Damage                  `json:"damaged,omitempty"`
	HeldOut    int64                     `json:"held_out,omitempty"` // records of the other split
}

// MarshalJSON writes the stats with named reasons and objectives.
func (s Stats) MarshalJSON() ([]byte, error) {
	j := statsJSON{
		Records: s.Doc.Records, Documents: s.Doc.Documents, Blank: s.Doc.Reasons[Blank],
		Skipped: map[string]int64{}, Repaired: map[string]int64{}, Truncated: s.Doc.TruncatedIn,
		Bytes: s.Doc.Bytes, TextTokens: s.Doc.SourceTokens, Pieces: s.Doc.Pieces, Samples: s.Doc.Samples,
		Rows: s.Row.Rows, RowTokens: s.Row.RowTokens, LossTokens: s.Row.LossTokens,
		Objectives: map[string]ObjectiveStats{}, MaskedFrac: map[string]float64{},
		Shortfall: s.Row.Shortfall, ShortTok: s.Row.ShortTok, Rebalanced: s.Row.Rebalanced, Fallback: s.Row.Fallback,
		SpanLen: s.Row.SpanLen, Damage: s.Damage,
	}
	if j.SpanLen == nil {
		j.SpanLen = []int64{}
	}
	for r := BadJSON; r < HeldOut; r++ {
		if r < InvalidUTF8 {
			j.Skipped[r.String()] = s.Doc.Reasons[r]
		} else {
			j.Repaired[r.String()] = s.Doc.Reasons[r]
		}
	}
	j.HeldOut = s.Doc.Reasons[HeldOut]
	for o, st := range s.Row.Objectives {
		name := masking.Objective(o).String()
		j.Objectives[name] = st
		if st.SourceTokens > 0 {
			j.MaskedFrac[name] = float64(st.Masked) / float64(st.SourceTokens)
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Stats) UnmarshalJSON(b []byte) error {
	var j statsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Stats{}
	d := &s.Doc
	d.Records, d.Documents, d.TruncatedIn = j.Records, j.Documents, j.Truncated
	d.Bytes, d.SourceTokens, d.Pieces, d.Samples = j.Bytes, max(j.TextTokens, j.OldText), j.Pieces, j.Samples
	d.Reasons[Blank] = j.Blank
	for r := BadJSON; r < HeldOut; r++ {
		m := j.Skipped
		if r >= InvalidUTF8 {
			m = j.Repaired
		}
		d.Reasons[r] = m[r.String()]
	}
	d.Reasons[HeldOut] = j.HeldOut
	r := &s.Row
	r.Rows, r.RowTokens, r.LossTokens = j.Rows, j.RowTokens, j.LossTokens
	r.Shortfall, r.ShortTok, r.Rebalanced, r.Fallback = j.Shortfall, j.ShortTok, j.Rebalanced, j.Fallback
	if len(j.SpanLen) > 0 {
		r.SpanLen = slices.Clone(j.SpanLen)
	}
	s.Damage = slices.Clone(j.Damage)
	for name, st := range j.Objectives {
		o, err := masking.ParseObjective(name)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		r.Objectives[o] = st
	}
	return nil
}
