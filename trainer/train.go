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
	"strings"
	"time"

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
	// OnProgress is called when training starts (Step is where it starts,
	// Loss 0) and after every step: what a progress display shows. Train
	// itself draws nothing.
	OnProgress func(Progress)
	// OnLog is called with every logged metrics line; an error stops
	// training (after a checkpoint).
	OnLog func(Metrics) error
	// OnCheckpoint is called with the directory of every checkpoint written.
	OnCheckpoint func(dir string)
	// OnStep is called after every step (after its log line, if one was
	// due) with the steps taken; an error stops training after a
	// checkpoint of that step, as a preemption would.
	OnStep func(step int) error
}

// Progress is where a Train call stands, for Hooks.OnProgress.
type Progress struct {
	Step, Steps int     // optimizer steps taken, and to take in all
	Loss        float64 // the last step's loss
	TokensPerS  float64 // of the last logged metrics line
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
	opt, err := NewAdamW(m)
	if err != nil {
		return Result{}, err
	}
	defer opt.Close(m.Backend())
	r := &run{cfg: cfg, m: m, opt: opt, src: src, eval: evalSrc, hooks: hooks, fingerprint: src.Fingerprint()}
	if err := r.begin(); err != nil {
		return Result{}, err
	}
	r.res = Result{Steps: r.step}
	if r.step >= cfg.Steps {
		return r.res, nil
	}
	mf, err := r.openMetrics()
	if err != nil {
		return r.res, err
	}
	defer mf.Close()
	if evalSrc != nil {
		if r.evalStart, err = evalSrc.State(); err != nil {
			return r.res, fmt.Errorf("trainer: eval source state: %w", err)
		}
	}
	return r.loop(ctx)
}

// A run is one Train call: the model, its optimizer and its data, and
// where training stands. Its methods are the parts of the loop.
type run struct {
	cfg         TrainConfig
	m           *Model
	opt         *AdamW
	src, eval   BatchSource
	evalStart   []byte // eval's state at the start, where every evaluation begins
	hooks       Hooks
	fingerprint string // of src, recorded in the checkpoints
	metrics     *bufio.Writer
	batches     []loader.Batch // one step's micro-batches
	res         Result

	step   int   // optimizer steps taken
	tokens int64 // batch positions (B·T, padding included) trained on

	start, lastLog time.Time // of this call, and of the last metrics line
	lastTokens     int64     // tokens at the last metrics line
}

// stepStats is what one optimizer step measured.
type stepStats struct {
	loss       Loss
	lr, norm   float64
	lossTokens int
}

// begin removes a killed run's temporaries, then initialises the weights,
// or restores everything from the checkpoint cfg.Resume.
func (r *run) begin() error {
	if _, err := CleanCheckpointTemps(r.cfg.Out); err != nil {
		return err
	}
	if r.cfg.Resume == "" {
		if r.cfg.KeepWeights {
			return nil
		}
		return r.m.Init(r.cfg.Seed)
	}
	st, err := LoadCheckpoint(r.cfg.Resume, r.m, r.opt)
	if err != nil {
		return err
	}
	if st.Seed != r.cfg.Seed {
		return fmt.Errorf("trainer: checkpoint %s was trained with seed %d; this run has %d", r.cfg.Resume, st.Seed, r.cfg.Seed)
	}
	if st.DataFingerprint != r.fingerprint {
		return fmt.Errorf("trainer: checkpoint %s was trained on data %q; this source is %q", r.cfg.Resume, st.DataFingerprint, r.fingerprint)
	}
	if err := r.src.Restore(st.LoaderState); err != nil {
		return fmt.Errorf("trainer: restore the loader from %s: %w", r.cfg.Resume, err)
	}
	r.step, r.tokens = st.Step, st.Tokens
	return nil
}

