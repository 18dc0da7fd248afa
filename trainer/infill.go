package trainer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/glmkit/glmkit/trainer/loader"
)

// InfillOptions configures Model.Infill.
type InfillOptions struct {
	// Blanks are the ids that mark a blank in the context: [MASK], and
	// [sMASK]/[gMASK] when the model was trained with task masks.
	Blanks []int32
	// SOP and EOP are <|startofpiece|> and <|endofpiece|>.
	SOP, EOP int32
	// MaxTokens caps the tokens generated per blank. Default 64; also
	// capped so block positions stay within the model's MaxPos.
	MaxTokens int
	// Temperature 0 picks the most likely token (greedy); above 0 it
	// samples from softmax(logits/Temperature).
	Temperature float64
	// TopK, when sampling, keeps only the K most likely tokens (0: all).
	TopK int
	// Vocab restricts the choice to ids below it, to skip the padding ids
	// of the vocabulary (0: the whole model vocabulary).
	Vocab int
	// Seed fixes the sampling.
	Seed uint64
	// OnToken, if not nil, is told of every token generated (and of every
	// span's end): blank is the blank being filled (0-based) of blanks,
	// and tokens the tokens generated for it so far. A long generation
	// shows its progress through it.
	OnToken func(blank, blanks, tokens int)
}

// Span is the text generated for one blank.
type Span struct {
	Pos    int     // index of the blank in the context
	Tokens []int32 // generated ids, without sop and eop (empty, not nil, when eop came first)
	// Cut is set when the span reached the token limit (MaxTokens, or the
	// model's positions) before the model ended it with eop.
	Cut bool
}

// Infill fills every blank of ids in order, GLM's way (glm-reference.md
// §5, "Inference convention"): the context is Part A (positions 0..n−1,
// block positions 0, bidirectional); each blank is generated in Part B
// from sop at the blank's position with block positions 1, 2, … until eop
// or MaxTokens, and later blanks see the spans generated before them, as
// in pretraining. The caller builds the context ([CLS] text, plus eos
// unless it ends with [gMASK]).
func (m *Model) Infill(ctx context.Context, ids []int32, o InfillOptions) ([]Span, error) {
	if len(ids) == 0 {
		return nil, errors.New("trainer: infill: empty context")
	}
	if len(ids) > m.cfg.MaxPos+1 {
		return nil, fmt.Errorf("trainer: infill: context of %d tokens is longer than the model's positions 0..%d (max_pos %d)", len(ids), m.cfg.MaxPos, m.cfg.MaxPos)
	}
	switch {
	case o.MaxTokens < 0:
		return nil, fmt.Errorf("trainer: infill: max tokens %d; want ≥ 1 (0: 64)", o.MaxTokens)
	case !(o.Temperature >= 0) || math.IsInf(o.Temperature, 0):
		return nil, fmt.Errorf("trainer: infill: temperature %v; want a finite number ≥ 0 (0: greedy)", o.Temperature)
	case o.TopK < 0:
		return nil, fmt.Errorf("trainer: infill: top-k %d; want ≥ 0 (0: all)", o.TopK)
	}
	maxTok := m.InfillLimit(o.MaxTokens)
	vocab := m.cfg.Vocab
	if o.Vocab > 0 {
		vocab = min(vocab, o.Vocab)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x1f111))
	blanks := 0
	for _, id := range ids {
		if slices.Contains(o.Blanks, id) {
			blanks++
		}
	}
	g, err := m.newGenerator(ids, len(ids)+blanks*(maxTok+1))
	if err != nil {
		return nil, err
	}
	defer g.close()
	var spans []Span
	for bi, id := range ids {
		if !slices.Contains(o.Blanks, id) {
			continue
		}
		span := Span{Pos: bi, Tokens: []int32{}, Cut: true}
		if err := g.push(o.SOP, int32(bi), 1); err != nil {
			return spans, err
		}
		for len(span.Tokens) < maxTok {
			if err := ctx.Err(); err != nil {
				return spans, err
			}
			logits, err := g.next()
			if err != nil {
				return spans, err
			}
			next := pick(logits[:vocab], o.Temperature, o.TopK, rng)
			if next == o.EOP {
				span.Cut = false
				break
			}
			span.Tokens = append(span.Tokens, next)
			if err := g.push(next, int32(bi), int32(len(span.Tokens)+1)); err != nil {
				return spans, err
			}
			if o.OnToken != nil {
				o.OnToken(len(spans), blanks, len(span.Tokens))
			}
		}
		spans = append(spans, span)
		if o.OnToken != nil {
			o.OnToken(len(spans), blanks, 0)
		}
	}
	return spans, nil
}

