package trainer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer/loader"
)

// Metrics is one logged step: a line of OUT/metrics.jsonl.
type Metrics struct {
	Step       int     // optimizer steps taken
	Loss       float64 // token-mean training loss of the step (all micro-batches)
	LR         float64 // learning rate the step used
	GradNorm   float64 // global gradient norm before clipping
	TokensPerS float64 // batch positions (B·T, padding included) per second since the last line
	Tokens     int64   // batch positions trained on so far
	LossTokens int     // loss positions in the step
	ElapsedS   float64 // wall time since Train started (this process)
	// Eval is set on the steps that evaluated.
	Eval *EvalResult
}

// MarshalJSON writes the metrics line: step, loss, lr, grad_norm,
// tokens_per_s, tokens, loss_tokens, elapsed_s, and when evaluated
// eval_loss, eval_ppl, eval_tokens and eval_loss_<objective>,
// eval_ppl_<objective> for each objective with tokens.
func (m Metrics) MarshalJSON() ([]byte, error) {
	o := map[string]any{
		"step": m.Step, "loss": m.Loss, "lr": m.LR, "grad_norm": m.GradNorm,
		"tokens_per_s": m.TokensPerS, "tokens": m.Tokens, "loss_tokens": m.LossTokens, "elapsed_s": m.ElapsedS,
	}
	if e := m.Eval; e != nil {
		o["eval_loss"], o["eval_ppl"], o["eval_tokens"] = e.Loss, e.PPL, e.Tokens
		for i, oe := range e.Objectives {
			if oe.Tokens > 0 {
				name := masking.Objective(i).String()
				o["eval_loss_"+name], o["eval_ppl_"+name] = oe.Loss, oe.PPL
			}
		}
	}
	return json.Marshal(o)
}

// Hooks are optional callbacks of Train.
type Hooks struct {
	// OnLog is called with every logged metrics line; an error stops
	// training (after a checkpoint).
	OnLog func(Metrics) error
	// OnCheckpoint is called with the directory of every checkpoint written.
	OnCheckpoint func(dir string)
}

// Result summarises a Train call.
type Result struct {
	Steps      int     // optimizer steps taken in total (including before a resume)
	Last       Metrics // the last logged line
	Checkpoint string  // the last checkpoint written
}

