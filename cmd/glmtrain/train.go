package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/internal/atomicfile"
	"github.com/glmkit/glmkit/internal/strictjson"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/cuda"
	"github.com/glmkit/glmkit/trainer/loader"
)

const trainHelp = `Usage: glmtrain train --data DIR --preset tiny|small|base|large --steps N --out DIR [flags]

Trains GLM on glmprep shards with the zero-copy loader: an exact shuffle per
epoch, AdamW (β 0.9/0.98, ε 1e-6, weight decay 0.1 except biases and
LayerNorm), linear warmup then cosine decay, gradient clipping, gradient
accumulation and dropout, all from --seed. Writes OUT/metrics.jsonl (a line
per logged step) and checkpoints OUT/ckpt-NNNNNNNN (safetensors + JSON).
On a terminal a progress bar runs on stderr; otherwise (Slurm, Kubernetes,
a pipe) stderr gets a line every --log-every steps (step, loss, lr,
tokens/s, ETA), and every evaluation as it comes.

--data takes one build, or several mixed by weight: repeat it
(--data a=0.7 --data b=0.3) or list them (--data a=0.7,b=0.3). Weights are
relative (normalised to 1); without weights every build gets an equal
share. Each batch takes each build's share of its rows, and an epoch is
as many rows as all the builds hold together (a build whose share is
above its size is read more than once an epoch, one below it less); the
resolved mixture is printed at the start.

--resume continues from the newest checkpoint in OUT exactly where it
stopped: on the CPU the losses are bitwise those of an uninterrupted run.
It refuses flags that would change the run (--steps, --batch, --accum,
--lr, --warmup, --min-lr-ratio, --weight-decay, --clip, --dropout), naming
each with its old and new value, unless --allow-changes; --seed, --data
and the model's shape can never change. Free to change: --eval-data,
--eval-every, --eval-batches, --log-every, --checkpoint-every,
--keep-checkpoints, --stop-at, --backend, --threads, --blas, --quiet.

Examples:
  glmprep build --input testdata/demo --out out/demo
  glmtrain train --data out/demo --preset tiny --steps 200 --batch 8 --out out/run
  glmtrain train --data out/wiki --eval-data out/wiki-valid --preset small --steps 2000 \
      --batch 16 --lr 1e-3 --eval-every 100 --out out/small --resume
  glmtrain train --data out/wiki=0.7 --data out/code=0.3 --preset small --steps 5000 --out out/mix
`

var errStopAt = errors.New("stopped at --stop-at")

// data.json sits beside the checkpoints: the shards' metadata, so infill
// and eval can load the tokenizer and the special ids.
const dataFile = "data.json"

// fixedFlags are the flags whose change breaks an exact resume (refused
// unless --allow-changes), in the order they are reported; neverFlags can
// not change at all (the trainer refuses a resume on other data or seed,
// and a checkpoint holds one shape).
func fixedFlags() []string {
	return []string{"--steps", "--batch", "--accum", "--lr", "--warmup", "--min-lr-ratio", "--weight-decay", "--clip", "--dropout"}
}

func neverFlags() []string {
	return []string{"--seed", "--data", "--layers", "--hidden", "--heads", "--max-pos"}
}

func cmdTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseTrainFlags(args, stdout)
	if err != nil {
		return err
	}
	src, err := loader.Open(ctx, f.spec, loader.Options{Batch: f.batch, Seed: f.seed})
	if err != nil {
		return err
	}
	defer src.Close()
	meta, manifests, err := loaderMeta(f.mix)
	if err != nil {
		return err
	}
	mc, err := f.modelConfig(meta)
	if err != nil {
		return err
	}
	var evalSrc trainer.BatchSource
	if el, err := openEvalData(ctx, f, meta, mc); err != nil {
		return err
	} else if el != nil {
		defer el.Close()
		evalSrc = el
	}
	tc := f.trainConfig(mc, src.Fingerprint(), meta)
	if err := cleanOut(f.out, stderr); err != nil {
		return err
	}
	hintOnInterrupt(ctx, f.out, args)
	startStep, done, err := f.chooseResume(&tc, mc, stdout, stderr)
	if err != nil || done {
		return err
	}

	be, err := newBackend(f.backend, f.threads, f.blas, stderr)
	if err != nil {
		return err
	}
	defer be.Close() // after the model's buffers (deferred below) are freed
	model, err := trainer.NewModel(mc, be)
	if err != nil {
		return err
	}
	defer model.Close()
	if err := writeDataFile(f.out, meta); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "glmtrain: %s model, %d layers × %d hidden × %d heads, vocab %d, %.1fM parameters, on %s\n",
		f.preset, mc.Layers, mc.Hidden, mc.Heads, mc.Vocab, float64(model.NumParams())/1e6, be.Name())
	printMixture(stderr, f.mix, manifests, src.EpochLen(), f.steps, f.batch*f.accum)

	hooks, bar := f.hooks(stderr, startStep)
	res, err := trainer.Train(ctx, tc, model, src, evalSrc, hooks)
	bar.finish()
	if err != nil && !errors.Is(err, errStopAt) {
		return err
	}
	printTrainResult(stdout, res)
	return nil
}

