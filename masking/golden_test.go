package masking

import (
	"slices"
	"testing"
)

// BERT uncased ids, as GLM's released models use them (decisions.md §2).
var bertIDs = SpecialIDs{Pad: 0, EOS: 0, CLS: 101, Mask: 103, Sep: 102, Unk: 100, SOP: 30522, EOP: 30523, GMask: 30524, SMask: 30525}

// x returns the id of the example's token x_i.
func x(i int) int32 { return int32(2000 + i) }

const (
	cls  = 101
	pad  = 0
	mask = 103
	sop  = 30522
	eop  = 30523
	gm   = 30524
	sm   = 30525
	dot  = 1012 // "."
)

// exampleDoc is glm-reference.md §2.3's sample: [CLS] x1 … x10 [PAD], L = 12.
func exampleDoc() []int32 {
	t := []int32{cls}
	for i := 1; i <= 10; i++ {
		t = append(t, x(i))
	}
	return append(t, pad)
}

type row struct {
	input, target []int32
	loss          []uint8
	pos, block    []int32
	sep           int32
}

func checkRow(t *testing.T, s *Sample, want row) {
	t.Helper()
	if !slices.Equal(s.Input, want.input) {
		t.Errorf("input  = %v\n want   %v", s.Input, want.input)
	}
	if !slices.Equal(s.Target, want.target) {
		t.Errorf("target = %v\n want   %v", s.Target, want.target)
	}
	if !slices.Equal(s.LossMask, want.loss) {
		t.Errorf("loss   = %v\n want   %v", s.LossMask, want.loss)
	}
	if !slices.Equal(s.Pos, want.pos) {
		t.Errorf("pos    = %v\n want   %v", s.Pos, want.pos)
	}
	if !slices.Equal(s.BlockPos, want.block) {
		t.Errorf("block  = %v\n want   %v", s.BlockPos, want.block)
	}
	if s.Sep != want.sep {
		t.Errorf("sep = %d, want %d", s.Sep, want.sep)
	}
}

func ints(v ...int32) []int32  { return v }
func bytes(v ...uint8) []uint8 { return v }

// The four worked examples of glm-reference.md §2.3, produced by the original
// collator, reproduced by driving the layout with the example's spans and
// Part B order.
func TestGoldenReferenceExamples(t *testing.T) {
	t.Run("token level", func(t *testing.T) {
		doc := exampleDoc()
		s := &Sample{Objective: Token, NSource: int32(len(doc))}
		s.Spans = []Span{{6, 8}, {3, 4}} // Part B order: (x6 x7), then (x3)
		s.build(doc, bertIDs.Mask, bertIDs)
		checkRow(t, s, row{
			input:  ints(cls, x(1), x(2), mask, x(4), x(5), mask, x(8), x(9), x(10), pad, sop, x(6), x(7), sop, x(3)),
			target: ints(cls, x(1), x(2), mask, x(4), x(5), mask, x(8), x(9), x(10), pad, x(6), x(7), eop, x(3), eop),
			loss:   bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1),
			pos:    ints(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 6, 6, 6, 3, 3),
			block:  ints(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 1, 2),
			sep:    11,
		})
		if err := s.Validate(bertIDs, false); err != nil {
			t.Error(err)
		}
	})
	t.Run("generation suffix", func(t *testing.T) {
		doc := exampleDoc()
		s := &Sample{Objective: Document, NSource: int32(len(doc))}
		s.suffix(doc, len(doc)-8, bertIDs.Mask, bertIDs) // G = 8, no task mask
		checkRow(t, s, row{
			input:  ints(cls, x(1), x(2), x(3), mask, sop, x(4), x(5), x(6), x(7), x(8), x(9), x(10)),
			target: ints(cls, x(1), x(2), x(3), mask, x(4), x(5), x(6), x(7), x(8), x(9), x(10), pad),
			loss:   bytes(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
			pos:    ints(0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4),
			block:  ints(0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8),
			sep:    5,
		})
		if err := s.Validate(bertIDs, false); err != nil {
			t.Error(err)
		}
	})
	t.Run("generation random placement", func(t *testing.T) {
		doc := exampleDoc()
		s := &Sample{Objective: Document, NSource: int32(len(doc))}
		s.Spans = []Span{{2, 10}} // G = 8: x2 … x9
		s.build(doc, bertIDs.GMask, bertIDs)
		checkRow(t, s, row{
			input:  ints(cls, x(1), gm, x(10), pad, sop, x(2), x(3), x(4), x(5), x(6), x(7), x(8), x(9)),
			target: ints(cls, x(1), gm, x(10), pad, x(2), x(3), x(4), x(5), x(6), x(7), x(8), x(9), eop),
			loss:   bytes(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1),
			pos:    ints(0, 1, 2, 3, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2),
			block:  ints(0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
			sep:    5,
		})
		if err := s.Validate(bertIDs, true); err != nil {
			t.Error(err)
		}
	})
	t.Run("sentence level", goldenSentenceLevel)
}

// goldenSentenceLevel is the sentence-level worked example.
func goldenSentenceLevel(t *testing.T) {
	// [CLS] x1 x2 . x4 x5 x6 . x8 x9 . [PAD] [CLS] x13 x14, L = 15.
	doc := ints(cls, x(1), x(2), dot, x(4), x(5), x(6), dot, x(8), x(9), dot, pad, cls, x(13), x(14))
	ends := make([]bool, 30592)
	ends[dot] = true
	m, err := New(Config{Weights: [3]float64{0, 1, 0}, Ratio: 0.15, Lambda: 3, MaxSpan: 39, DocMin: 0.5, DocMax: 1,
		TaskMask: true, IDs: bertIDs, SentenceEnd: ends})
	if err != nil {
		t.Fatal(err)
	}
	// GLM's candidates, the trailing fragment with the next [CLS] included.
	got := m.sentences(nil, doc, m.SentenceEnds(doc, nil))
	want := []Span{{1, 4}, {4, 8}, {8, 11}, {12, 15}}
	if !slices.Equal(got, want) {
		t.Errorf("sentences = %v, want %v", got, want)
	}
	s := &Sample{Objective: Sentence, NSource: int32(len(doc))}
	s.Spans = []Span{{12, 15}}
	s.build(doc, bertIDs.SMask, bertIDs)
	checkRow(t, s, row{
		input:  ints(cls, x(1), x(2), dot, x(4), x(5), x(6), dot, x(8), x(9), dot, pad, sm, sop, cls, x(13), x(14)),
		target: ints(cls, x(1), x(2), dot, x(4), x(5), x(6), dot, x(8), x(9), dot, pad, sm, cls, x(13), x(14), eop),
		loss:   bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1),
		pos:    ints(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 12, 12, 12),
		block:  ints(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4),
		sep:    13,
	})
	if err := s.Validate(bertIDs, true); err != nil {
		t.Error(err)
	}
}

