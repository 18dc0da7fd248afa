package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/cuda"
	"github.com/glmkit/glmkit/trainer/loader"
	"github.com/schollz/progressbar/v2"
	"golang.org/x/term"
)

const trainHelp = `Usage: glmtrain train --data DIR --preset tiny|small|base|large --steps N --out DIR [flags]

Trains GLM on glmprep shards with the zero-copy loader: an exact shuffle per
epoch, AdamW (β 0.9/0.98, ε 1e-6, weight decay 0.1 except biases and
LayerNorm), linear warmup then cosine decay, gradient clipping, gradient
accumulation and dropout, all from --seed. Writes OUT/metrics.jsonl (a line
per logged step) and checkpoints OUT/ckpt-NNNNNNNN (safetensors + JSON).
--resume continues from the newest checkpoint in OUT exactly where it
stopped: on the CPU the losses are bitwise those of an uninterrupted run.

--data takes one build, or several mixed by weight: --data a=0.7,b=0.3.

Examples:
  glmprep build --input testdata/demo --out out/demo
  glmtrain train --data out/demo --preset tiny --steps 200 --batch 8 --out out/run
  glmtrain train --data out/wiki --eval-data out/wiki-valid --preset small --steps 2000 \
      --batch 16 --lr 1e-3 --eval-every 100 --out out/small --resume
`

var errStopAt = errors.New("stopped at --stop-at")

// data.json sits beside the checkpoints: the shards' metadata, so infill
// and eval can load the tokenizer and the special ids.
const dataFile = "data.json"

func cmdTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("train", trainHelp, stderr)
	data := fs.String("data", "", "training shards: DIR, or DIR=WEIGHT,DIR=WEIGHT to mix builds")
	evalData := fs.String("eval-data", "", "held-out shards for evaluation")
	preset := fs.String("preset", "tiny", "model shape: "+strings.Join(trainer.PresetNames(), ", "))
	layers := fs.Int("layers", 0, "override the preset's layers")
	hidden := fs.Int("hidden", 0, "override the preset's hidden size")
	heads := fs.Int("heads", 0, "override the preset's heads")
	maxPos := fs.Int("max-pos", 0, "override the position tables' size (default: the larger of the preset's and the shards' seq_len)")
	dropout := fs.Float64("dropout", -1, "hidden and attention dropout (default: the preset's, 0.1)")
	steps := fs.Int("steps", 100, "optimizer steps")
	batch := fs.Int("batch", 8, "rows per micro-batch")
	accum := fs.Int("accum", 1, "micro-batches per step (gradient accumulation)")
	lr := fs.Float64("lr", 4e-4, "peak learning rate")
	warmup := fs.Int("warmup", -1, "warmup steps (default: 5% of --steps)")
	minLR := fs.Float64("min-lr-ratio", 0.05, "cosine decay floor, as a fraction of --lr")
	wd := fs.Float64("weight-decay", 0.1, "decoupled weight decay (not on biases and LayerNorm)")
	clip := fs.Float64("clip", 1, "global gradient norm clip (0: off)")
	seed := fs.Uint64("seed", 1234, "seed of the initialisation, dropout and data order")
	out := fs.String("out", "", "output DIR for metrics.jsonl and checkpoints")
	logEvery := fs.Int("log-every", 1, "write a metrics line every N steps")
	evalEvery := fs.Int("eval-every", 0, "evaluate every N steps (0: at the end only)")
	evalBatches := fs.Int("eval-batches", 0, "batches per evaluation (0: one pass over the eval data)")
	ckptEvery := fs.Int("checkpoint-every", 0, "checkpoint every N steps (0: at the end only)")
	keep := fs.Int("keep-checkpoints", 3, "keep the newest N checkpoints (0: all)")
	resume := fs.Bool("resume", false, "continue from the newest checkpoint in --out")
	stopAt := fs.Int("stop-at", 0, "stop after this step with a checkpoint, as a preemption would (--resume continues)")
	backend := fs.String("backend", "auto", "auto, cpu or cuda")
	threads := fs.Int("threads", 0, "CPU threads (default: all)")
	blas := fs.String("blas", "", "CPU matrix products: auto (OpenBLAS if installed), off, openblas, or a library path (default $GLMKIT_BLAS or auto)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *data == "" || *out == "" {
		fs.Usage()
		return fmt.Errorf("%w: train needs --data and --out", cli.ErrUsage)
	}

	src, err := loader.Open(ctx, *data, loader.Options{Batch: *batch, Seed: *seed})
	if err != nil {
		return err
	}
	defer src.Close()
	meta, err := loaderMeta(*data)
	if err != nil {
		return err
	}
	var evalSrc trainer.BatchSource
	if *evalData != "" {
		el, err := loader.Open(ctx, *evalData, loader.Options{Batch: *batch, Seed: *seed, Epochs: 1})
		if err != nil {
			return err
		}
		defer el.Close()
		em, err := loaderMeta(*evalData)
		if err != nil {
			return err
		}
		if em.TokenizerSHA256 != meta.TokenizerSHA256 || em.VocabSize != meta.VocabSize {
			return fmt.Errorf("--eval-data %s uses tokenizer %s, the training data %s", *evalData, em.Tokenizer, meta.Tokenizer)
		}
		evalSrc = el
	}

	mc, err := trainer.Preset(*preset, meta.VocabSize)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		dst *int
		v   int
	}{{&mc.Layers, *layers}, {&mc.Hidden, *hidden}, {&mc.Heads, *heads}, {&mc.MaxPos, *maxPos}} {
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	if *maxPos == 0 {
		mc.MaxPos = max(mc.MaxPos, meta.SeqLen)
	}
	if *dropout >= 0 {
		mc.HiddenDropout, mc.AttentionDropout = *dropout, *dropout
	}
	if err := mc.Validate(); err != nil {
		return err
	}

	be, err := newBackend(*backend, *threads, *blas, stderr)
	if err != nil {
		return err
	}
	defer be.Close() // after the model's buffers (deferred below) are freed
	model, err := trainer.NewModel(mc, be)
	if err != nil {
		return err
	}
	defer model.Close()

	tc := trainer.DefaultTrainConfig(*steps)
	tc.Accum, tc.LR, tc.MinLRRatio, tc.WeightDecay, tc.ClipNorm, tc.Seed = *accum, *lr, *minLR, *wd, *clip, *seed
	if *warmup >= 0 {
		tc.WarmupSteps = *warmup
	}
	tc.Out, tc.LogEvery, tc.EvalEvery, tc.EvalBatches = *out, *logEvery, *evalEvery, *evalBatches
	tc.CheckpointEvery, tc.KeepCheckpoints = *ckptEvery, *keep
	// A killed run's temporary checkpoint directories go first (and a
	// checkpoint it had moved aside comes back), before the newest one is
	// chosen.
	if cleaned, err := trainer.CleanCheckpointTemps(*out); err != nil {
		return err
	} else if len(cleaned) > 0 {
		fmt.Fprintf(stderr, "glmtrain: removed %d temporaries of an interrupted run from %s\n", len(cleaned), *out)
	}
	cmdline := cli.Command(append([]string{"train"}, args...), nil, "resume")
	cli.OnInterrupt(ctx, func() string {
		ck, _ := trainer.LatestCheckpoint(*out)
		if ck == "" {
			return fmt.Sprintf("no checkpoint was saved in %s; run the same command again", *out)
		}
		return fmt.Sprintf("the newest checkpoint is %s; continue with:\n  %s", ck, cmdline)
	})
	if *resume {
		ck, err := trainer.LatestCheckpoint(*out)
		switch {
		case err == nil && ck != "":
			tc.Resume = ck
			fmt.Fprintf(stderr, "glmtrain: resuming from %s\n", ck)
		case err == nil || errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stderr, "glmtrain: no checkpoint in %s yet; starting fresh\n", *out)
		default:
			return err
		}
	} else if ck, _ := trainer.LatestCheckpoint(*out); ck != "" {
		return fmt.Errorf("%s already holds checkpoints (%s); pass --resume to continue, or choose another --out", *out, filepath.Base(ck))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	mb, _ := json.MarshalIndent(meta, "", "  ")
	if err := atomicfile.Write(filepath.Join(*out, dataFile), append(mb, '\n')); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "glmtrain: %s model, %d layers × %d hidden × %d heads, vocab %d, %.1fM parameters, on %s; %d rows of training data\n",
		*preset, mc.Layers, mc.Hidden, mc.Heads, mc.Vocab, float64(model.NumParams())/1e6, be.Name(), src.EpochLen())
	var hooks trainer.Hooks
	if *stopAt > 0 {
		hooks.OnLog = func(m trainer.Metrics) error {
			if m.Step >= *stopAt {
				return errStopAt
			}
			return nil
		}
	}
	var bar progressBar
	if f, ok := stderr.(*os.File); ok && !*quiet && term.IsTerminal(int(f.Fd())) {
		hooks.OnProgress = bar.show(f)
	}
	res, err := trainer.Train(ctx, tc, model, src, evalSrc, hooks)
	bar.finish()
	if err != nil && !errors.Is(err, errStopAt) {
		return err
	}
	last := res.Last
	fmt.Fprintf(stdout, "step %d: loss %.4f", res.Steps, last.Loss)
	if last.Eval != nil {
		fmt.Fprintf(stdout, ", eval loss %.4f (ppl %.2f)", last.Eval.Loss, last.Eval.PPL)
	}
	fmt.Fprintf(stdout, ", %.0f tokens/s; checkpoint %s\n", last.TokensPerS, res.Checkpoint)
	return nil
}

