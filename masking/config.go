package masking

import (
	"errors"
	"fmt"
	"math"
)

// Config configures a Masker. Start from DefaultConfig, set IDs (and
// SentenceEnd when the sentence objective has weight), then call New, which
// validates it.
type Config struct {
	// Weights are the relative weights of the token, sentence and document
	// objectives, drawn per sample. Default 0.5, 0, 0.5 (GLM's defaults).
	Weights [NumObjectives]float64 `json:"weights"`
	// Ratio is the fraction of a sample that the token and sentence
	// objectives mask at least. Default 0.15.
	Ratio float64 `json:"ratio"`
	// Lambda is the Poisson mean of token-level span lengths. Default 3.
	Lambda float64 `json:"poisson_lambda"`
	// MaxSpan truncates token-level span lengths to 1..MaxSpan. Default 39
	// (GLM's max_block_length 40, exclusive).
	MaxSpan int `json:"max_span"`
	// DocMin and DocMax bound the document span as a fraction of the sample.
	// Default 0.5 and 1.0 (the span never exceeds L−2: [CLS] and the last
	// token stay in Part A).
	DocMin float64 `json:"doc_min_ratio"`
	DocMax float64 `json:"doc_max_ratio"`
	// SuffixProb is the probability that a single-document sample gets the
	// suffix layout rather than a span placed anywhere. Multi-document
	// samples always get the suffix layout. Default 0.5 (GLM's
	// gpt_infill_prob, whose name reads backwards).
	SuffixProb float64 `json:"suffix_prob"`
	// TaskMask selects [sMASK] for sentence and [gMASK] for document spans;
	// off, every blank is [MASK] (GLM-Base/Large). Default on.
	TaskMask bool `json:"task_mask"`
	// IDs are the vocabulary's GLM command tokens.
	IDs SpecialIDs `json:"special_ids"`
	// SentenceEnd[id] reports whether token id ends a sentence (its text
	// contains . ? ! ; : 。 ？ ！ ； … or a newline). Required when the
	// sentence objective has weight. Read only.
	SentenceEnd []bool `json:"-"`
	// SentenceEndsOf, when set, marks the tokens of a sample that end a
	// sentence, resizing dst to len(tokens): SentenceEnd's bit, and also a
	// token that ends a sentence-end character whose bytes started in the
	// tokens before it (a byte-level BPE spells "？" with three tokens, none
	// of which ends a sentence by itself). It must be safe for concurrent
	// use. Without it, SentenceEnd alone decides.
	SentenceEndsOf func(tokens []int32, dst []bool) []bool `json:"-"`
	// Seed is the build seed; every draw is seeded from (Seed, sample key,
	// mask epoch).
	Seed uint64 `json:"seed"`
}

// DefaultConfig returns GLM's defaults. IDs must still be set.
func DefaultConfig() Config {
	return Config{
		Weights:    [NumObjectives]float64{0.5, 0, 0.5},
		Ratio:      0.15,
		Lambda:     3,
		MaxSpan:    39,
		DocMin:     0.5,
		DocMax:     1.0,
		SuffixProb: 0.5,
		TaskMask:   true,
	}
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	var sum float64
	for i, w := range c.Weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("masking: weight of %s objective is %v; want a finite number ≥ 0", Objective(i), w)
		}
		sum += w
	}
	switch {
	case sum <= 0:
		return errors.New("masking: objective weights sum to 0; give at least one objective a positive weight")
	case !(c.Ratio > 0 && c.Ratio < 1):
		return fmt.Errorf("masking: ratio is %v; want 0 < ratio < 1", c.Ratio)
	case !(c.Lambda > 0) || math.IsInf(c.Lambda, 0):
		return fmt.Errorf("masking: poisson lambda is %v; want a finite number > 0", c.Lambda)
	case c.MaxSpan < 1 || c.MaxSpan > 1<<16:
		return fmt.Errorf("masking: max span is %d; want 1..65536", c.MaxSpan)
	case !(c.DocMin > 0 && c.DocMin <= c.DocMax && c.DocMax <= 1):
		return fmt.Errorf("masking: document ratio range is [%v, %v]; want 0 < min ≤ max ≤ 1", c.DocMin, c.DocMax)
	case !(c.SuffixProb >= 0 && c.SuffixProb <= 1):
		return fmt.Errorf("masking: suffix probability is %v; want 0..1", c.SuffixProb)
	case c.Weights[Sentence] > 0 && len(c.SentenceEnd) == 0:
		return errors.New("masking: the sentence objective needs SentenceEnd (the tokenizer's sentence-end bit per id)")
	}
	// The inserted tokens must be distinct from each other and from the
	// separators, or a row could not be read back.
	ids := c.IDs
	inserted := []struct {
		name string
		id   int32
	}{{"sop", ids.SOP}, {"eop", ids.EOP}, {"[MASK]", ids.Mask}}
	if c.TaskMask {
		inserted = append(inserted, struct {
			name string
			id   int32
		}{"[gMASK]", ids.GMask}, struct {
			name string
			id   int32
		}{"[sMASK]", ids.SMask})
	}
	for i, a := range inserted {
		if a.id < 0 {
			return fmt.Errorf("masking: %s id is %d; want ≥ 0", a.name, a.id)
		}
		if a.id == ids.CLS || a.id == ids.EOS {
			return fmt.Errorf("masking: %s id %d collides with [CLS] or eos", a.name, a.id)
		}
		for _, b := range inserted[i+1:] {
			if a.id == b.id {
				return fmt.Errorf("masking: %s and %s share id %d", a.name, b.name, a.id)
			}
		}
	}
	if ids.CLS == ids.EOS {
		return fmt.Errorf("masking: [CLS] and eos share id %d", ids.CLS)
	}
	if ids.CLS < 0 || ids.EOS < 0 {
		return errors.New("masking: [CLS] and eos ids must be ≥ 0")
	}
	if len(c.SentenceEnd) > 0 {
		for _, id := range []int32{ids.SOP, ids.EOP, ids.Mask, ids.GMask, ids.SMask, ids.CLS, ids.EOS} {
			if int(id) >= len(c.SentenceEnd) {
				return fmt.Errorf("masking: special id %d is outside SentenceEnd (%d ids)", id, len(c.SentenceEnd))
			}
		}
	}
	return nil
}
