package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

var long = flag.Bool("long", false, "run the full learning test (bert-base-uncased vocabulary, 500 steps; minutes on 2 cores)")

// partBCounts counts the Part-B targets of every row of a build.
func partBCounts(t *testing.T, dir string) (map[int32]float64, float64) {
	t.Helper()
	r, err := sharding.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	counts := map[int32]float64{}
	var n float64
	var s masking.Sample
	for i := int64(0); i < r.Len(); i++ {
		if err := r.Sample(i, &s); err != nil {
			t.Fatal(err)
		}
		for j, m := range s.LossMask {
			if m == 1 {
				counts[s.Target[j]]++
				n++
			}
		}
	}
	return counts, n
}

// wikiSplits writes WikiText-2's training and held-out text into dir: the
// test split and the first 80% of the validation split for training, the
// rest of the validation split (cut at an article) held out.
func wikiSplits(t *testing.T, dir string) (trainTxt, evalTxt string) {
	t.Helper()
	valid := glmtest.ReadFile(t, glmtest.Corpus(t, "wikitext-2-raw/wiki.valid.raw"))
	test := glmtest.ReadFile(t, glmtest.Corpus(t, "wikitext-2-raw/wiki.test.raw"))
	lines := strings.Split(string(valid), "\n")
	cut := len(lines) * 8 / 10
	for !(strings.HasPrefix(lines[cut], " = ") && !strings.HasPrefix(lines[cut], " = = ")) {
		cut++
	}
	trainTxt, evalTxt = filepath.Join(dir, "train.txt"), filepath.Join(dir, "eval.txt")
	if err := os.WriteFile(trainTxt, append(test, strings.Join(lines[:cut], "\n")+"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evalTxt, []byte(strings.Join(lines[cut:], "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return trainTxt, evalTxt
}

// smallVocab writes a WordPiece vocab.txt into dir that keeps BERT's
// special tokens, the single-character pieces of every character of text
// (so no word of it becomes [UNK]) and the n most frequent
// bert-base-uncased pieces of text, in BERT's id order.
func smallVocab(t *testing.T, dir, text string, n int) string {
	t.Helper()
	bert, err := tokenizer.Load("bert-base-uncased")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := bert.NewEncoder().Encode(nil, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	freq := make([]int, bert.BaseVocabSize())
	for _, id := range ids {
		freq[id]++
	}
	order := make([]int, len(freq))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return freq[b] - freq[a] })
	keep := make([]bool, len(freq))
	for _, id := range order[:n] {
		keep[id] = freq[id] > 0
	}
	chars := map[rune]bool{}
	for _, r := range strings.ToLower(text) {
		chars[r] = true
	}
	var lines []string
	for id := range freq {
		tok := bert.Token(int32(id))
		r := []rune(strings.TrimPrefix(tok, "##"))
		single := len(r) == 1 && chars[r[0]]
		if keep[id] || single || (strings.HasPrefix(tok, "[") && strings.HasSuffix(tok, "]") && !strings.HasPrefix(tok, "[unused")) {
			lines = append(lines, tok)
		}
	}
	path := filepath.Join(dir, "vocab.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// learning is one learning run: shards from WikiText-2 with tok, a tiny
// model trained with args, and its held-out Part-B loss compared with the
// best unigram model of the training targets.
type learning struct {
	tok     string // tokenizer spec
	seqLen  int
	args    []string // glmtrain train flags besides data, eval and out
	margin  float64  // required nats below the unigram baseline
	entropy float64  // required nats below the unigram entropy
}

func (l learning) run(t *testing.T, src, trainTxt, evalTxt string) {
	trainDir, evalDir := t.TempDir(), t.TempDir()
	mix := [3]float64{0.5, 0, 0.5}
	vocab := buildShardsWith(t, l.tok, trainDir, l.seqLen, mix, trainTxt)
	buildShardsWith(t, l.tok, evalDir, l.seqLen, mix, evalTxt)

	// The unigram baseline: the training targets' frequencies (add-½
	// smoothing over the vocabulary) scored on the held-out targets.
	trainCounts, n := partBCounts(t, trainDir)
	evalCounts, m := partBCounts(t, evalDir)
	var entropy, baseline float64
	for _, c := range trainCounts {
		entropy -= c / n * math.Log(c/n)
	}
	for id, c := range evalCounts {
		baseline -= c * math.Log((trainCounts[id]+0.5)/(n+0.5*float64(vocab)))
	}
	baseline /= m

	out := t.TempDir()
	args := append([]string{"train", "--data", trainDir, "--eval-data", evalDir, "--quiet", "--out", out}, l.args...)
	res, err := glmtrain(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var curve []string
	var last float64
	for _, line := range readMetrics(t, out) {
		if raw, ok := line["eval_loss"]; ok {
			fmt.Sscan(string(raw), &last)
			curve = append(curve, fmt.Sprintf("step %s: eval loss %.3f", line["step"], last))
		}
	}
	t.Logf("vocabulary %d; unigram entropy of the training targets %.3f nats; the unigram model scores %.3f on the %.0f held-out targets\n%s\n%s",
		vocab, entropy, baseline, m, strings.Join(curve, "\n"), res)
	if last > baseline-l.margin || last > entropy-l.entropy {
		t.Errorf("final eval loss %.3f: not %.2f below the unigram baseline %.3f and %.2f below the entropy %.3f",
			last, l.margin, baseline, l.entropy, entropy)
	}
}

// A small model trained on WikiText learns far more than token
// frequencies: its held-out Part-B loss falls well below what the best
// unigram model of the training targets scores on the same held-out
// targets, and below the unigram entropy of the training targets.
//
// The default run uses a 4,000-piece WordPiece vocabulary cut from
// bert-base-uncased's (every single character kept, so nothing is
// [UNK]), 300 steps of 8 rows of 64 tokens: the unigram phase is short and
// a step is cheap, so about a minute of CPU proves learning. -long runs the
// README's full test (bert-base-uncased, 500 steps of 16 rows of 128
// tokens, minutes): .ci/run passes it with its own -timeout.
func TestLearnsWikiText(t *testing.T) {
	src := t.TempDir()
	trainTxt, evalTxt := wikiSplits(t, src)
	if *long {
		learning{tok: "bert-base-uncased", seqLen: 128, margin: 0.35, entropy: 0.1,
			args: []string{"--preset", "tiny", "--hidden", "128", "--steps", "500", "--batch", "16", "--lr", "3e-3",
				"--warmup", "30", "--eval-every", "100"}}.run(t, src, trainTxt, evalTxt)
		return
	}
	train, err := os.ReadFile(trainTxt)
	if err != nil {
		t.Fatal(err)
	}
	vocab := smallVocab(t, src, string(train), 4000)
	learning{tok: vocab, seqLen: 64, margin: 0.1, entropy: 0.1,
		args: []string{"--preset", "tiny", "--hidden", "128", "--steps", "300", "--batch", "8", "--lr", "5e-3",
			"--warmup", "20", "--eval-every", "50"}}.run(t, src, trainTxt, evalTxt)
}
