package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

const buildHelp = `Usage: glmprep build --input PATH... --out DIR [flags]

Reads plain text, JSON Lines (optionally .gz, .zst or .bz2, found by their
magic bytes) or Parquet (a string column, as Hugging Face datasets publish them),
tokenizes it, packs documents into samples of --seq-len tokens
([CLS] starts every piece, eos ends every document), masks every sample with
one of GLM's objectives, and writes Arrow IPC shards plus manifest.json.
The output is byte-identical for the same inputs, flags and seed, whatever
--workers is, and after an interrupted build is finished with --resume.

Inputs: files, globs ('data/*.jsonl.gz'), directories (searched for .txt
.text .raw .jsonl .json .ndjson, optionally .gz/.zst, and .parquet) and -
for stdin; repeat --input or list them after the flags. They are read in
sorted order. "glmprep status DIR" shows how far a build has come.

Tokenizers: bert-base-uncased and gpt2 are built in; a Hugging Face
tokenizer.json, a SentencePiece .model, a tiktoken file (cl100k_base,
o200k_base, r50k_base, p50k_base and Llama-3's are recognised; others need
--tokenizer-pattern, GLM-4's tokenizer.model --tokenizer-pattern glm4), a
WordPiece vocab.txt (cased or not by its tokenizer_config.json or
--lowercase) or a vocab.json with merges.txt are read natively and encode
exactly as their own references. A component glmkit does not implement is
an error before anything is read.

Examples:
  glmprep build --input testdata/demo --out out/demo
  glmprep build --input ../shared/corpora/wikitext-2-raw/wiki.valid.raw \
      --tokenizer bert-base-uncased --out out/wiki --mix token=0.5,document=0.5
  glmprep build --input 'crawl/*.jsonl.zst' --text-field meta.text \
      --tokenizer gpt2 --seq-len 1024 --out out/crawl
  glmprep build --out out/crawl --resume     # continue it: inputs and flags from its plan.json
  glmprep build --input 'hf/train-*.parquet' --text-field text --out out/hf
  zcat dump.txt.gz | glmprep build --input - --tokenizer vocab.txt --out out/dump
  glmprep build --input zh/ --tokenizer Meta-Llama-3-8B/tokenizer.json --out out/zh
  glmprep build --input zh/ --tokenizer glm-4-9b/tokenizer.model --tokenizer-pattern glm4 --out out/zh
`

// buildArgs are the flags shared by build and plan.
type buildArgs struct {
	cpuProfile  string
	inputs      listFlag
	out         string
	tok         string
	seqLen      int
	workers     int
	seed        uint64
	mix         string
	taskMask    bool
	maskEpochs  int
	ratio       float64
	lambda      float64
	maxSpan     int
	docRatio    string
	suffixProb  float64
	format      string
	docBoundary string
	textFields  listFlag
	maxDoc      sizeFlag
	shardRows   int64
	shardBytes  sizeFlag
	compression string
	taskBytes   sizeFlag
	resume      bool
	force       bool
	strict      bool
	quiet       bool
	allowEmpty  bool
	tokPattern  string
	lowercase   string
	tokNotes    []string // how the tokenizer was read, for the summary
	tokFamily   string
	maxRecords  int64
	jsonPath    string
	validFrac   float64
	validOut    string
}