// openMetrics opens cfg.Out/metrics.jsonl for appending, cut back to the
// step training starts from.
func (r *run) openMetrics() (*os.File, error) {
	if err := os.MkdirAll(r.cfg.Out, 0o777); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	path := filepath.Join(r.cfg.Out, metricsFile)
	if err := truncateMetrics(path, r.step); err != nil {
		return nil, err
	}
	mf, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	r.metrics = bufio.NewWriter(mf)
	return mf, nil
}

// loop takes steps until cfg.Steps, the end of the data or of ctx.
func (r *run) loop(ctx context.Context) (Result, error) {
	r.batches = make([]loader.Batch, r.cfg.Accum)
	r.start, r.lastLog, r.lastTokens = time.Now(), time.Now(), r.tokens
	r.progress(Loss{})
	for r.step < r.cfg.Steps {
		if err := ctx.Err(); err != nil {
			return r.res, errors.Join(err, r.checkpoint())
		}
		start, err := r.src.State()
		if err != nil {
			return r.res, fmt.Errorf("trainer: loader state: %w", err)
		}
		stepTokens, lossTokens, err := r.nextBatches()
		if errors.Is(err, io.EOF) { // out of data: keep the last complete step
			return r.res, errors.Join(r.flushMetrics(), r.checkpoint())
		}
		if err != nil {
			// Bad data: keep the last complete step too, with the source
			// where this step began (it read some of its micro-batches).
			return r.res, errors.Join(err, r.flushMetrics(), r.checkpointAt(start))
		}
		s, err := r.trainStep(lossTokens)
		if err != nil {
			return r.res, err
		}
		r.step++
		r.tokens += int64(stepTokens)
		r.res.Steps = r.step
		if err := r.log(ctx, s); err != nil {
			return r.res, err
		}
		r.progress(s.loss)
		if r.hooks.OnStep != nil {
			if err := r.hooks.OnStep(r.step); err != nil {
				return r.res, errors.Join(err, r.flushMetrics(), r.checkpoint())
			}
		}
		if r.step == r.cfg.Steps || r.cfg.CheckpointEvery > 0 && r.step%r.cfg.CheckpointEvery == 0 {
			if err := r.checkpoint(); err != nil {
				return r.res, err
			}
		}
		if r.res.Last.Step == r.step { // the next rate leaves out evaluation and checkpoint time
			r.lastLog = time.Now()
		}
	}
	return r.res, nil
}

// nextBatches reads the step's micro-batches and returns their positions
// (B·T each) and loss positions; io.EOF when src has run out.
func (r *run) nextBatches() (stepTokens, lossTokens int, err error) {
	for i := range r.batches {
		b := &r.batches[i]
		if err := r.src.Next(b); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, 0, err
			}
			return 0, 0, fmt.Errorf("trainer: step %d: batch %d: %w", r.step, i, err)
		}
		stepTokens += b.B * b.T
		lossTokens += b.LossTokens()
	}
	return stepTokens, lossTokens, nil
}

// stepError is an error of a step's forward or backward pass, which says
// the step once, with the trainer's prefix once.
type stepError struct {
	step int
	err  error
}

func (e stepError) Error() string {
	return fmt.Sprintf("trainer: step %d: %s", e.step, strings.TrimPrefix(e.err.Error(), "trainer: "))
}

func (e stepError) Unwrap() error { return e.err }

// trainStep is one optimizer step on the micro-batches: forward and
// backward with the token mean over the whole step, the global gradient
// norm clipped, then AdamW at the step's learning rate.
func (r *run) trainStep(lossTokens int) (stepStats, error) {
	m, cfg, step := r.m, &r.cfg, r.step
	s := stepStats{lossTokens: lossTokens, lr: cfg.LRAt(step)}
	if err := m.ZeroGrad(); err != nil {
		return s, err
	}
	scale := 1.0
	if lossTokens > 0 {
		scale = 1 / float64(lossTokens)
	}
	for i := range r.batches {
		l, err := m.Forward(&r.batches[i], Pass{Train: true, Seed: cfg.Seed, Step: step, Micro: i})
		if err != nil {
			return s, stepError{step, err}
		}
		if err := m.Backward(scale); err != nil {
			return s, stepError{step, err}
		}
		s.loss.Add(l)
	}
	var err error
	if s.norm, err = m.GradNorm(); err != nil {
		return s, err
	}
	if math.IsNaN(s.norm) || math.IsInf(s.norm, 0) {
		return s, fmt.Errorf("trainer: step %d: gradient norm is %v (loss %v); lower the learning rate", step, s.norm, s.loss.Mean())
	}
	clip := 1.0
	if cfg.ClipNorm > 0 {
		if c := cfg.ClipNorm / (s.norm + 1e-6); c < 1 {
			clip = c
		}
	}
	return s, r.opt.Step(m, AdamWStep{LR: s.lr, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps,
		WeightDecay: cfg.WeightDecay, GradScale: clip, T: step + 1})
}