// progressBar draws training's progress on a terminal.
type progressBar struct{ bar *progressbar.ProgressBar }

// show returns the OnProgress hook that draws the bar on w.
func (p *progressBar) show(w io.Writer) func(trainer.Progress) {
	return func(pr trainer.Progress) {
		if p.bar == nil { // training starts, maybe at a resumed step
			p.bar = progressbar.NewOptions(pr.Steps,
				progressbar.OptionSetWriter(w), progressbar.OptionSetPredictTime(true),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionSetDescription("training"))
			p.bar.Set(pr.Step)
			return
		}
		p.bar.Describe(fmt.Sprintf("loss %.4f | %.0f tok/s", pr.Loss, pr.TokensPerS))
		p.bar.Set(pr.Step)
	}
}

func (p *progressBar) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// loaderMeta returns the metadata of the builds in a --data value, which
// must all share one tokenizer and vocabulary.
func loaderMeta(spec string) (sharding.Meta, error) {
	dirs := []string{spec}
	if strings.Contains(spec, "=") {
		mix, err := loader.ParseMix(spec)
		if err != nil {
			return sharding.Meta{}, err
		}
		dirs = dirs[:0]
		for _, e := range mix {
			dirs = append(dirs, e.Dir)
		}
	}
	var meta sharding.Meta
	for i, d := range dirs {
		m, err := sharding.ReadManifest(d)
		if err != nil {
			return meta, err
		}
		if i == 0 {
			meta = m.Meta
			continue
		}
		if m.Meta.TokenizerSHA256 != meta.TokenizerSHA256 || m.Meta.VocabSize != meta.VocabSize {
			return meta, fmt.Errorf("%s uses tokenizer %s, %s uses %s: mixed builds need one tokenizer", d, m.Meta.Tokenizer, dirs[0], meta.Tokenizer)
		}
		meta.SeqLen = max(meta.SeqLen, m.Meta.SeqLen)
	}
	return meta, nil
}