// trainFlags are train's command line, parsed and checked.
type trainFlags struct {
	mix      []loader.MixEntry // --data, resolved
	spec     string            // --data as the loader takes it
	evalData string
	out      string

	preset                        string
	layers, hidden, heads, maxPos int
	dropout                       float64

	steps, batch, accum, warmup int
	lr, minLR, wd, clip         float64
	seed                        uint64

	logEvery, evalEvery, evalBatches, ckptEvery, keep int
	resume, allowChanges                              bool
	stopAt                                            int

	backend, blas string
	threads       int
	quiet         bool

	set map[string]bool // the flags given, by name
}

// parseTrainFlags parses train's arguments: a usage error for a wrong or
// missing flag, an argument, or a --data that is no mixture.
func parseTrainFlags(args []string, stdout io.Writer) (*trainFlags, error) {
	var f trainFlags
	fs := cli.FlagSet("glmtrain train", trainHelp, stdout)
	var data listFlag
	fs.Var(&data, "data", "training shards: a build `DIR`, DIR=WEIGHT, or a comma list of them; repeatable, to mix builds")
	fs.StringVar(&f.evalData, "eval-data", "", "held-out shards for evaluation (a build DIR)")
	fs.StringVar(&f.preset, "preset", "tiny", "model shape: "+strings.Join(trainer.PresetNames(), ", "))
	fs.IntVar(&f.layers, "layers", 0, "override the preset's layers")
	fs.IntVar(&f.hidden, "hidden", 0, "override the preset's hidden size")
	fs.IntVar(&f.heads, "heads", 0, "override the preset's heads")
	fs.IntVar(&f.maxPos, "max-pos", 0, "override the position tables' size (default: the larger of the preset's and the shards' seq_len)")
	fs.Float64Var(&f.dropout, "dropout", -1, "hidden and attention dropout (default: the preset's, 0.1)")
	fs.IntVar(&f.steps, "steps", 100, "optimizer steps")
	fs.IntVar(&f.batch, "batch", 8, "rows per micro-batch")
	fs.IntVar(&f.accum, "accum", 1, "micro-batches per step (gradient accumulation)")
	fs.Float64Var(&f.lr, "lr", 4e-4, "peak learning rate")
	fs.IntVar(&f.warmup, "warmup", -1, "warmup steps (default: 5% of --steps)")
	fs.Float64Var(&f.minLR, "min-lr-ratio", 0.05, "cosine decay floor, as a fraction of --lr")
	fs.Float64Var(&f.wd, "weight-decay", 0.1, "decoupled weight decay (not on biases and LayerNorm)")
	fs.Float64Var(&f.clip, "clip", 1, "global gradient norm clip (0: off)")
	fs.Uint64Var(&f.seed, "seed", 1234, "seed of the initialisation, dropout and data order")
	fs.StringVar(&f.out, "out", "", "output `DIR` for metrics.jsonl and checkpoints")
	fs.IntVar(&f.logEvery, "log-every", 1, "write a metrics line (and, when stderr is not a terminal, a log line) every N steps")
	fs.IntVar(&f.evalEvery, "eval-every", 0, "evaluate every N steps (0: at the end only)")
	fs.IntVar(&f.evalBatches, "eval-batches", 0, "batches per evaluation (0: one pass over the eval data)")
	fs.IntVar(&f.ckptEvery, "checkpoint-every", 0, "checkpoint every N steps (0: at the end only)")
	fs.IntVar(&f.keep, "keep-checkpoints", 3, "keep the newest N checkpoints (0: all)")
	fs.BoolVar(&f.resume, "resume", false, "continue from the newest checkpoint in --out")
	fs.BoolVar(&f.allowChanges, "allow-changes", false, "with --resume, accept changed --steps, --batch, --lr, … (the run is then no longer exact)")
	fs.IntVar(&f.stopAt, "stop-at", 0, "stop after this step (at most --steps) with a checkpoint, as a preemption would (--resume continues; 0: off)")
	fs.StringVar(&f.backend, "backend", "auto", "auto, cpu or cuda")
	fs.IntVar(&f.threads, "threads", 0, "CPU threads, up to the machine's CPUs (default: all)")
	fs.StringVar(&f.blas, "blas", "", "CPU matrix products: auto (OpenBLAS if installed), off, openblas, or a library path (default $GLMKIT_BLAS or auto)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress bar or log lines")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, cli.Usagef(fs, "unexpected argument %q (give the training data with --data)", pos[0])
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if err := f.checkValues(fs); err != nil {
		return nil, err
	}
	if m := missingFlags(map[string]bool{"--data": len(data) == 0, "--out": f.out == ""}, "--data", "--out"); m != nil {
		return nil, cli.Missing(fs, m...)
	}
	if f.mix, f.spec, err = parseData(data); err != nil {
		return nil, cli.Usagef(fs, "%v", err)
	}
	return &f, nil
}

