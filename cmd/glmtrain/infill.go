package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

const infillHelp = `Usage: glmtrain infill --ckpt DIR [flags] "text with [MASK] blanks"

Fills every blank of the text with a trained model, GLM's way: the text is
Part A ([CLS] text eos, bidirectional), and each blank is generated from
<|startofpiece|> at the blank's position until <|endofpiece|>, later blanks
seeing the earlier ones' text. [MASK] asks for a short span; [sMASK] for a
sentence and [gMASK] for a long generation when the model was trained with
task masks (a text ending in [gMASK] continues it); a model trained without
them (--task-mask=false) reads both as [MASK]. With a tokenizer that
lower-cases (bert-base-uncased), the markers may be written in any case
([mask]); with a cased one (gpt2) only as above, and a marker in another case
is refused, not read as text.

Prints the completed text, with each filled span in [[double brackets]]; a
span the model did not end before --max-tokens is printed [[text…]] (and
"cut": true with --json); an empty span is [[]] (with --json "ids": []).

Examples:
  glmtrain infill --ckpt out/run "The [MASK] of the river was [MASK] ."
  glmtrain infill --ckpt out/run --temperature 0.8 --top-k 40 --seed 7 "It was a dark and [gMASK]"
`

// blankREs match the blank markers: as written, and in any case.
func blankREs() (exact, anyCase *regexp.Regexp) {
	return regexp.MustCompile(`\[(MASK|sMASK|gMASK)\]`), regexp.MustCompile(`(?i)\[(MASK|sMASK|gMASK)\]`)
}

// lowercases reports whether the tokenizer folds case, by encoding the
// markers' words both ways.
func lowercases(tok *tokenizer.Tokenizer) (bool, error) {
	enc := tok.NewEncoder()
	a, err := enc.Encode(nil, []byte("MASK sMASK gMASK Mask"))
	if err != nil {
		return false, err
	}
	b, err := enc.Encode(nil, []byte("mask smask gmask mask"))
	if err != nil {
		return false, err
	}
	return slices.Equal(a, b), nil
}

func cmdInfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseInfillFlags(args, stdout)
	if err != nil {
		return err
	}
	dir, err := resolveCheckpoint(f.ckpt)
	if err != nil {
		return err
	}
	tok, meta, spec, err := loadInfillTokenizer(dir, f.tokenizer)
	if err != nil {
		return err
	}
	if fam := meta.TokenizerFamily; !sharding.SameFamily(tok.Family(), fam) {
		// A warning, not an error: glmkit before this check recorded a
		// cased vocab.txt as plain "wordpiece".
		fmt.Fprintf(stderr, "glmtrain: warning: tokenizer %s reads here as %s, the model was trained on it as %s: the blanks' text may tokenize otherwise than in training (a tokenizer_config.json beside it missing or other here?)\n", spec, tok.Family(), fam)
	}
	q, err := newInfillQuery(tok, meta, f.text)
	if err != nil {
		return err
	}
	if plainMasks(meta) && (slices.Contains(q.kinds, "sMASK") || slices.Contains(q.kinds, "gMASK")) {
		fmt.Fprintf(stderr, "glmtrain: %s was trained without task masks (every blank [MASK], as GLM-Base/Large): [sMASK] and [gMASK] are read as [MASK]\n", dir)
	}
	model, closeModel, err := openModel(dir, "auto", stderr)
	if err != nil {
		return err
	}
	defer closeModel()
	if mc := model.Config(); mc.Vocab < tok.ModelVocabSize() {
		return fmt.Errorf("checkpoint %s has a vocabulary of %d; tokenizer %s needs %d", dir, mc.Vocab, spec, tok.ModelVocabSize())
	}
	ids := meta.Special
	limit := model.InfillLimit(f.maxTokens)
	bar := newInfillBar(stderr, len(q.kinds), limit)
	spans, err := model.Infill(ctx, q.ids, trainer.InfillOptions{
		Blanks: []int32{ids.Mask, ids.SMask, ids.GMask}, SOP: ids.SOP, EOP: ids.EOP,
		MaxTokens: f.maxTokens, Temperature: f.temperature, TopK: f.topK, Vocab: tok.VocabSize(), Seed: f.seed,
		OnToken: bar.token,
	})
	bar.finish()
	if err != nil {
		return err
	}
	cut := 0
	for _, sp := range spans {
		if sp.Cut {
			cut++
		}
	}
	if cut > 0 && limit < f.maxTokens {
		fmt.Fprintf(stderr, "glmtrain: %d of %d spans reached %d tokens, the most the model's %d positions allow (under --max-tokens %d), before the model ended them (marked …)\n", cut, len(spans), limit, model.Config().MaxPos, f.maxTokens)
	} else if cut > 0 {
		fmt.Fprintf(stderr, "glmtrain: %d of %d spans reached --max-tokens %d before the model ended them (marked …)\n", cut, len(spans), f.maxTokens)
	}
	if f.json {
		return printSpansJSON(stdout, tok, q.kinds, spans)
	}
	return printFilled(stdout, tok, q.pieces, spans)
}

