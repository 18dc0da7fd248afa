package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
)

// TestBuildSentencePiece builds Chinese text with GLM's own SentencePiece
// model (cog-pretrain.model) end to end: verify passes, inspect shows
// readable Chinese with GLM's blanks, and the manifest records the ids GLM's
// ChineseSPTokenizer uses for that file.
func TestBuildSentencePiece(t *testing.T) {
	model := glmtest.Shared(t, "tokenizers/glm-chinese-sentencepiece/cog-pretrain.model")
	out := t.TempDir()
	mustGlmprep(t, "build", "--out", out, "--quiet", "--tokenizer", model, "--input", glmtest.Corpus(t, "zh/cmrc2018-contexts.jsonl"),
		"--mix", "token=0.4,sentence=0.3,document=0.3")
	if v := mustGlmprep(t, "verify", out); !strings.Contains(v, "OK") {
		t.Errorf("verify: %s", v)
	}
	ins := mustGlmprep(t, "inspect", out, "--rows", "3", "--color", "never")
	for _, want := range []string{"A: [CLS]", "B1 (blank at", "的", "。"} {
		if !strings.Contains(ins, want) {
			t.Errorf("inspect output lacks %q:\n%.3000s", want, ins)
		}
	}
	if strings.Contains(ins, "\u2581") || strings.Contains(ins, "<0x") {
		t.Errorf("inspect shows raw pieces instead of text:\n%.3000s", ins)
	}
	var man struct {
		Meta struct {
			VocabSize  int              `json:"vocab_size"`
			SpecialIDs map[string]int32 `json:"special_ids"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(glmtest.ReadFile(t, filepath.Join(out, "manifest.json")), &man); err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{"pad": 50000, "eos": 50000, "sep": 50001, "cls": 50002, "mask": 50003, "unk": 50004,
		"sop": 50006, "eop": 50007, "smask": 50008, "gmask": 50009}
	for k, v := range want {
		if got, ok := man.Meta.SpecialIDs[k]; !ok || got != v {
			t.Errorf("special id %s = %d, want %d (GLM's ChineseSPTokenizer)", k, got, v)
		}
	}
	if man.Meta.VocabSize != 50048 {
		t.Errorf("vocab_size %d, want 50048", man.Meta.VocabSize)
	}
	if st := mustGlmprep(t, "stats", out); !strings.Contains(st, "sentence") {
		t.Errorf("stats: %s", st)
	}
}