func addBuildFlags(fs *flag.FlagSet, a *buildArgs) {
	d := pipeline.DefaultConfig()
	m := masking.DefaultConfig()
	fs.Var(&a.inputs, "input", "input `PATH`: a file, glob, directory or - (repeatable)")
	fs.StringVar(&a.out, "out", "", "output `DIR` for shards and manifest.json")
	fs.StringVar(&a.tok, "tokenizer", "bert-base-uncased", "bert-base-uncased, gpt2, or a tokenizer.json, SentencePiece .model, .tiktoken, vocab.txt or vocab.json (+merges.txt) `FILE`")
	fs.StringVar(&a.tokPattern, "tokenizer-pattern", "", "pre-tokenization `PATTERN` of a .tiktoken or vocab.json+merges.txt: gpt2, r50k_base, p50k_base, cl100k_base, llama3, glm4, o200k_base, qwen2, or a regex")
	fs.StringVar(&a.lowercase, "lowercase", "", "lower-case (and strip accents) with a vocab.txt: `true|false` (default: its tokenizer_config.json, else true)")
	fs.IntVar(&a.seqLen, "seq-len", 512, "source tokens per sample, [CLS] and eos included")
	fs.IntVar(&a.workers, "workers", runtime.NumCPU(), "parallel workers (default: the number of CPUs; the output does not depend on it)")
	fs.Uint64Var(&a.seed, "seed", 1234, "seed of every masking draw")
	fs.StringVar(&a.mix, "mix", "token=0.5,sentence=0,document=0.5", "objective weights, drawn per sample")
	fs.BoolVar(&a.taskMask, "task-mask", true, "use [sMASK] for sentence and [gMASK] for document spans (false: [MASK] everywhere, as GLM-Base/Large)")
	fs.IntVar(&a.maskEpochs, "mask-epochs", 1, "independently masked copies of every sample (BERT's dupe factor)")
	fs.Float64Var(&a.ratio, "mask-ratio", m.Ratio, "fraction of a sample the token and sentence objectives mask at least")
	fs.Float64Var(&a.lambda, "span-lambda", m.Lambda, "Poisson mean of token span lengths")
	fs.IntVar(&a.maxSpan, "max-span", m.MaxSpan, "longest token span")
	fs.StringVar(&a.docRatio, "doc-ratio", "0.5,1.0", "document span length range, as fractions of the sample")
	fs.Float64Var(&a.suffixProb, "suffix-prob", m.SuffixProb, "probability of the suffix layout for a single-document sample's document span")
	fs.StringVar(&a.format, "format", d.Format, "input format: auto (Parquet by extension or magic bytes; JSON Lines for .jsonl .ndjson, and .json unless it is one JSON document; text otherwise), text, jsonl, json (one JSON document) or parquet")
	fs.StringVar(&a.docBoundary, "doc-boundary", d.DocBoundary, "plain text documents: line, blank (blank-line separated) or file")
	fs.Var(&a.textFields, "text-field", "JSON `FIELD` holding the text, a dotted path for nested ones (meta.text); repeat it or list several (title,text) to join them into one document, in that order, separated by a blank line; for Parquet, a top-level string column (default: text)")
	a.maxDoc = sizeFlag(d.MaxDocBytes)
	fs.Var(&a.maxDoc, "max-doc-bytes", "longest record (line, block or file); longer ones are skipped and counted")
	fs.Int64Var(&a.shardRows, "shard-rows", d.ShardRows, "start a new shard after this many rows (0: no limit)")
	a.shardBytes = sizeFlag(d.ShardBytes)
	fs.Var(&a.shardBytes, "shard-bytes", "start a new shard after this many bytes (0: no limit)")
	fs.StringVar(&a.compression, "compression", d.Compression, "shard compression: none (maps with no copy), zstd or lz4")
	a.taskBytes = sizeFlag(d.TaskBytes)
	fs.Var(&a.taskBytes, "task-bytes", "split uncompressed line-based inputs larger than this into tasks of about this size (0: a task per file)")
	fs.BoolVar(&a.strict, "strict", false, "make bad input (broken JSON, invalid UTF-8, truncated files, …) fatal instead of counted")
	fs.BoolVar(&a.quiet, "quiet", false, "no progress bar or summary")
	fs.StringVar(&a.jsonPath, "json-path", "", "JSON documents (.json files that hold one value): the dotted `PATH` to the records, lists on the way walked through (data, or SQuAD's data.paragraphs); a record is an object (its --text-field is read) or a string")
	fs.Float64Var(&a.validFrac, "valid-fraction", 0, "hold out this `FRACTION` of the records (0.01: 1%) as a second build, the validation split, in --valid-out; chosen by each record's position in its input, the same for any --workers or --task-bytes")
	fs.StringVar(&a.validOut, "valid-out", "", "the validation split's build `DIR` with --valid-fraction (default: --out with -valid appended)")
	fs.Int64Var(&a.maxRecords, "max-records", 0, "build only the first `N` records of the inputs, in input order (for smoke tests; 0: all)")
	fs.BoolVar(&a.allowEmpty, "allow-empty", false, "accept a build that writes no rows (otherwise it is an error that says why)")
}