// log writes the metrics line of the step just taken when one is due
// (every LogEvery steps, at every evaluation and at the end), evaluating
// first when that is due, and passes it to OnLog.
func (r *run) log(ctx context.Context, s stepStats) error {
	cfg := &r.cfg
	last := r.step == cfg.Steps
	evalNow := r.eval != nil && (last || cfg.EvalEvery > 0 && r.step%cfg.EvalEvery == 0)
	if !last && !evalNow && !(cfg.LogEvery > 0 && r.step%cfg.LogEvery == 0) {
		return nil
	}
	now := time.Now()
	mt := Metrics{Step: r.step, Loss: s.loss.Mean(), LR: s.lr, GradNorm: s.norm, Tokens: r.tokens, LossTokens: s.lossTokens,
		TokensPerS: float64(r.tokens-r.lastTokens) / now.Sub(r.lastLog).Seconds(), ElapsedS: now.Sub(r.start).Seconds()}
	r.lastLog, r.lastTokens = now, r.tokens
	if evalNow {
		if err := r.eval.Restore(r.evalStart); err != nil {
			return fmt.Errorf("trainer: rewind the eval source: %w", err)
		}
		ev, err := Evaluate(ctx, r.m, r.eval, cfg.EvalBatches)
		if err != nil {
			return errors.Join(err, r.checkpoint())
		}
		mt.Eval = &ev
	}
	line, err := json.Marshal(mt)
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if _, err := r.metrics.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("trainer: write metrics: %w", err)
	}
	if err := r.flushMetrics(); err != nil {
		return err
	}
	r.res.Last = mt
	if r.hooks.OnLog != nil {
		if err := r.hooks.OnLog(mt); err != nil {
			return errors.Join(err, r.checkpoint())
		}
	}
	return nil
}

func (r *run) flushMetrics() error {
	if err := r.metrics.Flush(); err != nil {
		return fmt.Errorf("trainer: write metrics: %w", err)
	}
	return nil
}

func (r *run) progress(loss Loss) {
	if r.hooks.OnProgress != nil {
		r.hooks.OnProgress(Progress{Step: r.step, Steps: r.cfg.Steps, Loss: loss.Mean(), TokensPerS: r.res.Last.TokensPerS})
	}
}

// checkpoint writes cfg.Out/ckpt-STEP, with the loader's position after
// the step, and prunes the old ones.
func (r *run) checkpoint() error {
	state, err := r.src.State()
	if err != nil {
		return fmt.Errorf("trainer: loader state: %w", err)
	}
	return r.checkpointAt(state)
}

// checkpointAt is checkpoint with the loader's position given.
func (r *run) checkpointAt(state []byte) error {
	dir := CheckpointDir(r.cfg.Out, r.step)
	st := TrainerState{Step: r.step, Tokens: r.tokens, Seed: r.cfg.Seed, LoaderState: state, DataFingerprint: r.fingerprint}
	if err := SaveCheckpoint(dir, r.m, r.opt, &r.cfg, st); err != nil {
		return err
	}
	r.res.Checkpoint = dir
	if r.hooks.OnCheckpoint != nil {
		r.hooks.OnCheckpoint(dir)
	}
	return pruneCheckpoints(r.cfg.Out, r.cfg.KeepCheckpoints)
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
