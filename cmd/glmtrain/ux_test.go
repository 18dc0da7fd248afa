package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/internal/testhooks"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
	"github.com/glmkit/glmkit/trainer/cpu"
	"github.com/glmkit/glmkit/trainer/loader"
)

// Tests of issue 16 (what a new user trips over), through the glmtrain
// binary (built with the test hooks) where the behaviour is the
// command line's.

// glmtrainBin runs glmtrain as a process (stderr a pipe, not a terminal)
// and returns its stdout, stderr and exit status. shell, when not "",
// is run by sh before it (umask 002).
func glmtrainBin(t *testing.T, shell string, args ...string) (string, string, int) {
	t.Helper()
	self, err := hookedGlmtrain.Path()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	if shell != "" {
		cmd = exec.Command("sh", append([]string{"-c", shell + ` && exec "$0" "$@"`, self}, args...)...)
	}
	out, stderr, code, err := testhooks.Output(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out, stderr, code
}

// The README lists glmtrain's commands as its help does.
func TestREADMECommands(t *testing.T) {
	glmtest.SameUsage(t, "glmtrain", cli.Usage("glmtrain", title, commands))
}

func TestHelpAndUsage(t *testing.T) {
	for _, cmd := range []string{"train", "eval", "infill", "plot", "doctor"} {
		out, stderr, code := glmtrainBin(t, "", cmd, "--help")
		_, examples, ok := strings.Cut(out, "\nExamples:\n")
		if code != 0 || stderr != "" || !ok || !strings.Contains(examples, "  glmtrain "+cmd) || strings.HasSuffix(strings.TrimSpace(out), "Flags:") {
			t.Errorf("glmtrain %s --help: exit %d, stderr %q, no examples or an empty Flags:\n%s", cmd, code, stderr, out)
		}
		if _, flags, ok := strings.Cut(out, "\nFlags:\n"); ok {
			for _, entry := range regexp.MustCompile(`(?m)^  --`).Split(flags, -1) {
				if strings.Count(entry, "default") > 1 {
					t.Errorf("glmtrain %s --help: a flag states two defaults: %q", cmd, entry)
				}
			}
		}
	}
	b := cli.ReadBuild()
	if out, _, code := glmtrainBin(t, "", "--version"); code != 0 || out != "glmtrain "+b.String()+"\n" {
		t.Errorf("glmtrain --version: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--out", "x"}, "train: missing --data (see glmtrain train --help)"},
		{[]string{"train"}, "missing --data and --out"},
		{[]string{"train", "--data", "a", "--out", "x", "--learning-rate", "1"}, "did you mean --lr?"},
		{[]string{"train", "--data", "a", "--out", "x", "--stpes", "1"}, "did you mean --steps?"},
		{[]string{"train", "--data", "a=0.7", "--data", "b", "--out", "x"}, "give every build a weight (DIR=WEIGHT) or none"},
		{[]string{"train", "--data", "a", "--data", "a", "--out", "x"}, "a is listed twice"},
		{[]string{"eval", "--data", "a"}, "eval: missing --ckpt"},
		{[]string{"infill", "--ckpt", "x"}, "missing the text to fill in"},
		{[]string{"plot"}, "plot: missing OUT"},
		{[]string{"tran"}, `did you mean "train"?`},
	} {
		out, stderr, code := glmtrainBin(t, "", tc.args...)
		if code != 2 || out != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("glmtrain %q: exit %d, stdout %q, stderr %q; want one line with %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

// Off a terminal, training logs a line every --log-every steps and every
// evaluation as it comes; a checkpoint records the binary's version and
// the run's flags; files and directories follow the umask.
func TestTrainLogVersionUmask(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	out := filepath.Join(t.TempDir(), "run")
	_, stderr, code := glmtrainBin(t, "umask 002", "train", "--data", data, "--eval-data", data, "--preset", "tiny", "--steps", "6", "--batch", "4",
		"--backend", "cpu", "--threads", "1", "--log-every", "2", "--eval-every", "3", "--eval-batches", "2", "--checkpoint-every", "3", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var steps, evals []string
	for _, m := range regexp.MustCompile(`(?m)^glmtrain: step (\d+)/6  loss [0-9.]+  lr [0-9.e-]+  grad norm [0-9.e+-]+  \d+ tokens/s  elapsed \d+s  ETA \d+s$`).FindAllStringSubmatch(stderr, -1) {
		steps = append(steps, m[1])
	}
	for _, m := range regexp.MustCompile(`(?m)^glmtrain: step (\d+)/6  eval loss [0-9.]+  ppl [0-9.]+  on \d+ tokens`).FindAllStringSubmatch(stderr, -1) {
		evals = append(evals, m[1])
	}
	if fmt.Sprint(steps) != "[2 3 4 6]" || fmt.Sprint(evals) != "[3 6]" || !strings.Contains(stderr, "glmtrain: checkpoint "+trainer.CheckpointDir(out, 3)) {
		t.Errorf("log lines at steps %v (want 2 3 4 6: every 2nd step and the evaluated ones), eval lines at %v (want 3 6):\n%s", steps, evals, stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("glmtrain: data %s: ", data)) || !strings.Contains(stderr, "6 steps × 4 rows = ") {
		t.Errorf("no data line:\n%s", stderr)
	}
	ck := trainer.CheckpointDir(out, 6)
	_, tc, err := trainer.ReadCheckpointConfig(ck)
	if err != nil {
		t.Fatal(err)
	}
	if b := cli.ReadBuild(); tc.Software["glmkit"] != b.Version || tc.Software["go"] != b.Go || tc.Run["--batch"] != "4" || tc.Run["--steps"] != "6" || tc.Run["tokenizer_sha256"] == "" {
		t.Errorf("the checkpoint records software %v, run %v", tc.Software, tc.Run)
	}
	for _, p := range []string{out, ck, filepath.Join(ck, "model.safetensors"), filepath.Join(ck, "trainer_state.json"), filepath.Join(out, "metrics.jsonl"), filepath.Join(out, dataFile)} {
		st, err := os.Stat(p)
		want := os.FileMode(0o664)
		if st != nil && st.IsDir() {
			want = 0o775
		}
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v under umask 002, want %v (%v)", p, st.Mode().Perm(), want, err)
		}
	}
}

// --data repeated and --data a,b both mix; the mixture is printed
// normalised; the weights given either way train the same.
func TestDataMixture(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	buildShards(t, a, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	buildShards(t, b, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/wikitext.txt")
	common := []string{"train", "--preset", "tiny", "--steps", "3", "--batch", "4", "--backend", "cpu", "--threads", "1", "--quiet"}
	losses := map[string][]string{}
	for name, data := range map[string][]string{
		"repeated": {"--data", a + "=7", "--data", b + "=3"},
		"list":     {"--data", a + "=0.7," + b + "=0.3"},
		"equal":    {"--data", a + "," + b},
	} {
		out := t.TempDir()
		_, stderr, code := glmtrainBin(t, "", append(append(common, data...), "--out", out)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		wa, wb := "0.700", "0.300"
		if name == "equal" {
			wa, wb = "0.500", "0.500"
		}
		if !strings.Contains(stderr, "a mixture of 2 builds") || !regexp.MustCompile(regexp.QuoteMeta(a)+` +weight `+wa+` +\d+ rows`).MatchString(stderr) ||
			!regexp.MustCompile(regexp.QuoteMeta(b)+` +weight `+wb).MatchString(stderr) {
			t.Errorf("%s: the mixture is not printed with weights %s, %s:\n%s", name, wa, wb, stderr)
		}
		for _, m := range readMetrics(t, out) {
			losses[name] = append(losses[name], string(m["loss"]))
		}
	}
	if fmt.Sprint(losses["repeated"]) != fmt.Sprint(losses["list"]) || fmt.Sprint(losses["repeated"]) == fmt.Sprint(losses["equal"]) {
		t.Errorf("losses: repeated %v, list %v, equal %v", losses["repeated"], losses["list"], losses["equal"])
	}
	// --max-pos below the rows' positions is refused before training.
	out := t.TempDir()
	if _, stderr, code := glmtrainBin(t, "", append(common, "--data", a, "--max-pos", "40", "--out", out)...); code != 1 || !strings.Contains(stderr, "--max-pos 40: the shards' rows have positions up to their seq_len, 64") {
		t.Errorf("--max-pos 40 on seq_len 64: exit %d: %s", code, stderr)
	}
}

// --resume refuses a changed flag that breaks exact resume, naming it,
// unless --allow-changes; --seed never; a finished run says it is
// complete.
func TestResumeChecks(t *testing.T) {
	data := t.TempDir()
	buildShards(t, data, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	out := t.TempDir()
	common := []string{"train", "--data", data, "--preset", "tiny", "--batch", "4", "--lr", "3e-3", "--backend", "cpu", "--threads", "1", "--quiet", "--out", out}
	if _, stderr, code := glmtrainBin(t, "", append(common, "--steps", "4", "--stop-at", "2")...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--steps", "4", "--lr", "1e-3"}, 1, []string{"  --lr: 0.003 then, 0.001 now", "--allow-changes"}},
		{[]string{"--steps", "8", "--batch", "8"}, 1, []string{"  --steps: 4 then, 8 now", "  --batch: 4 then, 8 now"}},
		{[]string{"--steps", "4", "--dropout", "0"}, 1, []string{"  --dropout: 0.1 then, 0 now"}},
		{[]string{"--steps", "4", "--seed", "9", "--allow-changes"}, 1, []string{"cannot change", "  --seed: 1234 then, 9 now"}},
		{[]string{"--steps", "4", "--hidden", "128", "--allow-changes"}, 1, []string{"cannot change", "  --hidden: 64 then, 128 now"}},
		{[]string{"--steps", "4", "--eval-every", "1", "--log-every", "3", "--checkpoint-every", "1"}, 0, nil},
		{[]string{"--steps", "4"}, 0, []string{"is already complete: step 4 of --steps 4"}},
		{[]string{"--steps", "6", "--lr", "1e-3", "--allow-changes"}, 0, []string{"--allow-changes: continuing", "  --lr: 0.003 then, 0.001 now", "resuming from " + trainer.CheckpointDir(out, 4)}},
	} {
		stdout, stderr, code := glmtrainBin(t, "", append(append(common, "--resume"), tc.args...)...)
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("--resume %v: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
		if code != tc.code {
			t.Errorf("--resume %v: exit %d, want %d: %s", tc.args, code, tc.code, stderr)
		}
		if strings.Contains(strings.Join(tc.want, ""), "already complete") && stdout != "step 4: complete; checkpoint "+trainer.CheckpointDir(out, 4)+"\n" {
			t.Errorf("a finished run printed %q", stdout)
		}
	}
}

// eval refuses shards of another tokenizer than the checkpoint's, from the
// checkpoint's record or, for an older checkpoint, data.json beside it.
func TestEvalChecksTokenizer(t *testing.T) {
	bert, gpt := t.TempDir(), t.TempDir()
	buildShards(t, bert, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	buildShardsWith(t, "gpt2", gpt, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	out := t.TempDir()
	if _, stderr, code := glmtrainBin(t, "", "train", "--data", bert, "--preset", "tiny", "--steps", "1", "--batch", "2", "--backend", "cpu", "--quiet", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := glmtrainBin(t, "", "eval", "--ckpt", out, "--data", bert, "--batches", "1", "--backend", "cpu"); code != 0 {
		t.Errorf("eval on the training tokenizer: exit %d: %s", code, stderr)
	}
	want := "were made with tokenizer gpt2"
	if _, stderr, code := glmtrainBin(t, "", "eval", "--ckpt", out, "--data", gpt, "--backend", "cpu"); code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "config.json") {
		t.Errorf("eval on gpt2 shards: exit %d: %s", code, stderr)
	}
	ck := trainer.CheckpointDir(out, 1)
	cfg, _ := os.ReadFile(filepath.Join(ck, "config.json"))
	var raw map[string]any
	if err := json.Unmarshal(cfg, &raw); err != nil {
		t.Fatal(err)
	}
	// The same vocabulary read as another tokenization (cased) in
	// training: the shards' ids mean other text.
	run := raw["train"].(map[string]any)["run"].(map[string]any)
	if fam := run["tokenizer_family"]; fam != "wordpiece" {
		t.Errorf("the run record's tokenizer_family: %v; want wordpiece", fam)
	}
	const cased = "wordpiece/lowercase=false,strip_accents=false,tokenize_chinese_chars=true"
	run["tokenizer_family"] = cased
	b, _ := json.Marshal(raw)
	os.WriteFile(filepath.Join(ck, "config.json"), b, 0o644)
	if _, stderr, code := glmtrainBin(t, "", "eval", "--ckpt", ck, "--data", bert, "--backend", "cpu"); code != 1 || !strings.Contains(stderr, "trained with it as "+cased) {
		t.Errorf("eval on shards of the same tokenizer read as another tokenization: exit %d: %s", code, stderr)
	}
	// An older checkpoint: no run record in config.json.
	delete(raw["train"].(map[string]any), "run")
	b, _ = json.Marshal(raw)
	os.WriteFile(filepath.Join(ck, "config.json"), b, 0o644)
	if _, stderr, code := glmtrainBin(t, "", "eval", "--ckpt", ck, "--data", gpt, "--backend", "cpu"); code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, dataFile) {
		t.Errorf("eval of an older checkpoint on gpt2 shards: exit %d: %s", code, stderr)
	}
	// infill warns where the tokenizer reads otherwise than in training
	// (older builds recorded a cased vocab.txt as plain wordpiece, so it
	// cannot refuse).
	dataJSON := filepath.Join(out, dataFile)
	orig := glmtest.ReadFile(t, dataJSON)
	os.WriteFile(dataJSON, bytes.Replace(orig, []byte(`"tokenizer_family": "wordpiece"`), []byte(`"tokenizer_family": "`+cased+`"`), 1), 0o644)
	if _, stderr, code := glmtrainBin(t, "", "infill", "--ckpt", ck, "--max-tokens", "2", "The [MASK] of it."); code != 0 || !strings.Contains(stderr, "warning: tokenizer bert-base-uncased reads here as wordpiece, the model was trained on it as "+cased) {
		t.Errorf("infill with a tokenizer that reads otherwise: exit %d: %s", code, stderr)
	}
	os.WriteFile(dataJSON, orig, 0o644)
	os.Remove(filepath.Join(out, dataFile))
	if _, stderr, code := glmtrainBin(t, "", "eval", "--ckpt", ck, "--data", bert, "--backend", "cpu"); code != 1 || !strings.Contains(stderr, "cannot tell which tokenizer") {
		t.Errorf("eval without a record of the tokenizer: exit %d: %s", code, stderr)
	}
}

// forcedModel saves, under out, a checkpoint of a tiny model that always
// predicts id next (the final LayerNorm's output is its bias, a row of
// ones, and only next's embedding row is not zero), with data.json for the
// tokenizer spec.
func forcedModel(t *testing.T, spec, out string, next func(tok *tokenizer.Tokenizer) int32) {
	t.Helper()
	tok, err := tokenizer.Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	be, err := cpu.New[float32](cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	mc, _ := trainer.Preset("tiny", tok.ModelVocabSize())
	m, err := trainer.NewModel(mc, be)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	params, err := m.ParamsHost()
	if err != nil {
		t.Fatal(err)
	}
	clear(params)
	id := next(tok)
	for _, tn := range m.Tensors() {
		switch tn.Name {
		case "transformer.final_layernorm.bias":
			for i := range tn.Size() {
				params[tn.Offset+i] = 1
			}
		case "word_embeddings.weight":
			for i := range mc.Hidden {
				params[tn.Offset+int(id)*mc.Hidden+i] = 1
			}
		}
	}
	if err := m.SetParams(params); err != nil {
		t.Fatal(err)
	}
	tc := trainer.DefaultTrainConfig(1)
	tc.Out = out
	if err := trainer.SaveCheckpoint(trainer.CheckpointDir(out, 1), m, nil, &tc, trainer.TrainerState{Step: 1}); err != nil {
		t.Fatal(err)
	}
	meta := sharding.Meta{FormatVersion: sharding.FormatVersion, Tokenizer: tok.Name(), TokenizerSHA256: tok.SHA256(),
		VocabSize: tok.ModelVocabSize(), Special: tok.Special(), SeqLen: 64, MaskEpochs: 1}
	b, _ := json.Marshal(meta)
	os.WriteFile(filepath.Join(out, dataFile), b, 0o644)
}

// infill marks a span cut by --max-tokens, prints an empty span empty
// (also in JSON), and takes [mask] in any case for a tokenizer that folds
// case, but refuses it for a cased one.
func TestInfillSpans(t *testing.T) {
	eop, the := t.TempDir(), t.TempDir()
	forcedModel(t, "bert-base-uncased", eop, func(tok *tokenizer.Tokenizer) int32 { return tok.Special().EOP })
	forcedModel(t, "bert-base-uncased", the, func(tok *tokenizer.Tokenizer) int32 { return 1996 }) // "the"
	for _, tc := range []struct {
		ckpt string
		args []string
		want string
	}{
		{eop, []string{"a [MASK] b"}, "a [[]] b\n"},
		{eop, []string{"--json", "a [MASK] b"}, `[{"blank":"MASK","ids":[],"text":"","cut":false}]` + "\n"},
		{the, []string{"--max-tokens", "2", "a [MASK] b"}, "a [[the the…]] b\n"},
		{the, []string{"--max-tokens", "2", "--json", "a [MASK] b"}, `[{"blank":"MASK","ids":[1996,1996],"text":"the the","cut":true}]` + "\n"},
		{eop, []string{"one [mask] two [Smask] three [GMASK]"}, "one [[]] two [[]] three [[]]\n"},
	} {
		stdout, stderr, code := glmtrainBin(t, "", append([]string{"infill", "--ckpt", tc.ckpt}, tc.args...)...)
		if code != 0 || stdout != tc.want {
			t.Errorf("infill %v: exit %d, %q, want %q (%s)", tc.args, code, stdout, tc.want, stderr)
		}
		if strings.Contains(tc.want, "…") && !strings.Contains(stderr, "1 of 1 spans reached --max-tokens 2") {
			t.Errorf("infill %v: no note of the cut span: %q", tc.args, stderr)
		}
	}
	cased := t.TempDir()
	forcedModel(t, "gpt2", cased, func(tok *tokenizer.Tokenizer) int32 { return tok.Special().EOP })
	if stdout, stderr, code := glmtrainBin(t, "", "infill", "--ckpt", cased, "a [MASK] b"); code != 0 || stdout != "a [[]] b\n" {
		t.Errorf("gpt2 infill: exit %d, %q %s", code, stdout, stderr)
	}
	if _, stderr, code := glmtrainBin(t, "", "infill", "--ckpt", cased, "a [mask] b [MASK]"); code != 1 || !strings.Contains(stderr, "[mask] is not a blank for tokenizer gpt2, which is case-sensitive") {
		t.Errorf("gpt2 infill of [mask]: exit %d, %s", code, stderr)
	}
}

// plot: round ticks, a single evaluation point visible, and nothing drawn
// at the image's border (the legend and labels inside it).
func TestPlotLayout(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{{0, 800, "0 200 400 600 800"}, {1, 20000, "5000 10000 15000 20000"}, {4.13, 13.9, "6 8 10 12"}, {4.61, 5.37, "4.8 5.0 5.2"}, {0, 20, "0 5 10 15 20"}, {1, 3, "1.0 1.5 2.0 2.5 3.0"}} {
		var labels []string
		for _, tk := range (roundTicks{}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if strings.Join(labels, " ") != tc.want {
			t.Errorf("ticks of [%v, %v]: %v, want %s", tc.lo, tc.hi, labels, tc.want)
		}
	}
	out := t.TempDir()
	var b strings.Builder
	for s := 1; s <= 300; s++ {
		fmt.Fprintf(&b, `{"step": %d, "loss": %g}`+"\n", s, 4+6.0/float64(s))
		if s == 20 { // one evaluation, early: its point lies left of the legend
			fmt.Fprintf(&b, `{"step": 20, "loss": 4.3, "eval_loss": 9, "eval_loss_token": 8.5, "eval_loss_document": 9.5}`+"\n")
		}
	}
	os.WriteFile(filepath.Join(out, "metrics.jsonl"), []byte(b.String()), 0o644)
	decode := func(path string) image.Image {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// A narrow image: nothing may touch its border.
	narrow := filepath.Join(out, "narrow.png")
	if stdout, stderr, code := glmtrainBin(t, "", "plot", out, "--png", narrow, "--width", "3in", "--height", "2.5in"); code != 0 || !strings.Contains(stdout, "4 curves") {
		t.Fatalf("plot: exit %d, %s %s", code, stdout, stderr)
	}
	img := decode(narrow)
	bd := img.Bounds()
	white := func(c color.Color) bool { r, g, b, _ := c.RGBA(); return r > 0xf000 && g > 0xf000 && b > 0xf000 }
	for x := bd.Min.X; x < bd.Max.X; x++ {
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			if (x < bd.Min.X+3 || x >= bd.Max.X-3 || y < bd.Min.Y+3 || y >= bd.Max.Y-3) && !white(img.At(x, y)) {
				t.Fatalf("pixel (%d, %d) at the image's border is drawn: something sticks out of the image", x, y)
			}
		}
	}
	// The default size: the evaluation's single point is drawn (in curve
	// 0's colour, eval_loss sorting first) in the left third, away from the
	// legend.
	if _, stderr, code := glmtrainBin(t, "", "plot", out); code != 0 {
		t.Fatalf("plot: %s", stderr)
	}
	img = decode(filepath.Join(out, "loss.png"))
	bd = img.Bounds()
	n := 0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Min.X+bd.Dx()/3; x++ {
			if near(img.At(x, y), plotColor(0)) {
				n++
			}
		}
	}
	if n < 10 {
		t.Errorf("%d pixels of the eval curve's colour in the left third: its single point is not drawn", n)
	}
}

func near(a, b color.Color) bool {
	r1, g1, b1, _ := a.RGBA()
	r2, g2, b2, _ := b.RGBA()
	d := func(x, y uint32) uint32 {
		if x > y {
			return x - y
		}
		return y - x
	}
	return d(r1, r2) < 0x1000 && d(g1, g2) < 0x1000 && d(b1, b2) < 0x1000
}

// --eval-data whose rows have more positions than the model is refused
// before the first step, naming both lengths; it trained to the end and
// then failed at the evaluation, with no checkpoint of the steps it spent.
func TestTrainRefusesLongerEvalData(t *testing.T) {
	data, long := t.TempDir(), t.TempDir()
	buildShards(t, data, 64, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	buildShards(t, long, 256, [3]float64{0.5, 0, 0.5}, "../../testdata/demo/shakespeare.txt")
	out := t.TempDir()
	_, err := glmtrain(t, "train", "--data", data, "--eval-data", long, "--preset", "tiny", "--steps", "2", "--batch", "2",
		"--backend", "cpu", "--threads", "1", "--quiet", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "--eval-data "+long+" has seq_len 256") || !strings.Contains(err.Error(), "--max-pos 256") {
		t.Fatalf("train with --eval-data of seq_len 256 on a max_pos 128 model: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "metrics.jsonl")); !os.IsNotExist(err) {
		t.Errorf("the refused run trained: metrics.jsonl %v", err)
	}
	// With the positions given, the same run trains and evaluates.
	if _, err := glmtrain(t, "train", "--data", data, "--eval-data", long, "--preset", "tiny", "--max-pos", "256", "--steps", "1", "--batch", "2",
		"--eval-batches", "1", "--backend", "cpu", "--threads", "1", "--quiet", "--out", t.TempDir()); err != nil {
		t.Errorf("--max-pos 256: %v", err)
	}
}

// A model whose data had no task masks (--task-mask=false) never trained
// the [sMASK] and [gMASK] embeddings: infill reads those markers as
// [MASK], keeping a final [gMASK]'s continuation (no eos); it fed the
// untrained ids and printed what they gave. With task masks they stay.
func TestInfillWithoutTaskMasks(t *testing.T) {
	tok, err := tokenizer.Load("bert-base-uncased")
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Special()
	for _, taskMask := range []bool{false, true} {
		mc := masking.DefaultConfig()
		mc.TaskMask = taskMask
		meta := sharding.Meta{Tokenizer: tok.Name(), Special: ids, Masking: mc}
		q, err := newInfillQuery(tok, meta, "a [MASK] b [sMASK] c [gMASK]")
		if err != nil {
			t.Fatal(err)
		}
		want := []int32{ids.Mask, ids.SMask, ids.GMask}
		if !taskMask {
			want = []int32{ids.Mask, ids.Mask, ids.Mask}
		}
		var got []int32
		for _, id := range q.ids {
			if id == ids.Mask || id == ids.SMask || id == ids.GMask {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("task mask %v: blanks %v, want %v", taskMask, got, want)
		}
		if q.ids[len(q.ids)-1] == ids.EOS {
			t.Errorf("task mask %v: a text ending in [gMASK] got an eos", taskMask)
		}
	}
}

// data.json of a mixture is what the model saw: the longest seq_len, task
// masks where any build had them (so infill keeps [gMASK] for a model that
// trained on it), and no mixture of two tokenizations.
func TestMixMeta(t *testing.T) {
	tok, err := tokenizer.Load("bert-base-uncased")
	if err != nil {
		t.Fatal(err)
	}
	build := func(seqLen int, taskMask bool) *sharding.Manifest {
		mc := masking.DefaultConfig()
		mc.TaskMask = taskMask
		return &sharding.Manifest{Meta: sharding.Meta{Tokenizer: tok.Name(), TokenizerSHA256: tok.SHA256(), TokenizerFamily: tok.Family(),
			VocabSize: tok.ModelVocabSize(), Special: tok.Special(), SeqLen: seqLen, Masking: mc}}
	}
	mix := []loader.MixEntry{{Dir: "plain"}, {Dir: "task"}}
	meta, err := mixMeta(mix, []*sharding.Manifest{build(128, false), build(512, true)})
	if err != nil {
		t.Fatal(err)
	}
	if meta.SeqLen != 512 || !meta.Masking.TaskMask || plainMasks(meta) {
		t.Errorf("seq_len %d, task masks %v: want 512 and the model's [sMASK] and [gMASK] kept", meta.SeqLen, meta.Masking.TaskMask)
	}
	cased := build(128, true)
	cased.Meta.TokenizerFamily = "wordpiece/lowercase=false,strip_accents=false,tokenize_chinese_chars=true"
	if _, err := mixMeta(mix, []*sharding.Manifest{build(128, true), cased}); err == nil || !strings.Contains(err.Error(), "tokenizer_family") {
		t.Errorf("a mixture of a vocab.txt read cased and uncased: %v", err)
	}
}