// checkValues refuses a flag given a value outside its range with an error
// naming the flag and the range: never taken for the default, never left
// for the trainer to meet at step 1 (a NaN from --weight-decay Inf) or when
// it writes a checkpoint (--clip Inf: "json: unsupported value"), and a
// model shape past the bounds a checkpoint is read back with (trainer.Max…)
// is refused before it trains, not when eval or --resume load it.
func (f *trainFlags) checkValues(fs *flag.FlagSet) error {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for _, c := range []struct {
		name string
		v    float64
		ok   bool
		want string
	}{
		{"lr", f.lr, finite(f.lr) && f.lr >= 0, "a finite number ≥ 0"},
		{"min-lr-ratio", f.minLR, f.minLR >= 0 && f.minLR <= 1, "0..1 (a fraction of --lr)"},
		{"weight-decay", f.wd, finite(f.wd) && f.wd >= 0, "a finite number ≥ 0 (0: off)"},
		{"clip", f.clip, finite(f.clip) && f.clip >= 0, "a finite number ≥ 0 (0: off)"},
		{"dropout", f.dropout, !f.set["dropout"] || f.dropout >= 0 && f.dropout < 1, "0 ≤ p < 1"},
	} {
		if !c.ok {
			return cli.Usagef(fs, "--%s %v; want %s", c.name, c.v, c.want)
		}
	}
	for _, c := range []struct {
		name    string
		v, min  int
		max     int // 0: no bound
		meaning string
	}{
		{"steps", f.steps, 1, 0, ""},
		{"batch", f.batch, 1, 0, ""},
		{"accum", f.accum, 1, 0, ""},
		{"log-every", f.logEvery, 0, 0, " (0: at evaluations and the end only)"},
		{"eval-every", f.evalEvery, 0, 0, " (0: at the end only)"},
		{"eval-batches", f.evalBatches, 0, 0, " (0: one pass)"},
		{"checkpoint-every", f.ckptEvery, 0, 0, " (0: at the end only)"},
		{"keep-checkpoints", f.keep, 0, 0, " (0: all)"},
		{"stop-at", f.stopAt, 0, f.steps, " (0: run all --steps)"},
		{"threads", f.threads, 0, runtime.NumCPU(), fmt.Sprintf(" (0: all; this machine has %d CPUs)", runtime.NumCPU())},
	} {
		switch {
		case c.v < c.min && c.max == 0:
			return cli.Usagef(fs, "--%s %d; want ≥ %d%s", c.name, c.v, c.min, c.meaning)
		case c.max > 0 && (c.v < c.min || c.v > c.max):
			return cli.Usagef(fs, "--%s %d; want %d..%d%s", c.name, c.v, c.min, c.max, c.meaning)
		}
	}
	if f.set["warmup"] && f.warmup < 0 {
		return cli.Usagef(fs, "--warmup %d; want ≥ 0 (or leave it out for 5%% of --steps)", f.warmup)
	}
	for _, o := range []struct {
		name   string
		v, max int
	}{{"layers", f.layers, trainer.MaxLayers}, {"hidden", f.hidden, trainer.MaxHidden}, {"heads", f.heads, trainer.MaxHidden}, {"max-pos", f.maxPos, trainer.MaxPos}} {
		if f.set[o.name] && (o.v < 1 || o.v > o.max) {
			return cli.Usagef(fs, "--%s %d; want 1..%d (or leave it out for the preset's)", o.name, o.v, o.max)
		}
	}
	return nil
}

// openEvalData opens --eval-data, which must use the training data's
// tokenizer and fit the model's positions (checked here, before any step:
// the first evaluation is often the run's last act); nil without
// --eval-data.
func openEvalData(ctx context.Context, f *trainFlags, meta sharding.Meta, mc trainer.Config) (*loader.Loader, error) {
	if f.evalData == "" {
		return nil, nil
	}
	el, err := loader.Open(ctx, f.evalData, loader.Options{Batch: f.batch, Seed: f.seed, Epochs: 1})
	if err != nil {
		return nil, err
	}
	em, err := sharding.ReadManifest(f.evalData)
	if err != nil {
		el.Close()
		return nil, err
	}
	if diff := sharding.TokenizerDiff(meta, em.Meta); diff != "" {
		el.Close()
		return nil, fmt.Errorf("--eval-data %s uses tokenizer %s, the training data %s (%s)", f.evalData, em.Meta.Tokenizer, meta.Tokenizer, diff)
	}
	if em.Meta.SeqLen > mc.MaxPos {
		el.Close()
		return nil, fmt.Errorf("--eval-data %s has seq_len %d, more than the model's %d positions (max_pos, from the training data's seq_len %d or --max-pos): build it with --seq-len %d or less, or give --max-pos %d",
			f.evalData, em.Meta.SeqLen, mc.MaxPos, meta.SeqLen, mc.MaxPos, em.Meta.SeqLen)
	}
	return el, nil
}