// infillBar shows a long infill's progress on a terminal: the blank being
// filled, and its tokens of at most limit. Off a terminal it draws nothing.
type infillBar struct {
	bar   *progressbar.ProgressBar
	limit int
}

func newInfillBar(stderr io.Writer, blanks, limit int) *infillBar {
	b := &infillBar{limit: limit}
	if w, ok := stderr.(*os.File); ok && term.IsTerminal(int(w.Fd())) {
		b.bar = progressbar.NewOptions(blanks*limit, progressbar.OptionSetWriter(w),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionSetDescription("filling"))
	}
	return b
}

// token is the OnToken hook (nil off a terminal).
func (b *infillBar) token(blank, blanks, tokens int) {
	if b.bar == nil {
		return
	}
	b.bar.Describe(fmt.Sprintf("blank %d of %d", min(blank+1, blanks), blanks))
	_ = b.bar.Set(blank*b.limit + tokens)
}

func (b *infillBar) finish() {
	if b.bar != nil {
		_ = b.bar.Clear()
	}
}

// infillFlags are infill's command line, parsed and checked.
type infillFlags struct {
	ckpt, tokenizer string
	temperature     float64
	topK, maxTokens int
	seed            uint64
	json            bool
	text            string // the arguments, joined by spaces
}

// parseInfillFlags parses infill's arguments: a usage error without
// --ckpt or the text.
func parseInfillFlags(args []string, stdout io.Writer) (*infillFlags, error) {
	var f infillFlags
	fs := cli.FlagSet("glmtrain infill", infillHelp, stdout)
	fs.StringVar(&f.ckpt, "ckpt", "", "checkpoint directory, or a training OUT for its newest")
	fs.Float64Var(&f.temperature, "temperature", 0, "0: greedy; above 0: sample from softmax(logits/T)")
	fs.IntVar(&f.topK, "top-k", 0, "when sampling, keep the K most likely tokens (0: all)")
	fs.IntVar(&f.maxTokens, "max-tokens", 48, "most tokens generated per blank")
	fs.Uint64Var(&f.seed, "seed", 1, "sampling seed")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer (default: the one the training data used)")
	fs.BoolVar(&f.json, "json", false, "print the spans as JSON")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case f.ckpt == "" && len(pos) == 0:
		return nil, cli.Usagef(fs, "missing --ckpt and the text to fill in")
	case f.ckpt == "":
		return nil, cli.Missing(fs, "--ckpt")
	case len(pos) == 0:
		return nil, cli.Usagef(fs, "missing the text to fill in, such as \"The [MASK] of the river .\"")
	case f.maxTokens < 1:
		return nil, cli.Usagef(fs, "--max-tokens %d; want ≥ 1", f.maxTokens)
	case !(f.temperature >= 0) || math.IsInf(f.temperature, 0):
		return nil, cli.Usagef(fs, "--temperature %v; want a finite number ≥ 0 (0: greedy)", f.temperature)
	case f.topK < 0:
		return nil, cli.Usagef(fs, "--top-k %d; want ≥ 0 (0: all)", f.topK)
	}
	f.text = strings.Join(pos, " ")
	return &f, nil
}

// loadInfillTokenizer loads the tokenizer of checkpoint dir's training
// data (or spec, when not empty) and checks that it is the one the model
// was trained with. It returns the data's metadata and the spec loaded.
func loadInfillTokenizer(dir, spec string) (*tokenizer.Tokenizer, sharding.Meta, string, error) {
	meta, metaPath, err := readDataFile(dir)
	if err != nil {
		return nil, meta, "", err
	}
	if spec == "" {
		spec = meta.Tokenizer
	}
	opts, err := tokenizer.ParseLoadOptions(meta.TokenizerOptions)
	if err != nil {
		return nil, meta, spec, err
	}
	tok, err := tokenizer.LoadWith(spec, opts)
	if err != nil {
		return nil, meta, spec, fmt.Errorf("loading the tokenizer: %w (pass --tokenizer)", err)
	}
	if tok.SHA256() != meta.TokenizerSHA256 {
		return nil, meta, spec, fmt.Errorf("tokenizer %s is not the one the model was trained with (sha256 %.12s…, want %.12s…)", spec, tok.SHA256(), meta.TokenizerSHA256)
	}
	if tok.Special() != meta.Special {
		return nil, meta, spec, fmt.Errorf("%s: its special ids are not tokenizer %s's (the file was edited)", metaPath, spec)
	}
	return tok, meta, spec, nil
}