// textField is the --text-field values as the config holds them: the
// fields, comma-separated ("text" when none was given).
func (a *buildArgs) textField() string {
	var fields []string
	for _, v := range a.textFields {
		for _, f := range strings.Split(v, ",") {
			fields = append(fields, strings.TrimSpace(f))
		}
	}
	if len(fields) == 0 {
		return pipeline.DefaultConfig().TextField
	}
	return strings.Join(fields, ",")
}

// options turns the flags into build options and loads the tokenizer.
func (a *buildArgs) options(stderr io.Writer) (pipeline.BuildOptions, *tokenizer.Tokenizer, error) {
	var o pipeline.BuildOptions
	tok, err := tokenizer.LoadWith(a.tok, tokenizer.LoadOptions{Pattern: a.tokPattern, Lowercase: a.lowercase})
	if err != nil {
		return o, nil, err
	}
	a.tokNotes, a.tokFamily = tok.Notes(), tok.Family()
	if w := tok.Warning(); w != "" {
		fmt.Fprintln(stderr, "glmprep: warning:", cli.Message(w))
	}
	mc := masking.DefaultConfig()
	if mc.Weights, err = parseMix(a.mix); err != nil {
		return o, nil, err
	}
	mc.Ratio, mc.Lambda, mc.MaxSpan, mc.SuffixProb = a.ratio, a.lambda, a.maxSpan, a.suffixProb
	lo, hi, ok := strings.Cut(a.docRatio, ",")
	if mc.DocMin, err = strconv.ParseFloat(strings.TrimSpace(lo), 64); err != nil || !ok {
		return o, nil, fmt.Errorf("--doc-ratio %q: want MIN,MAX such as 0.5,1.0", a.docRatio)
	}
	if mc.DocMax, err = strconv.ParseFloat(strings.TrimSpace(hi), 64); err != nil {
		return o, nil, fmt.Errorf("--doc-ratio %q: want MIN,MAX such as 0.5,1.0", a.docRatio)
	}
	mc.TaskMask = a.taskMask
	mc.IDs = tok.Special()
	mc.Seed = a.seed
	check := mc
	check.SentenceEnd = tok.SentenceEnds()
	if err := check.Validate(); err != nil {
		return o, nil, err
	}
	o = pipeline.BuildOptions{
		Inputs: a.inputs,
		Out:    a.out,
		Meta: sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: tok.Name(), TokenizerSHA256: tok.SHA256(),
			TokenizerFamily: tok.Family(), TokenizerOptions: tok.Options().String(),
			VocabSize: tok.ModelVocabSize(), Special: tok.Special(), SeqLen: a.seqLen, MaskEpochs: a.maskEpochs, Masking: mc},
		Config: pipeline.Config{Tokenizer: a.tok, Format: a.format, DocBoundary: a.docBoundary, TextField: a.textField(),
			MaxDocBytes: int(a.maxDoc), ShardRows: a.shardRows, ShardBytes: int64(a.shardBytes),
			Compression: a.compression, TaskBytes: int64(a.taskBytes), AllowEmpty: a.allowEmpty, MaxRecords: a.maxRecords, JSONPath: a.jsonPath},
		SentenceEnd: tok.SentenceEnds(),
		NewEncoder:  func() pipeline.Encoder { return tok.NewEncoder() },
		Workers:     a.workers,
		Resume:      a.resume,
		Force:       a.force,
		Strict:      a.strict,
		Software:    cli.ReadBuild().Software(),
	}
	return o, tok, nil
}

// parseMix reads token=0.5,sentence=0,document=0.5.
func parseMix(s string) ([masking.NumObjectives]float64, error) {
	var w [masking.NumObjectives]float64
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return w, fmt.Errorf("--mix %q: want NAME=WEIGHT pairs such as token=0.5,document=0.5", s)
		}
		o, err := masking.ParseObjective(strings.TrimSpace(name))
		if err != nil {
			return w, fmt.Errorf("--mix: %w", err)
		}
		if w[o], err = strconv.ParseFloat(strings.TrimSpace(val), 64); err != nil {
			return w, fmt.Errorf("--mix %q: weight of %s: %w", s, name, err)
		}
	}
	return w, nil
}

// startCPUProfile starts a CPU profile of the process into a new file at
// path; stop ends it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		return nil
	}, nil
}

