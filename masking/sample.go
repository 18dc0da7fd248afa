package masking

import (
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Objective is the GLM pretraining objective a row was masked with.
type Objective uint8

// The three GLM objectives (glm-reference.md §3). Their names are what the
// shards' `objective` dictionary column holds.
const (
	Token    Objective = iota // short spans, Poisson(3) lengths, 15% of the sample ([MASK])
	Sentence                  // whole sentences, 15% of the sample ([sMASK] with task mask)
	Document                  // one long span, 50–100% of the sample ([gMASK] with task mask)

	NumObjectives = 3
)

var objectiveNames = [NumObjectives]string{"token", "sentence", "document"}

// String returns "token", "sentence" or "document".
func (o Objective) String() string {
	if int(o) < len(objectiveNames) {
		return objectiveNames[o]
	}
	return fmt.Sprintf("objective(%d)", uint8(o))
}

// ParseObjective is the inverse of Objective.String.
func ParseObjective(s string) (Objective, error) {
	for i, n := range objectiveNames {
		if s == n {
			return Objective(i), nil
		}
	}
	return 0, fmt.Errorf("masking: unknown objective %q (want token, sentence or document)", s)
}

// SpecialIDs are the GLM command tokens of a vocabulary (decisions.md §2).
// Pad and EOS may be the same id (they are for BERT and GPT-2).
type SpecialIDs struct {
	Pad   int32 `json:"pad"`
	EOS   int32 `json:"eos"`   // ends every document
	CLS   int32 `json:"cls"`   // ENC: starts every document piece
	Mask  int32 `json:"mask"`  // [MASK]
	Sep   int32 `json:"sep"`   // [SEP], unused in pretraining
	Unk   int32 `json:"unk"`   // [UNK]
	SOP   int32 `json:"sop"`   // <|startofpiece|>: first input of every Part B span
	EOP   int32 `json:"eop"`   // <|endofpiece|>: last target of every Part B span
	GMask int32 `json:"gmask"` // [gMASK]: document spans with task mask
	SMask int32 `json:"smask"` // [sMASK]: sentence spans with task mask
}

// All yields every id with its JSON name, in the order of the fields: the
// one list that the checks of a plan's and a manifest's ids range over.
func (ids SpecialIDs) All() iter.Seq2[string, int32] {
	return func(yield func(string, int32) bool) {
		for _, id := range [...]struct {
			name string
			v    int32
		}{{"pad", ids.Pad}, {"eos", ids.EOS}, {"cls", ids.CLS}, {"mask", ids.Mask}, {"sep", ids.Sep}, {"unk", ids.Unk},
			{"sop", ids.SOP}, {"eop", ids.EOP}, {"gmask", ids.GMask}, {"smask", ids.SMask}} {
			if !yield(id.name, id.v) {
				return
			}
		}
	}
}

// MaskID returns the Part A blank token of objective o.
func (ids SpecialIDs) MaskID(o Objective, taskMask bool) int32 {
	if taskMask {
		switch o {
		case Sentence:
			return ids.SMask
		case Document:
			return ids.GMask
		}
	}
	return ids.Mask
}

// reserved returns the ids that may never occur in source text: the
// blank and piece markers that the masker itself inserts.
func (ids SpecialIDs) reserved() reservedIDs {
	r := reservedIDs{ids: [...]int32{ids.SOP, ids.EOP, ids.Mask, ids.GMask, ids.SMask}}
	r.lo, r.hi = slices.Min(r.ids[:]), slices.Max(r.ids[:])
	return r
}

// reservedIDs is the set of SpecialIDs.reserved, with its bounds: the
// per-token checks compare most ids with lo and hi only.
type reservedIDs struct {
	ids    [5]int32
	lo, hi int32
}

// has reports whether id is reserved.
func (r *reservedIDs) has(id int32) bool {
	return id >= r.lo && id <= r.hi && (id == r.ids[0] || id == r.ids[1] || id == r.ids[2] || id == r.ids[3] || id == r.ids[4])
}

// Span is a half-open range [Start, End) of source token indices.
type Span struct{ Start, End int32 }

// Len is End − Start.
func (s Span) Len() int32 { return s.End - s.Start }

// Sample is one GLM blank-infilling row (glm-reference.md §2): Part A, the
// source with every span collapsed to one blank, then Part B, the spans in a
// shuffled order, each as inputs `sop + span` and targets `span + eop`. Its
// Columns (Input, Target, LossMask, Pos, BlockPos) all have the same
// length: L+2K, or L+1 for the document suffix layout. A Sample may be
// reused with Masker.MaskTo; its slices are then overwritten, so copy what
// must outlive the next call.
type Sample struct {
	Columns[[]int32, []uint8]
	// Sep is len(Part A): attention is bidirectional over [0,Sep), causal
	// after.
	Sep int32

	Objective Objective
	// NSource is L, the number of source tokens ([CLS] and eos included).
	NSource int32
	// Spans are the masked source ranges in Part B order.
	Spans []Span
	// Shortfall counts the tokens by which a token-level row missed its
	// target because the spans did not fit (many short packed documents);
	// where GLM drops such a sample, glmkit keeps it and counts this.
	Shortfall int32
	// SentenceShort counts the tokens by which a sentence-level row missed
	// its target because all of the sample's sentences together hold
	// fewer; the row masks every one of them, as GLM does.
	SentenceShort int32
	// Rebalanced is set on token-level rows that GLM's span assignment
	// could not place (GLM drops those samples) and that glmkit placed by
	// giving the remaining spans to the documents with the most room.
	Rebalanced bool
	// Fallback is set when a sentence-level row had no complete sentence and
	// was masked with the token objective instead.
	Fallback bool

	sc scratch
}

// Len is the row length, len(Input).
func (s *Sample) Len() int { return len(s.Input) }

// Masked is the number of source tokens covered by the spans.
func (s *Sample) Masked() int {
	n := 0
	for _, sp := range s.Spans {
		n += int(sp.Len())
	}
	return n
}

func (s *Sample) reset(n int) {
	for _, c := range s.Ints() {
		*c = (*c)[:0]
	}
	s.LossMask = s.LossMask[:0]
	s.Spans = s.Spans[:0]
	s.Sep = 0
	s.Shortfall = 0
	s.SentenceShort = 0
	s.Rebalanced = false
	s.Fallback = false
	s.NSource = int32(n)
	if cap(s.Input) < n {
		// Grow once to the usual row size (L + 2K is about 1.1 L).
		c := n + n/4 + 8
		for _, col := range s.Ints() {
			*col = make([]int32, 0, c)
		}
		s.LossMask = make([]uint8, 0, c)
	}
}

// pushSource appends source tokens to Part A as they are: each its own
// input and target, no loss, its position, block position 0. It is push
// in a loop, a column at a time.
func (s *Sample) pushSource(t []int32) {
	p := int32(len(s.Input))
	s.Input = append(s.Input, t...)
	s.Target = append(s.Target, t...)
	s.LossMask = append(s.LossMask, make([]uint8, len(t))...)
	s.BlockPos = append(s.BlockPos, make([]int32, len(t))...)
	for i := range t {
		s.Pos = append(s.Pos, p+int32(i))
	}
}

func (s *Sample) push(in, tgt int32, loss uint8, pos, block int32) {
	s.Input = append(s.Input, in)
	s.Target = append(s.Target, tgt)
	s.LossMask = append(s.LossMask, loss)
	s.Pos = append(s.Pos, pos)
	s.BlockPos = append(s.BlockPos, block)
}

// String renders the row as an aligned table of ids, one line per field,
// with a `|` before each Part B span: the golden-file format.
func (s *Sample) String() string {
	return s.Format(func(id int32) string { return fmt.Sprint(id) })
}

// Format renders the row like String, naming every token with name.
func (s *Sample) Format(name func(int32) string) string {
	n := len(s.Input)
	cells := [6][]string{}
	labels := [6]string{"idx", "input", "target", "loss", "pos", "block"}
	for i := 0; i < n; i++ {
		cells[0] = append(cells[0], fmt.Sprint(i))
		cells[1] = append(cells[1], name(s.Input[i]))
		cells[2] = append(cells[2], name(s.Target[i]))
		cells[3] = append(cells[3], fmt.Sprint(s.LossMask[i]))
		cells[4] = append(cells[4], fmt.Sprint(s.Pos[i]))
		cells[5] = append(cells[5], fmt.Sprint(s.BlockPos[i]))
	}
	width := make([]int, n)
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "objective=%s L=%d K=%d M=%d sep=%d len=%d", s.Objective, s.NSource, len(s.Spans), s.Masked(), s.Sep, n)
	if s.Shortfall > 0 {
		fmt.Fprintf(&b, " shortfall=%d", s.Shortfall)
	}
	if s.Rebalanced {
		b.WriteString(" rebalanced")
	}
	if s.Fallback {
		b.WriteString(" fallback")
	}
	b.WriteByte('\n')
	for r, row := range cells {
		line := fmt.Sprintf("%-6s", labels[r])
		for i, c := range row {
			if i > 0 && i >= int(s.Sep) && s.BlockPos[i] == 1 {
				line += " |"
			}
			line += " " + c + strings.Repeat(" ", width[i]-len([]rune(c)))
		}
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// FormatVersion versions the rows glmkit writes: the layout and, for a given
// seed, the draws. A change to the regression golden file
// (testdata/golden/masking) is a format change and must bump it; the shard
// manifest records it.
const FormatVersion = 1
