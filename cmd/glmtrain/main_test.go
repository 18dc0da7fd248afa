package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/loader"
)

func glmtrain(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	if err != nil {
		t.Logf("glmtrain %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), err
}

// buildShards builds shards with glmprep's pipeline (the same code as the
// glmprep command).
func buildShards(t *testing.T, out string, seqLen int, mix [3]float64, inputs ...string) {
	t.Helper()
	buildShardsWith(t, "bert-base-uncased", out, seqLen, mix, inputs...)
}

// buildShardsWith builds shards with the tokenizer spec and returns the
// model vocabulary size.
func buildShardsWith(t *testing.T, spec, out string, seqLen int, mix [3]float64, inputs ...string) int {
	t.Helper()
	tok, err := tokenizer.Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	mc := masking.DefaultConfig()
	mc.Weights = mix
	mc.IDs = tok.Special()
	mc.Seed = 1
	o := pipeline.BuildOptions{
		Inputs: inputs,
		Out:    out,
		Meta: sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: tok.Name(), TokenizerSHA256: tok.SHA256(),
			TokenizerFamily: tok.Family(), TokenizerOptions: tok.Options().String(),
			VocabSize: tok.ModelVocabSize(), Special: tok.Special(), SeqLen: seqLen, MaskEpochs: 1, Masking: mc},
		Config:      pipeline.DefaultConfig(),
		SentenceEnd: tok.SentenceEnds(),
		NewEncoder:  func() pipeline.Encoder { return tok.NewEncoder() },
	}
	if _, err := pipeline.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return tok.ModelVocabSize()
}

type metric map[string]json.RawMessage

func readMetrics(t *testing.T, out string) []metric {
	t.Helper()
	f, err := os.Open(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []metric
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m metric
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

// Training N steps straight and training N/2, stopping, resuming and
// training N/2 more give the same losses, bitwise.
func TestTrainResumeInfillPlot(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	common := []string{"--data", data, "--preset", "tiny", "--steps", "8", "--batch", "4", "--lr", "3e-3", "--quiet",
		"--backend", "cpu", "--checkpoint-every", "2"}
	straight := t.TempDir()
	if _, err := glmtrain(t, append([]string{"train", "--out", straight}, common...)...); err != nil {
		t.Fatal(err)
	}
	split := t.TempDir()
	if _, err := glmtrain(t, append([]string{"train", "--out", split, "--stop-at", "4"}, common...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := glmtrain(t, append([]string{"train", "--out", split}, common...)...); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("training into a run with checkpoints without --resume: %v", err)
	}
	if _, err := glmtrain(t, append([]string{"train", "--out", split, "--resume"}, common...)...); err != nil {
		t.Fatal(err)
	}
	a, b := readMetrics(t, straight), readMetrics(t, split)
	if len(a) != 8 || len(b) != 8 {
		t.Fatalf("%d and %d metric lines, want 8", len(a), len(b))
	}
	for i := range a {
		if string(a[i]["loss"]) != string(b[i]["loss"]) || string(a[i]["lr"]) != string(b[i]["lr"]) {
			t.Errorf("step %s: loss %s straight, %s resumed", a[i]["step"], a[i]["loss"], b[i]["loss"])
		}
	}

	// Infill with the trained model.
	out, err := glmtrain(t, "infill", "--ckpt", straight, "First Citizen : we are [MASK] .")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "First Citizen : we are [[") || !strings.Contains(out, "]] .") {
		t.Errorf("infill printed %q", out)
	}
	js, err := glmtrain(t, "infill", "--ckpt", straight, "--json", "--temperature", "1", "--seed", "3", "to be or [MASK] to be [sMASK]")
	if err != nil {
		t.Fatal(err)
	}
	var spans []map[string]any
	if err := json.Unmarshal([]byte(js), &spans); err != nil || len(spans) != 2 || spans[1]["blank"] != "sMASK" {
		t.Errorf("infill --json printed %q (%v)", js, err)
	}
	if _, err := glmtrain(t, "infill", "--ckpt", straight, "no blank here"); err == nil {
		t.Error("infill without a blank succeeded")
	}

	// Eval and plot.
	ev, err := glmtrain(t, "eval", "--ckpt", straight, "--data", data, "--batches", "3")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Loss   float64
		Tokens int
	}
	if json.Unmarshal([]byte(ev), &e); !(e.Loss > 0) || e.Tokens == 0 {
		t.Errorf("eval printed %q", ev)
	}
	png := filepath.Join(t.TempDir(), "loss.png")
	if _, err := glmtrain(t, "plot", straight, "--png", png); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(png)
	if err != nil || len(img) < 2000 || !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("plot wrote %d bytes: %v", len(img), err)
	}
}

func TestCLIErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--out", t.TempDir()}, "missing --data"},
		{[]string{"train", "--data", t.TempDir(), "--out", t.TempDir()}, "manifest"},
		{[]string{"infill", "--ckpt", t.TempDir(), "a [MASK]"}, "holds none"},
		{[]string{"nope"}, "unknown command"},
		{[]string{"infill", "--ckpt", t.TempDir(), "--max-tokens", "-1", "a [MASK]"}, "--max-tokens -1"},
		{[]string{"infill", "--ckpt", t.TempDir(), "--temperature", "NaN", "a [MASK]"}, "--temperature NaN"},
		{[]string{"infill", "--ckpt", t.TempDir(), "--top-k", "-1", "a [MASK]"}, "--top-k -1"},
		{[]string{"eval", "--ckpt", t.TempDir(), "--data", t.TempDir(), "--batches", "-1"}, "--batches -1"},
	} {
		if _, err := glmtrain(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("glmtrain %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// A flag given a value out of its range is an error naming it, never taken
// for the flag's default (a -1 or NaN --dropout, a -3 --warmup, a negative
// --layers or --threads were, silently).
func TestTrainFlagValues(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	for _, c := range []struct {
		flag, value, want string
	}{
		{"--dropout", "NaN", "dropout NaN"},
		{"--dropout", "-1", "dropout -1"},
		{"--warmup", "-3", "warmup -3"},
		{"--layers", "-2", "--layers -2"},
		{"--heads", "0", "--heads 0"},
		{"--threads", "-1", "--threads -1; want 0.."},
		{"--threads", "100000", "--threads 100000; want 0.."},
		{"--keep-checkpoints", "-1", "--keep-checkpoints -1; want ≥ 0"},
		// Not finite, or negative: --clip Inf trained, then failed writing
		// config.json; --weight-decay Inf gave NaN at step 1.
		{"--clip", "Inf", "--clip +Inf; want a finite number ≥ 0 (0: off)"},
		{"--clip", "NaN", "--clip NaN; want a finite number ≥ 0"},
		{"--clip", "-1", "--clip -1; want a finite number ≥ 0"},
		{"--weight-decay", "Inf", "--weight-decay +Inf; want a finite number ≥ 0"},
		{"--weight-decay", "-0.1", "--weight-decay -0.1; want a finite number ≥ 0"},
		{"--lr", "NaN", "--lr NaN; want a finite number ≥ 0"},
		{"--lr", "-Inf", "--lr -Inf; want a finite number ≥ 0"},
		{"--min-lr-ratio", "1.5", "--min-lr-ratio 1.5; want 0..1"},
		{"--min-lr-ratio", "NaN", "--min-lr-ratio NaN; want 0..1"},
		{"--dropout", "1", "--dropout 1; want 0 ≤ p < 1"},
		{"--steps", "0", "--steps 0; want ≥ 1"},
		{"--batch", "0", "--batch 0; want ≥ 1"},
		{"--accum", "-1", "--accum -1; want ≥ 1"},
		{"--log-every", "-1", "--log-every -1; want ≥ 0"},
		{"--stop-at", "-1", "--stop-at -1; want 0..2 (0: run all --steps)"},
		{"--stop-at", "3", "--stop-at 3; want 0..2"},
		// The bounds a checkpoint is read back with (eval and --resume
		// refused what these trained).
		{"--layers", "1025", "--layers 1025; want 1..1024"},
		{"--max-pos", "1048577", "--max-pos 1048577; want 1..1048576"},
		{"--hidden", "65537", "--hidden 65537; want 1..65536"},
		{"--heads", "3", "--preset tiny --heads 3: trainer: hidden 64 does not split into 3 heads"},
		// A library that does not open names the flag.
		{"--blas", "no-such-blas", "--blas no-such-blas: cpu: open no-such-blas"},
	} {
		out := t.TempDir()
		_, err := glmtrain(t, "train", "--data", data, "--preset", "tiny", "--steps", "2", "--batch", "2", "--backend", "cpu", "--quiet", "--out", out, c.flag, c.value)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v; want an error saying %q", c.flag, c.value, err, c.want)
		}
		if ck, _ := trainer.LatestCheckpoint(out); ck != "" {
			t.Errorf("%s %s: trained anyway (%s)", c.flag, c.value, ck)
		}
	}
}

// The mixture summary shows each build's share as the loader mixes it,
// and says so where that is not the share asked for (a weight below the
// mixture's resolution of 1/10000 gets one part).
func TestPrintMixtureShares(t *testing.T) {
	mix := []loader.MixEntry{{Dir: "small", Weight: 0.00001}, {Dir: "big", Weight: 1}, {Dir: "third", Weight: 0.5}}
	var ms []*sharding.Manifest
	for _, rows := range []int64{100, 5000, 2000} {
		m := &sharding.Manifest{}
		m.Totals.Rows, m.Meta.MaskEpochs = rows, 1
		ms = append(ms, m)
	}
	var b strings.Builder
	printMixture(&b, mix, ms, 10000, 10, 8)
	out := b.String()
	for _, want := range []string{"small  weight 0.0001", "(asked 6.67e-06: weights are mixed in parts of 1/10000, each build at least one)", "big    weight 0.667", "third  weight 0.333"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "asked") != 1 {
		t.Errorf("only the weight that was rounded up should say so:\n%s", out)
	}
}

// infill's text shows control characters as escapes, in the text given as
// in the spans generated, so neither can drive the terminal.
func TestPrintFilledEscapes(t *testing.T) {
	tok, err := tokenizer.Load("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.NewEncoder().Encode(nil, []byte("\x1b[2Jz\a"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := printFilled(&b, tok, []string{"a \x1b[31m red ", " bell\a \u202e"}, []trainer.Span{{Tokens: ids, Cut: true}}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), `a \x1b[31m red [[\x1b[2Jz\a…]] bell\a \u202e`+"\n"; got != want {
		t.Errorf("printFilled = %q; want %q", got, want)
	}
}

// --threads 0 is all the CPUs, and any count up to theirs is taken.
func TestTrainThreadsAccepted(t *testing.T) {
	for _, n := range []int{0, 1, runtime.NumCPU()} {
		f, err := parseTrainFlags([]string{"--data", "d", "--out", "o", "--threads", strconv.Itoa(n)}, io.Discard)
		if err != nil || f.threads != n {
			t.Errorf("--threads %d: %v", n, err)
		}
	}
}

// A model at the shape bounds trains, and its checkpoint is one eval loads:
// train and the checkpoint reader apply the same limits.
func TestTrainShapeAtBounds(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	if _, err := glmtrain(t, "train", "--data", data, "--preset", "tiny", "--layers", "1", "--hidden", "4", "--heads", "1",
		"--max-pos", strconv.Itoa(trainer.MaxPos), "--steps", "1", "--batch", "2", "--backend", "cpu", "--quiet", "--out", out); err != nil {
		t.Fatal(err)
	}
	line, err := glmtrain(t, "eval", "--ckpt", out, "--data", data, "--batches", "1", "--backend", "cpu")
	if err != nil || !strings.Contains(line, `"loss":`) {
		t.Errorf("eval of a model with max_pos %d: %v %s", trainer.MaxPos, err, line)
	}
}

// --stop-at stops after its step whether or not that step logs a line
// (it stopped only at a logged step: --stop-at 3 --log-every 5 ran to 5).
func TestStopAtBetweenLogLines(t *testing.T) {
	data, out := t.TempDir(), t.TempDir()
	buildShards(t, data, 64, [3]float64{0.4, 0.3, 0.3}, "../../testdata/demo/shakespeare.txt")
	common := []string{"train", "--data", data, "--preset", "tiny", "--steps", "6", "--batch", "2", "--quiet", "--backend", "cpu", "--log-every", "5", "--out", out}
	if _, err := glmtrain(t, append(common, "--stop-at", "3")...); err != nil {
		t.Fatal(err)
	}
	if ck, err := trainer.LatestCheckpoint(out); err != nil || filepath.Base(ck) != "ckpt-00000003" {
		t.Fatalf("after --stop-at 3: checkpoint %q (%v); want ckpt-00000003", ck, err)
	}
	if _, err := glmtrain(t, append(common, "--resume")...); err != nil {
		t.Fatal(err)
	}
	if ck, _ := trainer.LatestCheckpoint(out); filepath.Base(ck) != "ckpt-00000006" {
		t.Errorf("after --resume: checkpoint %q; want ckpt-00000006", ck)
	}
}