// plainMasks reports whether the model's data was built without task masks
// (--task-mask=false, as GLM-Base/Large): every blank of its rows is
// [MASK], and the embeddings of [sMASK] and [gMASK] were never trained, so
// infill reads those markers as [MASK] (a text ending in one still has no
// eos after it: the document objective's suffix layout). A data.json
// without a masking configuration (its ratio 0) says nothing either way.
func plainMasks(meta sharding.Meta) bool { return meta.Masking.Ratio > 0 && !meta.Masking.TaskMask }

// An infillQuery is the text to fill in, as the model reads it.
type infillQuery struct {
	ids    []int32  // the context: [CLS], the text with each blank as its id, eos
	pieces []string // the text between the blanks
	kinds  []string // each blank's kind: MASK, sMASK or gMASK
}

// newInfillQuery encodes text for infilling: [CLS], the text with each
// blank marker as its id, then eos unless the text ends with [gMASK]
// (GLM's inference convention). Markers in another case are blanks for a
// tokenizer that folds case, and refused for one that does not.
func newInfillQuery(tok *tokenizer.Tokenizer, meta sharding.Meta, text string) (infillQuery, error) {
	ids := meta.Special
	blankID := map[string]int32{"MASK": ids.Mask, "sMASK": ids.SMask, "gMASK": ids.GMask}
	if plainMasks(meta) { // the model never saw [sMASK] or [gMASK]: its rows have [MASK] everywhere
		blankID["sMASK"], blankID["gMASK"] = ids.Mask, ids.Mask
	}
	enc := tok.NewEncoder()
	q := infillQuery{ids: []int32{ids.CLS}}
	last := 0
	exact, anyCase := blankREs()
	folds, err := lowercases(tok)
	if err != nil {
		return q, err
	}
	re := exact
	if folds {
		re = anyCase
	} else if odd := oddMarkers(text, exact, anyCase); len(odd) > 0 {
		return q, fmt.Errorf("%s is not a blank for tokenizer %s, which is case-sensitive: write [MASK], [sMASK] or [gMASK] exactly", strings.Join(odd, ", "), meta.Tokenizer)
	}
	for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
		q.pieces = append(q.pieces, text[last:m[0]])
		if q.ids, err = enc.Encode(q.ids, []byte(text[last:m[0]])); err != nil {
			return q, err
		}
		kind := canonicalBlank(text[m[2]:m[3]])
		q.kinds = append(q.kinds, kind)
		q.ids = append(q.ids, blankID[kind])
		last = m[1]
	}
	q.pieces = append(q.pieces, text[last:])
	if len(q.kinds) == 0 {
		return q, fmt.Errorf("the text has no blank: write [MASK] (or [sMASK], [gMASK]) where the model should fill in")
	}
	if q.ids, err = enc.Encode(q.ids, []byte(text[last:])); err != nil {
		return q, err
	}
	if !(q.kinds[len(q.kinds)-1] == "gMASK" && strings.TrimSpace(text[last:]) == "") {
		q.ids = append(q.ids, ids.EOS)
	}
	return q, nil
}

// printSpansJSON prints the filled spans as one JSON array: each blank's
// kind, ids, text and whether --max-tokens cut it.
func printSpansJSON(stdout io.Writer, tok *tokenizer.Tokenizer, kinds []string, spans []trainer.Span) error {
	type span struct {
		Blank string  `json:"blank"`
		IDs   []int32 `json:"ids"`
		Text  string  `json:"text"`
		Cut   bool    `json:"cut"`
	}
	out := []span{}
	for i, sp := range spans {
		ids := sp.Tokens
		if ids == nil {
			ids = []int32{}
		}
		out = append(out, span{kinds[i], ids, tok.Decode(ids), sp.Cut})
	}
	b, _ := json.Marshal(out)
	_, err := fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// printFilled prints the completed text, each filled span in [[double
// brackets]] ([[text…]] when --max-tokens cut it). Control characters, of
// the spans and of the text given, are shown as escapes.
func printFilled(stdout io.Writer, tok *tokenizer.Tokenizer, pieces []string, spans []trainer.Span) error {
	var b strings.Builder
	for i, p := range pieces {
		b.WriteString(cli.Printable(p, nil))
		if i < len(spans) {
			mark := ""
			if spans[i].Cut {
				mark = "…"
			}
			b.WriteString("[[" + cli.Printable(tok.Decode(spans[i].Tokens), nil) + mark + "]]")
		}
	}
	_, err := fmt.Fprintln(stdout, strings.TrimSpace(b.String()))
	return err
}

// canonicalBlank is a marker's kind as the special tokens spell it.
func canonicalBlank(kind string) string {
	switch strings.ToLower(kind) {
	case "smask":
		return "sMASK"
	case "gmask":
		return "gMASK"
	}
	return "MASK"
}

// oddMarkers are the markers of text written in another case than exact's.
func oddMarkers(text string, exact, anyCase *regexp.Regexp) []string {
	var odd []string
	for _, m := range anyCase.FindAllString(text, -1) {
		if !exact.MatchString(m) {
			odd = append(odd, m)
		}
	}
	return odd
}