// GLM's regions for the token objective (sample_span_in_document).
func TestRegions(t *testing.T) {
	m, err := New(Config{Weights: [3]float64{1, 0, 0}, Ratio: 0.15, Lambda: 3, MaxSpan: 39, DocMin: 0.5, DocMax: 1, IDs: bertIDs})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []int32
		want []region // sorted stably by length, listed last document first
	}{
		{"one doc with eos", exampleDoc(), []region{{off: 12, n: 0}, {off: 1, n: 10}}},
		{"no eos: last token kept out", ints(cls, x(1), x(2), x(3)), []region{{off: 1, n: 2}}},
		{"two docs, second cut", ints(cls, x(1), x(2), pad, cls, x(5), x(6), x(7)),
			[]region{{off: 5, n: 2}, {off: 1, n: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sample{}
			m.regions(s, tc.in)
			if !slices.Equal(s.sc.docs, tc.want) {
				t.Errorf("regions(%v) = %v, want %v", tc.in, s.sc.docs, tc.want)
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"zero weights", func(c *Config) { c.Weights = [3]float64{} }},
		{"negative weight", func(c *Config) { c.Weights[1] = -1 }},
		{"ratio 0", func(c *Config) { c.Ratio = 0 }},
		{"ratio 1", func(c *Config) { c.Ratio = 1 }},
		{"lambda 0", func(c *Config) { c.Lambda = 0 }},
		{"max span 0", func(c *Config) { c.MaxSpan = 0 }},
		{"doc min > max", func(c *Config) { c.DocMin, c.DocMax = 0.9, 0.5 }},
		{"doc max > 1", func(c *Config) { c.DocMax = 1.5 }},
		{"suffix prob 2", func(c *Config) { c.SuffixProb = 2 }},
		{"sentence without ends", func(c *Config) { c.Weights[Sentence] = 1 }},
		{"sop == eop", func(c *Config) { c.IDs.EOP = c.IDs.SOP }},
		{"gmask == mask", func(c *Config) { c.IDs.GMask = c.IDs.Mask }},
		{"mask == cls", func(c *Config) { c.IDs.Mask = c.IDs.CLS }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.IDs = bertIDs
			tc.edit(&c)
			if _, err := New(c); err == nil {
				t.Errorf("New(%+v) = nil error; want one", c)
			} else {
				t.Log(err)
			}
		})
	}
	c := DefaultConfig()
	c.IDs = bertIDs
	if _, err := New(c); err != nil {
		t.Errorf("New(default) = %v", err)
	}
}

func TestBadSamples(t *testing.T) {
	c := DefaultConfig()
	c.IDs = bertIDs
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []int32
	}{
		{"empty", nil},
		{"no cls", ints(x(1), x(2), pad)},
		{"only cls eos", ints(cls, pad)},
		{"cls inside a document", ints(cls, x(1), cls, x(2), pad)},
		{"a mask token in the source", ints(cls, x(1), mask, x(2), pad)},
		{"sop in the source", ints(cls, x(1), sop, pad)},
		{"nothing maskable", ints(cls, x(1))},
	} {
		if _, err := m.Mask(1, 0, tc.in); err == nil {
			t.Errorf("%s: Mask(%v) = nil error; want one", tc.name, tc.in)
		}
	}
}
