package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/sharding"
)

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

// A small model trained on WikiText learns far more than token frequencies:
// its held-out Part-B loss falls well below what the best unigram model of
// the training targets scores on the same held-out targets, and below the
// corpus' unigram entropy. The curve is logged (and recorded in the README).
func TestLearnsWikiText(t *testing.T) {
	if testing.Short() {
		t.Skip("the learning test trains for about three minutes; it runs without -short")
	}
	shared := filepath.Join("..", "..", "..", "shared", "corpora", "wikitext-2-raw")
	valid, err := os.ReadFile(filepath.Join(shared, "wiki.valid.raw"))
	if err != nil {
		t.Skipf("WikiText-2 not found (the shared corpora live in ../shared): %v", err)
	}
	test, err := os.ReadFile(filepath.Join(shared, "wiki.test.raw"))
	if err != nil {
		t.Skipf("WikiText-2 not found: %v", err)
	}
	// Train on the test split and the first 80% of the validation split;
	// hold out the rest of the validation split, cut at an article.
	lines := strings.Split(string(valid), "\n")
	cut := len(lines) * 8 / 10
	for !(strings.HasPrefix(lines[cut], " = ") && !strings.HasPrefix(lines[cut], " = = ")) {
		cut++
	}
	src := t.TempDir()
	trainTxt, evalTxt := filepath.Join(src, "train.txt"), filepath.Join(src, "eval.txt")
	os.WriteFile(trainTxt, append(test, strings.Join(lines[:cut], "\n")+"\n"...), 0o644)
	os.WriteFile(evalTxt, []byte(strings.Join(lines[cut:], "\n")), 0o644)
	trainDir, evalDir := t.TempDir(), t.TempDir()
	mix := [3]float64{0.5, 0, 0.5}
	buildShards(t, trainDir, 128, mix, trainTxt)
	buildShards(t, evalDir, 128, mix, evalTxt)

	// The unigram baseline: the training targets' frequencies (add-½
	// smoothing over the vocabulary) scored on the held-out targets.
	trainCounts, n := partBCounts(t, trainDir)
	evalCounts, m := partBCounts(t, evalDir)
	var entropy, baseline float64
	for _, c := range trainCounts {
		entropy -= c / n * math.Log(c/n)
	}
	for id, c := range evalCounts {
		baseline -= c * math.Log((trainCounts[id]+0.5)/(n+0.5*30592))
	}
	baseline /= m

	out := t.TempDir()
	res, err := glmtrain(t, "train", "--data", trainDir, "--eval-data", evalDir, "--preset", "tiny", "--hidden", "128",
		"--steps", "500", "--batch", "16", "--lr", "3e-3", "--warmup", "30", "--eval-every", "100", "--quiet", "--out", out)
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
	t.Logf("unigram entropy of the training targets %.3f nats; the unigram model scores %.3f on the held-out targets\n%s\n%s",
		entropy, baseline, strings.Join(curve, "\n"), res)
	if last > baseline-0.35 || last > entropy-0.1 {
		t.Errorf("final eval loss %.3f: not well below the unigram baseline %.3f (entropy %.3f)", last, baseline, entropy)
	}
}