// modelConfig is the model's shape: the preset with the flags' overrides,
// positions for the shards' seq_len.
func (f *trainFlags) modelConfig(meta sharding.Meta) (trainer.Config, error) {
	mc, err := trainer.Preset(f.preset, meta.VocabSize)
	if err != nil {
		return mc, err
	}
	for _, o := range []struct {
		dst *int
		v   int
	}{{&mc.Layers, f.layers}, {&mc.Hidden, f.hidden}, {&mc.Heads, f.heads}, {&mc.MaxPos, f.maxPos}} {
		if o.v > 0 { // checked by checkValues
			*o.dst = o.v
		}
	}
	if f.maxPos == 0 {
		mc.MaxPos = max(mc.MaxPos, meta.SeqLen)
	} else if f.maxPos < meta.SeqLen {
		return mc, fmt.Errorf("--max-pos %d: the shards' rows have positions up to their seq_len, %d; give at least that (or leave --max-pos out)", f.maxPos, meta.SeqLen)
	}
	if f.set["dropout"] { // a value given is checked, not taken for "the preset's"
		mc.HiddenDropout, mc.AttentionDropout = f.dropout, f.dropout
	}
	if err := mc.Validate(); err != nil { // what no flag alone decides: --hidden and --heads together, the parameter count
		return mc, fmt.Errorf("--preset %s%s: %w", f.preset, f.shapeFlags(), err)
	}
	return mc, nil
}

// shapeFlags are the model-shape flags given, as " --name value" each.
func (f *trainFlags) shapeFlags() string {
	var b strings.Builder
	for _, o := range []struct {
		name string
		v    any
	}{{"layers", f.layers}, {"hidden", f.hidden}, {"heads", f.heads}, {"max-pos", f.maxPos}, {"dropout", f.dropout}} {
		if f.set[o.name] {
			fmt.Fprintf(&b, " --%s %v", o.name, o.v)
		}
	}
	return b.String()
}

// trainConfig is the training loop's configuration, with the run record
// that each checkpoint keeps.
func (f *trainFlags) trainConfig(mc trainer.Config, fingerprint string, meta sharding.Meta) trainer.TrainConfig {
	tc := trainer.DefaultTrainConfig(f.steps)
	tc.Accum, tc.LR, tc.MinLRRatio, tc.WeightDecay, tc.ClipNorm, tc.Seed = f.accum, f.lr, f.minLR, f.wd, f.clip, f.seed
	if f.set["warmup"] {
		tc.WarmupSteps = f.warmup
	}
	tc.Out, tc.LogEvery, tc.EvalEvery, tc.EvalBatches = f.out, f.logEvery, f.evalEvery, f.evalBatches
	tc.CheckpointEvery, tc.KeepCheckpoints = f.ckptEvery, f.keep
	tc.Software = cli.ReadBuild().Software()
	tc.Run = runRecord(tc, mc, f.batch, f.spec, fingerprint, meta)
	return tc
}

// cleanOut removes a killed run's temporary checkpoint directories (and
// brings back a checkpoint it had moved aside), before the newest
// checkpoint is chosen.
func cleanOut(out string, stderr io.Writer) error {
	cleaned, err := trainer.CleanCheckpointTemps(out)
	if err != nil {
		return err
	}
	if len(cleaned) > 0 {
		fmt.Fprintf(stderr, "glmtrain: removed %d temporaries of an interrupted run from %s\n", len(cleaned), out)
	}
	return nil
}

// hintOnInterrupt says, when the run is interrupted, how to continue it.
func hintOnInterrupt(ctx context.Context, out string, args []string) {
	cmdline := cli.Command(append([]string{"train"}, args...), nil, "resume")
	cli.OnInterrupt(ctx, func() string {
		ck, _ := trainer.LatestCheckpoint(out)
		if ck == "" {
			return fmt.Sprintf("no checkpoint was saved in %s; run the same command again", out)
		}
		return fmt.Sprintf("the newest checkpoint is %s; continue with:\n  %s", ck, cmdline)
	})
}