// parseBuild parses the flags of build and plan (resume says whether the
// command is build, with --resume and --cpu-profile) into build options
// with a progress UI.
func parseBuild(name, help string, resume bool, args []string, stdout, stderr io.Writer) (pipeline.BuildOptions, *ui, *buildArgs, error) {
	fs := cli.FlagSet("glmprep "+name, help, stdout)
	a := &buildArgs{}
	addBuildFlags(fs, a)
	if resume {
		fs.BoolVar(&a.resume, "resume", false, "continue an interrupted build in --out from its last complete shard; the inputs and every flag not given come from its plan.json")
		fs.StringVar(&a.cpuProfile, "cpu-profile", "", "write a CPU profile of the build to `FILE`, for go tool pprof")
	}
	fs.BoolVar(&a.force, "force", false, "replace a plan or build already in --out")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return pipeline.BuildOptions{}, nil, nil, err
	}
	a.inputs = append(a.inputs, pos...)
	if a.resume && a.out != "" && !a.force {
		// --resume takes every flag not given, and the inputs when none
		// is given, from the plan in --out; a flag given with another
		// value than the plan's is refused (pipeline.Prepare names it).
		plan, err := pipeline.ReadPlan(a.out)
		switch {
		case err == nil:
			if err := fromPlan(fs, a, plan); err != nil {
				return pipeline.BuildOptions{}, nil, nil, err
			}
		case len(a.inputs) == 0 && errors.Is(err, os.ErrNotExist):
			return pipeline.BuildOptions{}, nil, nil, cli.Usagef(fs, "--resume: %s holds no %s to take the inputs and flags from (nothing to continue); give --input to start the build", a.out, pipeline.PlanName)
		case len(a.inputs) == 0:
			return pipeline.BuildOptions{}, nil, nil, err
		}
	}
	var missing []string
	if len(a.inputs) == 0 {
		missing = append(missing, "--input")
	}
	if a.out == "" {
		missing = append(missing, "--out")
	}
	if len(missing) > 0 {
		return pipeline.BuildOptions{}, nil, nil, cli.Missing(fs, missing...)
	}
	o, _, err := a.options(stderr)
	if err != nil {
		return o, nil, nil, err
	}
	if a.validFrac != 0 {
		if !(a.validFrac > 0 && a.validFrac < 1) {
			return o, nil, nil, cli.Usagef(fs, "--valid-fraction %v: want a fraction between 0 and 1, such as 0.01", a.validFrac)
		}
		if slices.Contains(o.Inputs, pipeline.Stdin) {
			return o, nil, nil, cli.Usagef(fs, "--valid-fraction reads the inputs once per split; standard input can be read once: save it to a file first")
		}
		if a.validOut == "" {
			a.validOut = filepath.Clean(a.out) + "-valid"
		}
		if filepath.Clean(a.validOut) == filepath.Clean(a.out) {
			return o, nil, nil, cli.Usagef(fs, "--valid-out %s is --out: the splits need two directories", a.validOut)
		}
		o.Config.ValidFraction, o.Config.Split = a.validFrac, "train"
	} else if a.validOut != "" {
		return o, nil, nil, cli.Usagef(fs, "--valid-out needs --valid-fraction")
	}
	u := newUI(stderr, a.quiet)
	o.Warn, o.Phase, o.Progress = u.warn, u.phase, u.progress
	return o, u, a, nil
}

func cmdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, ui, a, err := parseBuild("build", buildHelp, true, args, stdout, stderr)
	if err != nil {
		return err
	}
	if a.cpuProfile != "" {
		stop, err := startCPUProfile(a.cpuProfile)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	cmdline := cli.Command(append([]string{"build"}, args...), []string{"force"}, "resume")
	cli.OnInterrupt(ctx, func() string { return buildHint(o.Out, slices.Contains(o.Inputs, pipeline.Stdin), cmdline) })
	start := time.Now()
	res, err := pipeline.Build(ctx, o)
	ui.finish()
	if err != nil {
		return err
	}
	if !a.quiet {
		printSummary(stderr, o.Out, res, time.Since(start), a)
	}
	if ov, ok := validOptions(o, a); ok {
		cli.OnInterrupt(ctx, func() string {
			return fmt.Sprintf("the training split in %s is complete; the validation split: %s", o.Out, buildHint(ov.Out, false, cmdline))
		})
		start := time.Now()
		res, err := pipeline.Build(ctx, ov)
		ui.finish()
		if err != nil {
			return fmt.Errorf("the validation split (%s): %w", ov.Out, err)
		}
		if !a.quiet {
			printSummary(stderr, ov.Out, res, time.Since(start), a)
			fmt.Fprintf(stderr, "glmprep: the splits: %s (train) and %s (valid, %.3g of the records); train with: glmtrain train --data %s --eval-data %s …\n",
				o.Out, ov.Out, a.validFrac, o.Out, ov.Out)
		}
	}
	return nil
}