// newBackend picks the backend: cpu; cuda (an error without a usable GPU);
// or auto, which takes cuda when a GPU is usable and says so, and falls
// back to the CPU, saying why, otherwise.
func newBackend(name string, threads int, blas string, stderr io.Writer) (trainer.Backend, error) {
	switch name {
	case "cpu":
	case "cuda":
		be, err := cuda.New(cuda.Options{})
		if err != nil {
			return nil, err // "cuda: …", e.g. "cuda: no CUDA driver found: …"
		}
		return be, nil
	case "auto":
		be, err := cuda.New(cuda.Options{})
		if err == nil {
			fmt.Fprintf(stderr, "glmtrain: --backend auto: a GPU is present; running on %s\n", be.Name())
			return be, nil
		}
		reason := err.Error()
		if errors.Is(err, cuda.ErrNoDriver) || errors.Is(err, cuda.ErrNoDevice) {
			reason = "no CUDA driver or device (glmtrain doctor says what was looked for)"
		}
		fmt.Fprintf(stderr, "glmtrain: --backend auto: %s; running on the CPU\n", reason)
	default:
		return nil, fmt.Errorf("--backend %q: want auto, cpu or cuda", name)
	}
	be, err := cpu.New[float32](cpu.Options{Threads: threads, BLAS: blas})
	if err != nil {
		return nil, err
	}
	return be, nil
}

const evalHelp = `Usage: glmtrain eval --ckpt DIR --data DIR [--batch 8] [--batches N]

Evaluates a checkpoint on shards: the Part-B loss and perplexity, overall and
per objective, as one JSON line.
`

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("eval", evalHelp, stderr)
	ckpt := fs.String("ckpt", "", "checkpoint directory (OUT/ckpt-NNNNNNNN), or a training OUT for its newest")
	data := fs.String("data", "", "shards to evaluate on")
	batch := fs.Int("batch", 8, "rows per batch")
	batches := fs.Int("batches", 0, "batches to evaluate (0: one pass)")
	backend := fs.String("backend", "auto", "auto, cpu or cuda")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *ckpt == "" || *data == "" {
		fs.Usage()
		return fmt.Errorf("%w: eval needs --ckpt and --data", cli.ErrUsage)
	}
	dir, err := resolveCheckpoint(*ckpt)
	if err != nil {
		return err
	}
	be, err := newBackend(*backend, 0, "", stderr)
	if err != nil {
		return err
	}
	defer be.Close()
	model, err := trainer.LoadModel(dir, be)
	if err != nil {
		return err
	}
	defer model.Close()
	meta, err := loaderMeta(*data)
	if err != nil {
		return err
	}
	if mc := model.Config(); meta.VocabSize > mc.Vocab || meta.SeqLen > mc.MaxPos {
		return fmt.Errorf("checkpoint %s has a vocabulary of %d and %d positions; the shards in %s need %d and %d", dir, mc.Vocab, mc.MaxPos, *data, meta.VocabSize, meta.SeqLen)
	}
	src, err := loader.Open(ctx, *data, loader.Options{Batch: *batch, Epochs: 1})
	if err != nil {
		return err
	}
	defer src.Close()
	res, err := trainer.Evaluate(ctx, model, src, *batches)
	if err != nil {
		return err
	}
	type objective struct {
		Loss   float64 `json:"loss"`
		PPL    float64 `json:"ppl"`
		Tokens int     `json:"tokens"`
	}
	line := struct {
		Checkpoint string               `json:"checkpoint"`
		Loss       float64              `json:"loss"`
		PPL        float64              `json:"ppl"`
		Tokens     int                  `json:"tokens"`
		Objectives map[string]objective `json:"objectives"`
	}{dir, res.Loss, res.PPL, res.Tokens, map[string]objective{}}
	for o, oe := range res.Objectives {
		if oe.Tokens > 0 {
			line.Objectives[masking.Objective(o).String()] = objective{oe.Loss, oe.PPL, oe.Tokens}
		}
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// resolveCheckpoint accepts a checkpoint directory, or a training output
// directory whose newest checkpoint it returns.
func resolveCheckpoint(path string) (string, error) {
	if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
		return path, nil
	}
	ck, err := trainer.LatestCheckpoint(path)
	if err != nil {
		return "", err
	}
	if ck == "" {
		return "", fmt.Errorf("%s is not a checkpoint and holds none", path)
	}
	return ck, nil
}