// Train trains m for cfg.Steps optimizer steps on batches from src, each
// step accumulating the gradients of cfg.Accum micro-batches (the step's
// loss is the token mean over all of their loss positions, GLM's loss for
// one big batch). It initialises m from cfg.Seed (unless cfg.KeepWeights),
// or restores m, the optimizer, the step and src from cfg.Resume.
//
// Every cfg.LogEvery steps it appends a line to cfg.Out/metrics.jsonl;
// every cfg.EvalEvery steps it evaluates on evalSrc (may be nil), restored
// each time to its position at the start; every cfg.CheckpointEvery steps
// and at the end it writes cfg.Out/ckpt-NNNNNNNN. If ctx is cancelled or
// src returns io.EOF, it writes a checkpoint of the last complete step and
// returns (with ctx's error in the first case; on io.EOF the micro-batches
// of an incomplete last step are dropped).
//
// On the CPU backend, a run resumed from a checkpoint continues exactly as
// the uninterrupted run would have, bitwise.
func Train(ctx context.Context, cfg TrainConfig, m *Model, src, evalSrc BatchSource, hooks Hooks) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	be := m.Backend()
	opt, err := NewAdamW(m)
	if err != nil {
		return Result{}, err
	}
	defer opt.Close(be)
	fingerprint := src.Fingerprint()

	// 1. start: a killed run's temporaries go, then fresh weights, or
	// everything back from a checkpoint
	if _, err := CleanCheckpointTemps(cfg.Out); err != nil {
		return Result{}, err
	}
	step, tokens := 0, int64(0)
	if cfg.Resume != "" {
		st, err := LoadCheckpoint(cfg.Resume, m, opt)
		if err != nil {
			return Result{}, err
		}
		if st.Seed != cfg.Seed {
			return Result{}, fmt.Errorf("trainer: checkpoint %s was trained with seed %d; this run has %d", cfg.Resume, st.Seed, cfg.Seed)
		}
		if st.DataFingerprint != fingerprint {
			return Result{}, fmt.Errorf("trainer: checkpoint %s was trained on data %q; this source is %q", cfg.Resume, st.DataFingerprint, fingerprint)
		}
		if err := src.Restore(st.LoaderState); err != nil {
			return Result{}, fmt.Errorf("trainer: restore the loader from %s: %w", cfg.Resume, err)
		}
		step, tokens = st.Step, st.Tokens
	} else if !cfg.KeepWeights {
		if err := m.Init(cfg.Seed); err != nil {
			return Result{}, err
		}
	}
	res := Result{Steps: step}
	if step >= cfg.Steps {
		return res, nil
	}

	if err := os.MkdirAll(cfg.Out, 0o777); err != nil {
		return res, fmt.Errorf("trainer: %w", err)
	}
	if err := truncateMetrics(filepath.Join(cfg.Out, metricsFile), step); err != nil {
		return res, err
	}
	mf, err := os.OpenFile(filepath.Join(cfg.Out, metricsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return res, fmt.Errorf("trainer: %w", err)
	}
	defer mf.Close()
	metrics := bufio.NewWriter(mf)
	var evalStart []byte
	if evalSrc != nil {
		if evalStart, err = evalSrc.State(); err != nil {
			return res, fmt.Errorf("trainer: eval source state: %w", err)
		}
	}
	var bar *progressbar.ProgressBar
	if cfg.Progress && term.IsTerminal(int(os.Stderr.Fd())) {
		bar = progressbar.NewOptions(cfg.Steps,
			progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetDescription("training"))
		bar.Set(step)
		defer bar.Finish()
	}

	checkpoint := func() error {
		state, err := src.State()
		if err != nil {
			return fmt.Errorf("trainer: loader state: %w", err)
		}
		dir := CheckpointDir(cfg.Out, step)
		st := TrainerState{Step: step, Tokens: tokens, Seed: cfg.Seed, LoaderState: state, DataFingerprint: fingerprint}
		if err := SaveCheckpoint(dir, m, opt, &cfg, st); err != nil {
			return err
		}
		res.Checkpoint = dir
		if hooks.OnCheckpoint != nil {
			hooks.OnCheckpoint(dir)
		}
		return pruneCheckpoints(cfg.Out, cfg.KeepCheckpoints)
	}

	batches := make([]loader.Batch, cfg.Accum)
	start, lastLog, lastTokens := time.Now(), time.Now(), tokens
	for step < cfg.Steps {
		if err := ctx.Err(); err != nil {
			return res, errors.Join(err, checkpoint())
		}

		// 2. the step's micro-batches
		stepTokens, lossTokens := 0, 0
		for i := range batches {
			if err := src.Next(&batches[i]); err != nil {
				if errors.Is(err, io.EOF) { // out of data: keep the last complete step
					return res, errors.Join(flush(metrics), checkpoint())
				}
				return res, fmt.Errorf("trainer: step %d: batch %d: %w", step, i, err)
			}
			stepTokens += batches[i].B * batches[i].T
			lossTokens += batches[i].LossTokens()
		}

		// 3. forward and backward; token mean over the whole step
		if err := m.ZeroGrad(); err != nil {
			return res, err
		}
		scale := 1.0
		if lossTokens > 0 {
			scale = 1 / float64(lossTokens)
		}
		var loss Loss
		for i := range batches {
			l, err := m.Forward(&batches[i], Pass{Train: true, Seed: cfg.Seed, Step: step, Micro: i})
			if err != nil {
				return res, fmt.Errorf("trainer: step %d: %w", step, err)
			}
			if err := m.Backward(scale); err != nil {
				return res, fmt.Errorf("trainer: step %d: %w", step, err)
			}
			loss.Add(l)
		}

		// 4. clip the global norm, then AdamW at this step's learning rate
		norm, err := m.GradNorm()
		if err != nil {
			return res, err
		}
		if math.IsNaN(norm) || math.IsInf(norm, 0) {
			return res, fmt.Errorf("trainer: step %d: gradient norm is %v (loss %v); lower the learning rate", step, norm, loss.Mean())
		}
		clip := 1.0
		if cfg.ClipNorm > 0 {
			if c := cfg.ClipNorm / (norm + 1e-6); c < 1 {
				clip = c
			}
		}
		lr := cfg.LRAt(step)
		err = opt.Step(m, AdamWStep{LR: lr, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps,
			WeightDecay: cfg.WeightDecay, GradScale: clip, T: step + 1})
		if err != nil {
			return res, err
		}
		step++
		tokens += int64(stepTokens)
		res.Steps = step

		// 5. log, evaluate, checkpoint
		last := step == cfg.Steps
		evalNow := evalSrc != nil && (last || cfg.EvalEvery > 0 && step%cfg.EvalEvery == 0)
		if last || evalNow || cfg.LogEvery > 0 && step%cfg.LogEvery == 0 {
			now := time.Now()
			mt := Metrics{Step: step, Loss: loss.Mean(), LR: lr, GradNorm: norm, Tokens: tokens, LossTokens: lossTokens,
				TokensPerS: float64(tokens-lastTokens) / now.Sub(lastLog).Seconds(), ElapsedS: now.Sub(start).Seconds()}
			lastLog, lastTokens = now, tokens
			if evalNow {
				if err := evalSrc.Restore(evalStart); err != nil {
					return res, fmt.Errorf("trainer: rewind the eval source: %w", err)
				}
				ev, err := Evaluate(ctx, m, evalSrc, cfg.EvalBatches)
				if err != nil {
					return res, errors.Join(err, checkpoint())
				}
				mt.Eval = &ev
			}
			line, err := json.Marshal(mt)
			if err != nil {
				return res, fmt.Errorf("trainer: %w", err)
			}
			if _, err := metrics.Write(append(line, '\n')); err != nil {
				return res, fmt.Errorf("trainer: write metrics: %w", err)
			}
			if err := metrics.Flush(); err != nil {
				return res, fmt.Errorf("trainer: write metrics: %w", err)
			}
			res.Last = mt
			if hooks.OnLog != nil {
				if err := hooks.OnLog(mt); err != nil {
					return res, errors.Join(err, checkpoint())
				}
			}
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.4f | %.0f tok/s", loss.Mean(), res.Last.TokensPerS))
			bar.Set(step)
		}
		if last || cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 {
			if err := checkpoint(); err != nil {
				return res, err
			}
		}
		if res.Last.Step == step { // the next rate leaves out evaluation and checkpoint time
			lastLog = time.Now()
		}
	}
	return res, nil
}

