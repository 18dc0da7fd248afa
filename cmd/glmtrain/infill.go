package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/glmkit/glmkit/cmd/internal/cli"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
	"github.com/glmkit/glmkit/trainer"
)

const infillHelp = `Usage: glmtrain infill --ckpt DIR [flags] "text with [MASK] blanks"

Fills every blank of the text with a trained model, GLM's way: the text is
Part A ([CLS] text eos, bidirectional), and each blank is generated from
<|startofpiece|> at the blank's position until <|endofpiece|>, later blanks
seeing the earlier ones' text. [MASK] asks for a short span; [sMASK] for a
sentence and [gMASK] for a long generation when the model was trained with
task masks (a text ending in [gMASK] continues it). Prints the completed
text, with each filled span in [[double brackets]].

Examples:
  glmtrain infill --ckpt out/run "The [MASK] of the river was [MASK] ."
  glmtrain infill --ckpt out/run --temperature 0.8 --top-k 40 --seed 7 "It was a dark and [gMASK]"
`

var blankRE = regexp.MustCompile(`\[(MASK|sMASK|gMASK)\]`)

func cmdInfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.FlagSet("infill", infillHelp, stderr)
	ckpt := fs.String("ckpt", "", "checkpoint directory, or a training OUT for its newest")
	temp := fs.Float64("temperature", 0, "0: greedy; above 0: sample from softmax(logits/T)")
	topK := fs.Int("top-k", 0, "when sampling, keep the K most likely tokens (0: all)")
	maxTok := fs.Int("max-tokens", 48, "most tokens generated per blank")
	seed := fs.Uint64("seed", 1, "sampling seed")
	tokSpec := fs.String("tokenizer", "", "tokenizer (default: the one the training data used)")
	asJSON := fs.Bool("json", false, "print the spans as JSON")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *ckpt == "" || len(pos) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: infill needs --ckpt and a text", cli.ErrUsage)
	}
	text := strings.Join(pos, " ")
	dir, err := resolveCheckpoint(*ckpt)
	if err != nil {
		return err
	}
	var meta sharding.Meta
	metaPath := filepath.Join(filepath.Dir(dir), dataFile)
	if st, err := os.Lstat(metaPath); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", metaPath)
	}
	mb, err := os.ReadFile(metaPath)
	if err != nil {
		return fmt.Errorf("%w (the training run writes %s beside its checkpoints)", err, dataFile)
	}
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil {
		return fmt.Errorf("%s: %w", metaPath, err)
	}
	spec := meta.Tokenizer
	if *tokSpec != "" {
		spec = *tokSpec
	}
	opts, err := tokenizer.ParseLoadOptions(meta.TokenizerOptions)
	if err != nil {
		return err
	}
	tok, err := tokenizer.LoadWith(spec, opts)
	if err != nil {
		return fmt.Errorf("loading the tokenizer: %w (pass --tokenizer)", err)
	}
	if tok.SHA256() != meta.TokenizerSHA256 {
		return fmt.Errorf("tokenizer %s is not the one the model was trained with (sha256 %.12s…, want %.12s…)", spec, tok.SHA256(), meta.TokenizerSHA256)
	}
	if tok.Special() != meta.Special {
		return fmt.Errorf("%s: its special ids are not tokenizer %s's (the file was edited)", metaPath, spec)
	}
	ids := meta.Special
	blankID := map[string]int32{"MASK": ids.Mask, "sMASK": ids.SMask, "gMASK": ids.GMask}
	// The context: [CLS], the text with each blank marker as its id, then
	// eos unless the text ends with [gMASK] (GLM's inference convention).
	enc := tok.NewEncoder()
	ctxIDs := []int32{ids.CLS}
	var pieces []string // text between the blanks
	var kinds []string
	last := 0
	for _, m := range blankRE.FindAllStringSubmatchIndex(text, -1) {
		pieces = append(pieces, text[last:m[0]])
		if ctxIDs, err = enc.Encode(ctxIDs, []byte(text[last:m[0]])); err != nil {
			return err
		}
		kind := text[m[2]:m[3]]
		kinds = append(kinds, kind)
		ctxIDs = append(ctxIDs, blankID[kind])
		last = m[1]
	}
	pieces = append(pieces, text[last:])
	if len(kinds) == 0 {
		return fmt.Errorf("the text has no blank: write [MASK] (or [sMASK], [gMASK]) where the model should fill in")
	}
	if ctxIDs, err = enc.Encode(ctxIDs, []byte(text[last:])); err != nil {
		return err
	}
	if !(kinds[len(kinds)-1] == "gMASK" && strings.TrimSpace(text[last:]) == "") {
		ctxIDs = append(ctxIDs, ids.EOS)
	}
	be, err := newBackend("auto", 0, "", stderr)
	if err != nil {
		return err
	}
	defer be.Close()
	model, err := trainer.LoadModel(dir, be)
	if err != nil {
		return err
	}
	defer model.Close()
	if mc := model.Config(); mc.Vocab < tok.ModelVocabSize() {
		return fmt.Errorf("checkpoint %s has a vocabulary of %d; tokenizer %s needs %d", dir, mc.Vocab, spec, tok.ModelVocabSize())
	}
	spans, err := model.Infill(ctx, ctxIDs, trainer.InfillOptions{
		Blanks: []int32{ids.Mask, ids.SMask, ids.GMask}, SOP: ids.SOP, EOP: ids.EOP,
		MaxTokens: *maxTok, Temperature: *temp, TopK: *topK, Vocab: tok.VocabSize(), Seed: *seed,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		var out []map[string]any
		for i, sp := range spans {
			out = append(out, map[string]any{"blank": kinds[i], "ids": sp.Tokens, "text": tok.Decode(sp.Tokens)})
		}
		b, _ := json.Marshal(out)
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	var b strings.Builder
	for i, p := range pieces {
		b.WriteString(p)
		if i < len(spans) {
			b.WriteString("[[" + tok.Decode(spans[i].Tokens) + "]]")
		}
	}
	_, err = fmt.Fprintln(stdout, strings.TrimSpace(b.String()))
	return err
}