// chooseResume returns the step the run starts at and sets tc.Resume to
// the checkpoint it continues from. With --resume that is the newest
// checkpoint in --out (done when it already has all --steps); without,
// an --out that holds checkpoints is refused.
func (f *trainFlags) chooseResume(tc *trainer.TrainConfig, mc trainer.Config, stdout, stderr io.Writer) (startStep int, done bool, err error) {
	if !f.resume {
		if ck, _ := trainer.LatestCheckpoint(f.out); ck != "" {
			return 0, false, fmt.Errorf("%s already holds checkpoints (%s); pass --resume to continue, or choose another --out", f.out, filepath.Base(ck))
		}
		return 0, false, nil
	}
	ck, err := trainer.LatestCheckpoint(f.out)
	switch {
	case err == nil && ck != "":
	case err == nil || errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stderr, "glmtrain: no checkpoint in %s yet; starting fresh\n", f.out)
		return 0, false, nil
	default:
		return 0, false, err
	}
	if startStep, err = checkResume(ck, *tc, mc, f.allowChanges, stderr); err != nil {
		return 0, false, err
	}
	if startStep >= f.steps {
		fmt.Fprintf(stderr, "glmtrain: %s is already complete: step %d of --steps %d (%s); nothing to do (to train further, raise --steps and pass --allow-changes)\n",
			f.out, startStep, f.steps, ck)
		fmt.Fprintf(stdout, "step %d: complete; checkpoint %s\n", startStep, ck)
		return startStep, true, nil
	}
	tc.Resume = ck
	fmt.Fprintf(stderr, "glmtrain: resuming from %s (step %d of %d)\n", ck, startStep, f.steps)
	return startStep, false, nil
}

// writeDataFile writes the shards' metadata to data.json in out.
func writeDataFile(out string, meta sharding.Meta) error {
	if err := os.MkdirAll(out, 0o777); err != nil {
		return err
	}
	mb, _ := json.MarshalIndent(meta, "", "  ")
	return atomicfile.Write(filepath.Join(out, dataFile), append(mb, '\n'))
}

// hooks are the training loop's: log lines (and the stop of --stop-at),
// checkpoint lines, and on a terminal the progress bar.
func (f *trainFlags) hooks(stderr io.Writer, startStep int) (trainer.Hooks, *progressBar) {
	logger := newTrainLog(stderr, f.quiet, f.steps, startStep)
	hooks := trainer.Hooks{
		OnLog: func(m trainer.Metrics) error {
			logger.log(m)
			return nil
		},
		OnCheckpoint: logger.checkpoint,
		OnStep: func(step int) error {
			if f.stopAt > 0 && step >= f.stopAt {
				return errStopAt
			}
			return nil
		},
	}
	bar := &progressBar{}
	if w, ok := stderr.(*os.File); ok && !f.quiet && term.IsTerminal(int(w.Fd())) {
		hooks.OnProgress = bar.show(w)
	}
	return hooks, bar
}