const metricsFile = "metrics.jsonl"

// truncateMetrics drops the lines of a metrics file after step (those a
// killed run logged after its last checkpoint, which the resumed run logs
// again, and a line cut by the kill), so the file has one line per step.
func truncateMetrics(path string, step int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	var keep []byte
	for line := range bytes.Lines(data) {
		var m struct {
			Step *int `json:"step"`
		}
		if !bytes.HasSuffix(line, []byte("\n")) || json.Unmarshal(line, &m) != nil || m.Step == nil || *m.Step > step {
			continue
		}
		keep = append(keep, line...)
	}
	if bytes.Equal(keep, data) {
		return nil
	}
	if err := atomicfile.Write(path, keep); err != nil {
		return fmt.Errorf("trainer: rewriting %s: %w", path, err)
	}
	return nil
}

func flush(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("trainer: write metrics: %w", err)
	}
	return nil
}

// pruneCheckpoints removes all but the newest keep checkpoints under out
// (keep 0 keeps all).
func pruneCheckpoints(out string, keep int) error {
	if keep <= 0 {
		return nil
	}
	cks, err := Checkpoints(out)
	if err != nil {
		return err
	}
	for len(cks) > keep {
		if err := os.RemoveAll(cks[0]); err != nil {
			return fmt.Errorf("trainer: remove old checkpoint: %w", err)
		}
		cks = cks[1:]
	}
	return nil
}