// A generator holds the sequence Infill grows: Part A, then each blank's
// sop and tokens. push appends a row; next gives the logits the last row
// predicts.
type generator interface {
	push(id, pos, bpos int32) error
	next() ([]float32, error)
	close()
}

// newGenerator starts a generation from Part A ids, for up to rows rows:
// with the backend's KVDecoder, one that keeps a key/value cache;
// otherwise one that runs the whole sequence for every token.
func (m *Model) newGenerator(ids []int32, rows int) (generator, error) {
	d, err := m.newDecoder(rows)
	if err != nil {
		return nil, err
	}
	if d == nil {
		g := &fullGen{m: m, b: loader.Batch{B: 1, Sep: []int32{int32(len(ids))}}, input: slices.Clone(ids),
			pos: make([]int32, len(ids)), bpos: make([]int32, len(ids))}
		for i := range g.pos {
			g.pos[i] = int32(i)
		}
		return g, nil
	}
	if err := d.prefill(ids); err != nil {
		d.close()
		return nil, err
	}
	return &cachedGen{d: d}, nil
}

// fullGen runs the whole sequence for every token.
type fullGen struct {
	m                *Model
	b                loader.Batch
	input, pos, bpos []int32
}

func (g *fullGen) push(id, pos, bpos int32) error {
	g.input, g.pos, g.bpos = append(g.input, id), append(g.pos, pos), append(g.bpos, bpos)
	return nil
}

func (g *fullGen) next() ([]float32, error) {
	t, b := len(g.input), &g.b
	b.T, b.Input, b.Pos, b.BlockPos = t, g.input, g.pos, g.bpos
	b.Target, b.LossMask = make([]int32, t), make([]uint8, t)
	b.LossMask[t-1] = 1
	logits, err := g.m.Logits(b)
	if err != nil {
		return nil, fmt.Errorf("trainer: infill: %w", err)
	}
	return logits, nil
}

func (g *fullGen) close() {}

// cachedGen runs one row a token, with a decoder's key/value cache.
type cachedGen struct {
	d    *decoder
	last []float32
}

func (g *cachedGen) push(id, pos, bpos int32) error {
	l, err := g.d.step(id, pos, bpos)
	g.last = l
	return err
}

func (g *cachedGen) next() ([]float32, error) { return g.last, nil }

func (g *cachedGen) close() { g.d.close() }

// InfillLimit is the most tokens Infill generates per blank for
// InfillOptions.MaxTokens n (0: 64): n, or fewer where the model's
// positions end first (sop takes block position 1, token k block k+1 ≤
// MaxPos).
func (m *Model) InfillLimit(n int) int {
	return min(cmp.Or(n, 64), m.cfg.MaxPos-1)
}

// pick chooses the next id: the argmax with temperature 0, else a sample
// from softmax(logits/temperature) over the topK largest (all if 0).
func pick(logits []float32, temperature float64, topK int, rng *rand.Rand) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if temperature <= 0 {
		return int32(best)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	if topK > 0 && topK < len(idx) {
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
		idx = idx[:topK]
	}
	w := make([]float64, len(idx))
	var sum float64
	for k, i := range idx {
		w[k] = math.Exp((float64(logits[i]) - float64(logits[best])) / temperature)
		sum += w[k]
	}
	u := rng.Float64() * sum
	for k, i := range idx {
		u -= w[k]
		if u < 0 {
			return int32(i)
		}
	}
	return int32(idx[len(idx)-1])
}