// printTrainResult prints the run's last step: its loss, eval loss, speed
// and checkpoint.
func printTrainResult(stdout io.Writer, res trainer.Result) {
	last := res.Last
	fmt.Fprintf(stdout, "step %d: loss %.4f", res.Steps, last.Loss)
	if last.Eval != nil {
		fmt.Fprintf(stdout, ", eval loss %.4f (ppl %.2f)", last.Eval.Loss, last.Eval.PPL)
	}
	fmt.Fprintf(stdout, ", %.0f tokens/s; checkpoint %s\n", last.TokensPerS, res.Checkpoint)
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

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// missingFlags returns the flags of order that missing marks, or nil.
func missingFlags(missing map[string]bool, order ...string) []string {
	var m []string
	for _, f := range order {
		if missing[f] {
			m = append(m, f)
		}
	}
	return m
}

// parseData turns the --data values (each a DIR, DIR=WEIGHT or a comma list
// of them) into a mixture and the loader's spec. Every build has a weight,
// or none has (equal shares): a mixture of both is refused, since the
// builds without one would silently get weight 1.
func parseData(values []string) ([]loader.MixEntry, string, error) {
	spec := strings.Join(values, ",")
	mix, err := loader.ParseMix(spec)
	if err != nil {
		return nil, "", fmt.Errorf("--data %s: %w", spec, err)
	}
	weighted := 0
	for _, part := range strings.Split(spec, ",") {
		if strings.Contains(part, "=") {
			weighted++
		}
	}
	if weighted > 0 && weighted < len(mix) {
		return nil, "", fmt.Errorf("--data %s: give every build a weight (DIR=WEIGHT) or none (equal shares)", spec)
	}
	seen := map[string]bool{}
	for _, e := range mix {
		d := filepath.Clean(e.Dir)
		if seen[d] {
			return nil, "", fmt.Errorf("--data %s: %s is listed twice (give it a larger weight instead)", spec, e.Dir)
		}
		seen[d] = true
	}
	return mix, spec, nil
}

// loaderMeta returns the metadata of the builds of a mixture (mixMeta) and
// their manifests.
func loaderMeta(mix []loader.MixEntry) (sharding.Meta, []*sharding.Manifest, error) {
	var ms []*sharding.Manifest
	for _, e := range mix {
		m, err := sharding.ReadManifest(e.Dir)
		if err != nil {
			return sharding.Meta{}, nil, err
		}
		ms = append(ms, m)
	}
	meta, err := mixMeta(mix, ms)
	return meta, ms, err
}

// mixMeta is what a model trained on the builds of a mixture saw, as
// data.json records it: the first build's metadata, with the longest
// seq_len and task masks where any build had them (infill reads a model
// that saw [sMASK] and [gMASK] as one that knows them). The builds must
// share one tokenization (sharding.TokenizerDiff).
func mixMeta(mix []loader.MixEntry, ms []*sharding.Manifest) (sharding.Meta, error) {
	meta := ms[0].Meta
	for i, m := range ms[1:] {
		if diff := sharding.TokenizerDiff(meta, m.Meta); diff != "" {
			return meta, fmt.Errorf("%s uses tokenizer %s, %s uses %s (%s): mixed builds need one tokenizer, loaded the same way", mix[i+1].Dir, m.Meta.Tokenizer, mix[0].Dir, meta.Tokenizer, diff)
		}
		meta.SeqLen = max(meta.SeqLen, m.Meta.SeqLen)
		meta.Masking.TaskMask = meta.Masking.TaskMask || m.Meta.Masking.TaskMask
	}
	return meta, nil
}

// printMixture says what the training data is: each build with its
// normalised weight and rows, what an epoch is, and how many epochs the
// run's steps take.
func printMixture(w io.Writer, mix []loader.MixEntry, ms []*sharding.Manifest, epochLen uint64, steps, rowsPerStep int) {
	units := func(m *sharding.Manifest) int64 { return m.Totals.Rows / int64(max(m.Meta.MaskEpochs, 1)) }
	epochs := float64(steps) * float64(rowsPerStep) / float64(max(epochLen, 1))
	if len(mix) == 1 {
		fmt.Fprintf(w, "glmtrain: data %s: %d rows", mix[0].Dir, ms[0].Totals.Rows)
		if n := ms[0].Meta.MaskEpochs; n > 1 {
			fmt.Fprintf(w, " (%d samples × %d mask epochs; an epoch reads each sample once)", units(ms[0]), n)
		}
		fmt.Fprintf(w, "; %d steps × %d rows = %.2f epochs\n", steps, rowsPerStep, epochs)
		return
	}
	var sum float64
	weights := make([]float64, len(mix))
	for i, e := range mix {
		sum += e.Weight
		weights[i] = e.Weight
	}
	shares, err := loader.Shares(weights)
	if err != nil { // the loader was made with these weights
		shares = weights
	}
	fmt.Fprintf(w, "glmtrain: data: a mixture of %d builds; an epoch is %d rows (all of theirs together), %d steps × %d rows = %.2f epochs\n",
		len(mix), epochLen, steps, rowsPerStep, epochs)
	width := 0
	for _, e := range mix {
		width = max(width, len(e.Dir))
	}
	for i, e := range mix {
		per := shares[i] * float64(epochLen)
		weight := fmt.Sprintf("%.3f", shares[i])
		if shares[i] < 0.001 {
			weight = fmt.Sprintf("%.4f", shares[i]) // one part of 10000
		}
		fmt.Fprintf(w, "  %-*s  weight %s  %9d rows  %.0f rows an epoch = %.2f passes over it", width, e.Dir, weight, ms[i].Totals.Rows, per, per/float64(max(units(ms[i]), 1)))
		if asked := e.Weight / sum; math.Abs(shares[i]-asked) > 0.01*asked {
			fmt.Fprintf(w, " (asked %.3g: weights are mixed in parts of 1/%d, each build at least one)", asked, loader.MixBlock)
		}
		fmt.Fprintln(w)
	}
}

// runRecord is what glmtrain records in every checkpoint about the run:
// the flags of fixedFlags and neverFlags, resolved, and the data's
// tokenizer.
func runRecord(tc trainer.TrainConfig, mc trainer.Config, batch int, data, fingerprint string, meta sharding.Meta) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return map[string]string{
		"--steps": strconv.Itoa(tc.Steps), "--batch": strconv.Itoa(batch), "--accum": strconv.Itoa(tc.Accum),
		"--lr": f(tc.LR), "--warmup": strconv.Itoa(tc.WarmupSteps), "--min-lr-ratio": f(tc.MinLRRatio),
		"--weight-decay": f(tc.WeightDecay), "--clip": f(tc.ClipNorm), "--dropout": f(mc.HiddenDropout),
		"--seed": strconv.FormatUint(tc.Seed, 10), "--data": data, "data_fingerprint": fingerprint,
		"--layers": strconv.Itoa(mc.Layers), "--hidden": strconv.Itoa(mc.Hidden), "--heads": strconv.Itoa(mc.Heads),
		"--max-pos": strconv.Itoa(mc.MaxPos),
		"tokenizer": meta.Tokenizer, "tokenizer_sha256": meta.TokenizerSHA256, "vocab_size": strconv.Itoa(meta.VocabSize),
		"tokenizer_family": meta.TokenizerFamily,
	}
}