// validOptions are the options of a --valid-fraction build's validation
// split: the training split's, into --valid-out.
func validOptions(o pipeline.BuildOptions, a *buildArgs) (pipeline.BuildOptions, bool) {
	if o.Config.Split != "train" {
		return o, false
	}
	o.Out = a.validOut
	o.Config.Split = "valid"
	return o, true
}

// buildHint says what an interrupted build kept in out and how to go on.
func buildHint(out string, stdin bool, cmdline string) string {
	plan, err := pipeline.ReadPlan(out)
	if err != nil {
		return "nothing was kept (the plan was not written yet); run the same command again"
	}
	if stdin {
		return fmt.Sprintf("a build from standard input cannot be resumed; run it again with --force to replace what is in %s", out)
	}
	complete, shards := 0, 0
	for _, t := range plan.Tasks {
		if rec, err := pipeline.ReadTaskRecord(out, t.Index); err == nil && rec != nil {
			shards += len(rec.Shards)
			if rec.Complete {
				complete++
			}
		}
	}
	return fmt.Sprintf("kept %d of %d tasks complete and %d committed shards in %s; continue with:\n  %s", complete, len(plan.Tasks), shards, out, cmdline)
}

// ui is the progress bar on stderr (when it is a terminal) and the
// warnings printed above it.
type ui struct {
	w     io.Writer
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	quiet bool
	tty   bool
}

func newUI(w io.Writer, quiet bool) *ui {
	u := &ui{w: w, quiet: quiet}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		u.tty = true
	}
	return u
}

func (u *ui) phase(name string, total int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bar != nil {
		_ = u.bar.Finish()
		u.bar = nil
	}
	if u.quiet || !u.tty {
		return
	}
	u.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(u.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-9s", name)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseANSICodes(true),
	)
}

func (u *ui) progress(n int64) {
	u.mu.Lock()
	if u.bar != nil {
		_ = u.bar.Add64(n)
	}
	u.mu.Unlock()
}

func (u *ui) warn(msg string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bar != nil {
		_ = u.bar.Clear()
	}
	fmt.Fprintln(u.w, "glmprep: warning:", cli.Message(msg))
}

func (u *ui) finish() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bar != nil {
		_ = u.bar.Finish()
		u.bar = nil
	}
}

