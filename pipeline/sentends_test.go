package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
	"github.com/glmkit/glmkit/sharding"
)

// With a byte-level BPE, "？", "！" and "；" are each spelt by several tokens
// (GPT-2: "ï" "¼" "Ł"), none of which ends a sentence by its id. The
// sentence objective must still take whole sentences, and the cut of a long
// document still move back to a sentence end: both missed these, so a
// "sentence" span ran over several sentences and pieces were cut mid-sentence.
func TestSentenceEndsSplitAcrossTokens(t *testing.T) {
	const ends = "。？！；"
	line := strings.Repeat("他来了吗？我不知道！也许明天；", 12) + "好。\n"
	in := writeFile(t, t.TempDir(), "zh.txt", []byte(line+line))
	tok, err := tokenizer.Load("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	for _, seqLen := range []int{512, 64} {
		out := t.TempDir()
		o := options(t, "gpt2", out, in)
		o.Meta.SeqLen = seqLen
		o.Meta.Masking.Weights = [3]float64{0, 1, 0}
		if _, err := Build(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		forSamples(t, out, func(_ *sharding.Reader, i int64, s *masking.Sample) {
			if s.Objective != masking.Sentence {
				t.Fatalf("seq_len %d, row %d: objective %s", seqLen, i, s.Objective)
			}
			// Every Part B span is one whole sentence: it ends with a
			// sentence end and holds no other.
			for j := int(s.Sep); j < s.Len(); {
				k := j + 1
				for k < s.Len() && s.Input[k] != o.Meta.Special.SOP {
					k++
				}
				text := tok.Decode(s.Target[j : k-1])
				body := strings.TrimSuffix(text, string([]rune(text)[len([]rune(text))-1]))
				if !strings.ContainsAny(text[len(body):], ends) || strings.ContainsAny(body, ends) {
					t.Errorf("seq_len %d, row %d: sentence span %q is not one sentence", seqLen, i, text)
				}
				j = k
			}
			// A piece cut from a long document ends at a sentence end.
			src, err := s.Source(nil, o.Meta.Special)
			if err != nil {
				t.Fatal(err)
			}
			if last := src[len(src)-1]; last != o.Meta.Special.EOS {
				if text := tok.Decode(src[1:]); !strings.ContainsAny(string([]rune(text)[len([]rune(text))-1]), ends) {
					t.Errorf("seq_len %d, row %d: a piece cut mid-sentence: …%q", seqLen, i, string([]rune(text)[max(0, len([]rune(text))-8):]))
				}
			}
		})
	}
}

// A sentence row whose sentences all together hold less than the mask
// ratio masks every one of them (as GLM does) and is counted, rows and
// tokens, as the token objective's shortfall is: it was not counted
// anywhere, so such rows went unseen.
func TestSentenceShortfallCounted(t *testing.T) {
	out := t.TempDir()
	o := options(t, "bert-base-uncased", out, "../testdata/demo/wikitext.txt")
	o.Meta.SeqLen = 48
	o.Meta.Masking.Weights = [3]float64{0, 1, 0}
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var rows, short int64
	forSamples(t, out, func(_ *sharding.Reader, _ int64, s *masking.Sample) {
		if s.Objective != masking.Sentence {
			return
		}
		masked := 0
		for j := int(s.Sep); j < s.Len(); j++ {
			if s.Input[j] != o.Meta.Special.SOP {
				masked++
			}
		}
		if target := int(math.Ceil(o.Meta.Masking.Ratio*float64(s.NSource) - 1e-9)); masked < target {
			rows++
			short += int64(target - masked)
		}
	})
	if rows == 0 {
		t.Fatal("no sentence row fell short: the test needs a corpus with fewer sentences")
	}
	var m struct {
		Stats map[string]json.RawMessage `json:"stats"`
	}
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int64{"sentence_rows_short_of_target": rows, "sentence_shortfall_tokens": short} {
		var got int64
		if err := json.Unmarshal(m.Stats[key], &got); err != nil || got != want {
			t.Errorf("manifest stats %s = %s; the rows say %d", key, m.Stats[key], want)
		}
	}
}