// checkResume compares the run's settings with those the checkpoint ck
// recorded and returns the checkpoint's step. A changed flag of fixedFlags
// is refused unless allow, naming each with its old and new value; one of
// neverFlags always.
func checkResume(ck string, tc trainer.TrainConfig, mc trainer.Config, allow bool, stderr io.Writer) (int, error) {
	step, err := checkpointStep(ck)
	if err != nil {
		return 0, err
	}
	ckModel, ckTrain, err := trainer.ReadCheckpointConfig(ck)
	if err != nil {
		return 0, err
	}
	old := map[string]string{}
	if ckTrain != nil {
		old = runRecord(*ckTrain, ckModel, 0, "", "", sharding.Meta{})
		delete(old, "--batch")
		delete(old, "--data")
		delete(old, "data_fingerprint")
		for k, v := range ckTrain.Run { // what an older glmtrain did not record stays out
			old[k] = v
		}
	}
	now := tc.Run
	var never, fixed []string
	differs := func(flag string) bool { v, ok := old[flag]; return ok && v != now[flag] }
	for _, fl := range neverFlags() {
		switch {
		case fl == "--data":
			if fp, ok := old["data_fingerprint"]; ok && fp != now["data_fingerprint"] {
				never = append(never, fmt.Sprintf("  --data: %s then, %s now (other rows: the data's fingerprint is %s, not %s)", old[fl], now[fl], now["data_fingerprint"], fp))
			}
		case differs(fl):
			never = append(never, fmt.Sprintf("  %s: %s then, %s now", fl, old[fl], now[fl]))
		}
	}
	for _, fl := range fixedFlags() {
		if differs(fl) {
			fixed = append(fixed, fmt.Sprintf("  %s: %s then, %s now", fl, old[fl], now[fl]))
		}
	}
	if len(never) > 0 {
		return 0, fmt.Errorf("--resume: %s was trained with other settings that a run cannot change:\n%s\ntrain with those, or into another --out", ck, strings.Join(append(never, fixed...), "\n"))
	}
	if len(fixed) > 0 && !allow {
		return 0, fmt.Errorf("--resume: %s was trained with other settings, so the run would not continue as it started:\n%s\npass the same values, or --allow-changes to continue with the new ones", ck, strings.Join(fixed, "\n"))
	}
	if len(fixed) > 0 {
		fmt.Fprintf(stderr, "glmtrain: --allow-changes: continuing %s with changed settings (no longer an exact resume):\n%s\n", ck, strings.Join(fixed, "\n"))
	}
	if ckTrain == nil || ckTrain.Run == nil {
		fmt.Fprintf(stderr, "glmtrain: note: %s was written by an older glmtrain that did not record --batch and --data; only the others were compared\n", ck)
	}
	return step, nil
}

// checkpointStep is the step of a checkpoint directory ckpt-NNNNNNNN.
func checkpointStep(ck string) (int, error) {
	var step int
	if _, err := fmt.Sscanf(filepath.Base(ck), "ckpt-%d", &step); err != nil {
		return 0, fmt.Errorf("%s: not a checkpoint directory name (ckpt-NNNNNNNN)", ck)
	}
	return step, nil
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
		if blas == "" { // cpu.New took it from the environment
			return nil, fmt.Errorf("$GLMKIT_BLAS=%s: %w (unset it, or pass --blas auto or off)", os.Getenv("GLMKIT_BLAS"), err)
		}
		if blas == "openblas" || blas == "on" {
			return nil, fmt.Errorf("--blas %s: %w", blas, err)
		}
		return nil, fmt.Errorf("--blas %s: %w (want auto, off, openblas or the path of an OpenBLAS library)", blas, err)
	}
	return be, nil
}

const evalHelp = `Usage: glmtrain eval --ckpt DIR --data DIR [--batch 8] [--batches N]

Evaluates a checkpoint on shards: the Part-B loss and perplexity, overall and
per objective, as one JSON line. The shards must be made with the tokenizer
the checkpoint was trained with (its sha256, recorded in the checkpoint and
in data.json beside it, is compared with the shards'), and fit the model's
vocabulary and positions.

Examples:
  glmtrain eval --ckpt out/small --data out/wiki-eval
  glmtrain eval --ckpt out/small/ckpt-00001000 --data out/wiki-eval --batches 50 | jq .ppl
`