func printSummary(w io.Writer, dir string, res *pipeline.Result, took time.Duration, a *buildArgs) {
	s := res.Stats
	m := res.Manifest
	var inBytes int64
	for _, in := range m.Inputs {
		inBytes += max(in.Size, 0)
	}
	fmt.Fprintf(w, "glmprep: built %s in %.2fs", dir, took.Seconds())
	if res.TasksSkipped > 0 {
		fmt.Fprintf(w, " (resumed: %d of %d tasks were already complete)", res.TasksSkipped, res.TasksSkipped+res.TasksRun)
	}
	fmt.Fprintln(w)
	tok := fmt.Sprintf("%s (%s, model vocabulary %d)", m.Meta.Tokenizer, a.tokFamily, m.Meta.VocabSize)
	for _, n := range a.tokNotes {
		tok += "; " + n
	}
	fmt.Fprintf(w, "  tokenizer %s\n", tok)
	held := ""
	if n := s.Doc.Reasons[pipeline.HeldOut]; n > 0 {
		held = fmt.Sprintf(", %d in the other split", n)
	}
	fmt.Fprintf(w, "  read      %d inputs, %s; %d records → %d documents (%d blank, %d skipped%s)\n",
		len(m.Inputs), humanBytes(float64(inBytes)), s.Doc.Records, s.Doc.Documents, s.Doc.Reasons[pipeline.Blank], s.Skipped(), held)
	fmt.Fprintf(w, "  wrote     %d samples → %d rows in %d shards (%s); %d text tokens, %d source tokens ([CLS] and eos included), %d row tokens, longest row %d\n",
		s.Doc.Samples, m.Totals.Rows, m.Totals.Shards, humanBytes(float64(m.Totals.Bytes)), s.Doc.SourceTokens, m.Totals.SourceTokens, m.Totals.Tokens, m.Totals.MaxRowLen)
	var parts []string
	for o, st := range s.Row.Objectives {
		if st.Rows == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f%% of rows (masked %.1f%%)", masking.Objective(o),
			100*float64(st.Rows)/float64(max(s.Row.Rows, 1)), 100*float64(st.Masked)/float64(max(st.SourceTokens, 1))))
	}
	fmt.Fprintf(w, "  objectives %s\n", strings.Join(parts, ", "))
	if sk, rp, dm := s.Skipped(), s.Repaired(), s.Doc.TruncatedIn; sk > 0 || rp > 0 || dm > 0 {
		fmt.Fprintf(w, "  bad input %d records skipped, %d repaired, %d inputs damaged (see glmprep stats %s)\n", sk, rp, dm, dir)
	}
	if sec := took.Seconds(); sec > 0 && res.TasksRun > 0 {
		fmt.Fprintf(w, "  speed     %s/s of input, %.2fM text tokens/s\n", humanBytes(float64(inBytes)/sec), float64(s.Doc.SourceTokens)/sec/1e6)
	}
}

// planFlags are the values of the build flags that plan.json records, as
// the flags take them.
func planFlags(plan *pipeline.Plan) map[string]string {
	m, c := plan.Meta, plan.Config
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	// Options a plan cannot parse are refused when the plan is checked.
	opts, _ := tokenizer.ParseLoadOptions(m.TokenizerOptions)
	var mix []string
	for o, w := range m.Masking.Weights {
		mix = append(mix, fmt.Sprintf("%s=%s", masking.Objective(o), f(w)))
	}
	return map[string]string{
		"tokenizer": c.Tokenizer, "tokenizer-pattern": opts.Pattern, "lowercase": opts.Lowercase, "seq-len": strconv.Itoa(m.SeqLen), "mask-epochs": strconv.Itoa(m.MaskEpochs),
		"seed": strconv.FormatUint(m.Masking.Seed, 10), "mix": strings.Join(mix, ","), "task-mask": strconv.FormatBool(m.Masking.TaskMask),
		"mask-ratio": f(m.Masking.Ratio), "span-lambda": f(m.Masking.Lambda), "max-span": strconv.Itoa(m.Masking.MaxSpan),
		"doc-ratio": f(m.Masking.DocMin) + "," + f(m.Masking.DocMax), "suffix-prob": f(m.Masking.SuffixProb),
		"format": c.Format, "doc-boundary": c.DocBoundary, "text-field": c.TextField,
		"max-doc-bytes": strconv.Itoa(c.MaxDocBytes), "shard-rows": strconv.FormatInt(c.ShardRows, 10),
		"shard-bytes": strconv.FormatInt(c.ShardBytes, 10), "compression": c.Compression,
		"task-bytes": strconv.FormatInt(c.TaskBytes, 10), "allow-empty": strconv.FormatBool(c.AllowEmpty),
		"max-records": strconv.FormatInt(c.MaxRecords, 10), "json-path": c.JSONPath, "valid-fraction": f(c.ValidFraction),
	}
}

// fromPlan sets every build flag that the command line did not give to
// the plan's value, and the inputs to the plan's when none was given.
func fromPlan(fs *flag.FlagSet, a *buildArgs, plan *pipeline.Plan) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, v := range planFlags(plan) {
		if given[name] || fs.Lookup(name) == nil {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("%s: --%s %q: %w", filepath.Join(a.out, pipeline.PlanName), name, v, err)
		}
	}
	if len(a.inputs) == 0 {
		for _, in := range plan.Inputs {
			a.inputs = append(a.inputs, in.Path)
		}
	}
	return nil
}
