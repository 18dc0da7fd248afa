package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer/loader"
)

// EvalResult is the Part-B loss of an evaluation, overall and per
// objective.
type EvalResult struct {
	Loss    float64 // token-mean cross entropy over every loss position
	PPL     float64 // exp(min(20, Loss)), GLM's eval perplexity
	Tokens  int     // loss positions
	Batches int
	// Objectives splits the result by the rows' objective, indexed by
	// masking.Objective; entries without tokens are zero.
	Objectives [masking.NumObjectives]ObjectiveEval
}

// ObjectiveEval is the loss on the rows of one objective.
type ObjectiveEval struct {
	Loss   float64
	PPL    float64
	Tokens int
}

// Perplexity is GLM's eval perplexity, exp(min(20, loss)).
func Perplexity(loss float64) float64 { return math.Exp(min(20, loss)) }

// Evaluate runs m without dropout on batches from src, at most maxBatches
// of them (0: until io.EOF), and returns the token-mean loss over all their
// loss positions. The caller positions src (Train restores it to the same
// start before every evaluation). A pass with no loss position to score
// is an error (its loss would be a made-up 0).
func Evaluate(ctx context.Context, m *Model, src BatchSource, maxBatches int) (EvalResult, error) {
	if maxBatches < 0 {
		return EvalResult{}, fmt.Errorf("trainer: eval of %d batches; want ≥ 0 (0: until the data ends)", maxBatches)
	}
	var (
		b     loader.Batch
		total Loss
		res   EvalResult
	)
	for maxBatches == 0 || res.Batches < maxBatches {
		if err := ctx.Err(); err != nil {
			return EvalResult{}, err
		}
		if err := src.Next(&b); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return EvalResult{}, fmt.Errorf("trainer: eval batch %d: %w", res.Batches, err)
		}
		l, err := m.Forward(&b, Pass{})
		if err != nil {
			return EvalResult{}, fmt.Errorf("trainer: eval batch %d: %w", res.Batches, err)
		}
		total.Add(l)
		res.Batches++
	}
	if total.Tokens == 0 {
		return EvalResult{}, fmt.Errorf("trainer: eval: %d batches held no loss position to score", res.Batches)
	}
	res.Loss, res.Tokens = total.Mean(), total.Tokens
	res.PPL = Perplexity(res.Loss)
	for o := range res.Objectives {
		if n := total.ObjTokens[o]; n > 0 {
			l := total.ObjSum[o] / float64(n)
			res.Objectives[o] = ObjectiveEval{Loss: l, PPL: Perplexity(l), Tokens: n}
		}
	}
	return res, nil
}