// openModel loads checkpoint dir's model on a new backend (auto, cpu or
// cuda); closeModel releases both.
func openModel(dir, backend string, stderr io.Writer) (model *trainer.Model, closeModel func(), err error) {
	be, err := newBackend(backend, 0, "", stderr)
	if err != nil {
		return nil, nil, err
	}
	if model, err = trainer.LoadModel(dir, be); err != nil {
		be.Close()
		return nil, nil, err
	}
	return model, func() { model.Close(); be.Close() }, nil
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("glmtrain eval", evalHelp, stdout)
	ckpt := fs.String("ckpt", "", "checkpoint directory (OUT/ckpt-NNNNNNNN), or a training OUT for its newest")
	data := fs.String("data", "", "shards to evaluate on")
	batch := fs.Int("batch", 8, "rows per batch")
	batches := fs.Int("batches", 0, "batches to evaluate (0: one pass)")
	backend := fs.String("backend", "auto", "auto, cpu or cuda")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	if m := missingFlags(map[string]bool{"--ckpt": *ckpt == "", "--data": *data == ""}, "--ckpt", "--data"); m != nil {
		return cli.Missing(fs, m...)
	}
	if *batches < 0 {
		return cli.Usagef(fs, "--batches %d; want ≥ 0 (0: one pass)", *batches)
	}
	dir, err := resolveCheckpoint(*ckpt)
	if err != nil {
		return err
	}
	model, closeModel, err := openModel(dir, *backend, stderr)
	if err != nil {
		return err
	}
	defer closeModel()
	mix, spec, err := parseData([]string{*data})
	if err != nil {
		return cli.Usagef(fs, "%v", err)
	}
	meta, _, err := loaderMeta(mix)
	if err != nil {
		return err
	}
	if err := checkTokenizer(dir, meta, *data); err != nil {
		return err
	}
	if mc := model.Config(); meta.VocabSize > mc.Vocab || meta.SeqLen > mc.MaxPos {
		return fmt.Errorf("checkpoint %s has a vocabulary of %d and %d positions; the shards in %s need %d and %d", dir, mc.Vocab, mc.MaxPos, *data, meta.VocabSize, meta.SeqLen)
	}
	src, err := loader.Open(ctx, spec, loader.Options{Batch: *batch, Epochs: 1})
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

// trainedTokenizer returns the tokenizer a checkpoint was trained with:
// its name, sha256 and family, as the shards' metadata records them (the
// family empty where it was not recorded: an older glmtrain or glmprep),
// and where that was read: the run record in its config.json, else
// data.json beside it.
func trainedTokenizer(ck string) (tok sharding.Meta, from string, err error) {
	_, tc, err := trainer.ReadCheckpointConfig(ck)
	if err != nil {
		return tok, "", err
	}
	if tc != nil && tc.Run["tokenizer_sha256"] != "" {
		tok = sharding.Meta{Tokenizer: tc.Run["tokenizer"], TokenizerSHA256: tc.Run["tokenizer_sha256"], TokenizerFamily: tc.Run["tokenizer_family"]}
		return tok, filepath.Join(ck, "config.json"), nil
	}
	meta, path, err := readDataFile(ck)
	if err != nil {
		return tok, "", fmt.Errorf("cannot tell which tokenizer %s was trained with: its config.json does not say (an older glmtrain) and %w", ck, err)
	}
	return meta, path, nil
}

// checkTokenizer refuses shards made with another tokenizer than the
// checkpoint's, or with the same file read as another tokenization (a
// vocab.txt lower-cased or not: its family), as train refuses to resume on
// other data.
func checkTokenizer(ck string, meta sharding.Meta, data string) error {
	tok, from, err := trainedTokenizer(ck)
	if err != nil {
		return err
	}
	if tok.TokenizerSHA256 != meta.TokenizerSHA256 {
		return fmt.Errorf("the shards in %s were made with tokenizer %s (sha256 %.12s…), checkpoint %s was trained with %s (sha256 %.12s…, from %s): rebuild the shards with that tokenizer",
			data, meta.Tokenizer, meta.TokenizerSHA256, ck, tok.Tokenizer, tok.TokenizerSHA256, from)
	}
	if !sharding.SameFamily(tok.TokenizerFamily, meta.TokenizerFamily) {
		return fmt.Errorf("the shards in %s were made with tokenizer %s as %s, checkpoint %s was trained with it as %s (from %s): the same text has other ids; rebuild the shards as the checkpoint's were (--lowercase, a tokenizer_config.json beside it)",
			data, meta.Tokenizer, meta.TokenizerFamily, ck, tok.TokenizerFamily, from)
	}
	return nil
}

// readDataFile reads data.json beside a checkpoint (the training run's
// shard metadata) strictly.
func readDataFile(ck string) (sharding.Meta, string, error) {
	var meta sharding.Meta
	path := filepath.Join(filepath.Dir(filepath.Clean(ck)), dataFile)
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return meta, path, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return meta, path, fmt.Errorf("%w (the training run writes %s beside its checkpoints; copy it with the checkpoint)", err, dataFile)
	}
	if err := strictjson.Decode(b, &meta); err != nil {
		return meta, path, fmt.Errorf("%s: %w", path, err)
	}
	return meta, path, nil
}
