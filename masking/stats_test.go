package masking_test

import (
	"bufio"
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/glmtest"
	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/pipeline/tokenizer"
)

// wikiSamples tokenizes WikiText-2 (valid and test) with bert-base-uncased,
// one document per article, and packs it as glmprep does: [CLS] doc eos,
// long documents cut into pieces of seqLen.
func wikiSamples(t *testing.T, seqLen int) ([][]int32, *tokenizer.Tokenizer) {
	t.Helper()
	tok, err := tokenizer.Load("bert-base-uncased")
	if err != nil {
		t.Fatal(err)
	}
	enc := tok.NewEncoder()
	ids := tok.Special()
	var docs [][]int32
	var cur []int32
	for _, name := range []string{"wiki.valid.raw", "wiki.test.raw"} {
		data := glmtest.ReadFile(t, glmtest.Corpus(t, "wikitext-2-raw/"+name))
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, " = ") && !strings.HasPrefix(line, " = = ") && len(cur) > 0 {
				docs = append(docs, cur) // a new article
				cur = nil
			}
			cur, _ = enc.Encode(cur, []byte(line))
		}
	}
	docs = append(docs, cur)
	var samples [][]int32
	var s []int32
	for _, d := range docs {
		for len(d) > 0 {
			if len(s) > 0 && len(s)+len(d)+2 > seqLen {
				samples, s = append(samples, s), nil
			}
			n := min(len(d), seqLen-1)
			if len(d)+2 > seqLen && n == len(d) {
				n--
			}
			s = append(s, ids.CLS)
			s = append(s, d[:n]...)
			d = d[n:]
			if len(d) == 0 {
				s = append(s, ids.EOS)
			} else {
				samples, s = append(samples, s), nil
			}
		}
	}
	return append(samples, s), tok
}

// chi2Survival is P(X ≥ x) for a chi-square variable with k degrees of
// freedom: the regularized upper incomplete gamma Q(k/2, x/2).
func chi2Survival(x float64, k int) float64 {
	a, z := float64(k)/2, x/2
	lg, _ := math.Lgamma(a)
	if z < a+1 { // series for P, then Q = 1 − P
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= z / (a + float64(n))
			sum += term
		}
		return 1 - sum*math.Exp(-z+a*math.Log(z)-lg)
	}
	// Lentz's continued fraction for Q.
	b := z + 1 - a
	c, d := 1e300, 1/b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		c = b + an/c
		d = 1 / d
		h *= d * c
	}
	return math.Exp(-z+a*math.Log(z)-lg) * h
}

// ksPValue is the asymptotic p-value of the Kolmogorov–Smirnov statistic d
// for n samples.
func ksPValue(d float64, n int) float64 {
	lam := (math.Sqrt(float64(n)) + 0.12 + 0.11/math.Sqrt(float64(n))) * d
	var p float64
	for j := 1; j <= 100; j++ {
		p += 2 * math.Pow(-1, float64(j-1)) * math.Exp(-2*float64(j*j)*lam*lam)
	}
	return min(max(p, 0), 1)
}

// The masking statistics on real text: span lengths follow truncated
// Poisson(3), every token-level row reaches 15%, document spans are uniform
// on [50%, 100%] and the objective mix follows the weights.
func TestStatisticsOnWikiText(t *testing.T) {
	samples, tok := wikiSamples(t, 512)
	cfg := masking.DefaultConfig()
	cfg.Weights = [3]float64{0.4, 0.3, 0.3}
	cfg.IDs = tok.Special()
	cfg.SentenceEnd = tok.SentenceEnds()
	cfg.Seed = 2022
	m, err := masking.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := maskStats{lengths: make([]int, cfg.MaxSpan+1)}
	epochs := (10000 + len(samples) - 1) / len(samples)
	var s masking.Sample
	for e := range epochs {
		for i, src := range samples {
			if err := m.MaskTo(&s, uint64(i), uint32(e), src); err != nil {
				t.Fatal(err)
			}
			st.add(&s, len(src))
		}
	}
	if st.n < 10000 {
		t.Fatalf("only %d samples", st.n)
	}
	st.checkSpanLengths(t, cfg.MaxSpan)
	st.checkMaskedFraction(t)
	st.checkDocumentSpans(t)
	// The objective mix.
	for o, w := range cfg.Weights {
		sd := math.Sqrt(float64(st.n) * w * (1 - w))
		dev := (float64(st.drawn[o]) - float64(st.n)*w) / sd
		t.Logf("objective %-8s %5d of %d rows (weight %.2f, %+.2f sd)", masking.Objective(o), st.drawn[o], st.n, w, dev)
		if math.Abs(dev) > 4 {
			t.Errorf("objective %v: %d rows, expected %.0f ± %.0f", masking.Objective(o), st.drawn[o], float64(st.n)*w, sd)
		}
	}
}

// maskStats gathers what TestStatisticsOnWikiText checks.
type maskStats struct {
	n        int
	drawn    [masking.NumObjectives]int
	lengths  []int // token span lengths
	spans    int
	fracs    []float64 // masked fraction of each token row
	below    int       // token rows under 15% without a recorded shortfall
	docRatio []float64 // document span / L, rows of the full 512
	docU     []float64 // document span normalised to [0, 1) within its range
}

// add counts one row masked from L source tokens.
func (st *maskStats) add(s *masking.Sample, L int) {
	st.n++
	o := s.Objective
	if s.Fallback {
		o = masking.Sentence
	}
	st.drawn[o]++
	switch s.Objective {
	case masking.Token:
		if s.Rebalanced {
			break // lengths may have been cut to fit; such rows are rare here
		}
		for _, sp := range s.Spans {
			st.lengths[sp.Len()]++
			st.spans++
		}
		f := float64(s.Masked()) / float64(L)
		st.fracs = append(st.fracs, f)
		if f < 0.15 && s.Shortfall == 0 {
			st.below++
		}
	case masking.Document:
		G := int(s.Spans[0].Len())
		lo, hi := min(max(1, L/2), L-2), L-2
		st.docU = append(st.docU, (float64(G-lo)+0.5)/float64(hi-lo+1))
		if L == 512 {
			st.docRatio = append(st.docRatio, float64(G)/float64(L))
		}
	}
}

// checkSpanLengths tests the span lengths against truncated Poisson(3).
func (st *maskStats) checkSpanLengths(t *testing.T, maxSpan int) {
	pmf := make([]float64, maxSpan+1)
	var z float64
	for k := 1; k <= maxSpan; k++ {
		lg, _ := math.Lgamma(float64(k + 1))
		pmf[k] = math.Exp(float64(k)*math.Log(3) - 3 - lg)
		z += pmf[k]
	}
	var chi2 float64
	bins := 0
	var tailObs, tailExp float64
	for k := 1; k <= maxSpan; k++ {
		exp := float64(st.spans) * pmf[k] / z
		if exp < 5 {
			tailObs += float64(st.lengths[k])
			tailExp += exp
			continue
		}
		chi2 += (float64(st.lengths[k]) - exp) * (float64(st.lengths[k]) - exp) / exp
		bins++
	}
	if tailExp > 0 {
		chi2 += (tailObs - tailExp) * (tailObs - tailExp) / tailExp
		bins++
	}
	pChi := chi2Survival(chi2, bins-1)
	t.Logf("token span lengths: %d spans, chi-square %.1f with %d dof, p = %.3f (mean %.3f, want %.3f)",
		st.spans, chi2, bins-1, pChi, mean(st.lengths), poissonMean(pmf, z))
	if pChi <= 0.001 {
		t.Errorf("span lengths do not follow truncated Poisson(3): p = %g", pChi)
	}
}

// checkMaskedFraction: every token row reaches 15%.
func (st *maskStats) checkMaskedFraction(t *testing.T) {
	mf := meanOf(st.fracs)
	t.Logf("token rows: %d, masked fraction mean %.4f, min %.4f; %d below 15%% without a recorded shortfall", len(st.fracs), mf, slices.Min(st.fracs), st.below)
	if st.below > 0 || mf < 0.15 || mf > 0.20 {
		t.Errorf("masked fraction: mean %.4f (want 0.15..0.20), %d rows under 15%%", mf, st.below)
	}
}

// checkDocumentSpans: document spans are uniform on [50%, 100%].
func (st *maskStats) checkDocumentSpans(t *testing.T) {
	d := ks(st.docRatio, func(x float64) float64 { return (x - 0.5) / 0.5 })
	du := ks(st.docU, func(x float64) float64 { return x })
	pR, pU := ksPValue(d, len(st.docRatio)), ksPValue(du, len(st.docU))
	t.Logf("document spans: %d full-length rows, KS vs U(0.5,1) D = %.4f p = %.3f; all %d rows, KS of the normalised length D = %.4f p = %.3f",
		len(st.docRatio), d, pR, len(st.docU), du, pU)
	if pR <= 0.001 || pU <= 0.001 {
		t.Errorf("document span lengths are not uniform: p = %g, %g", pR, pU)
	}
}

func mean(hist []int) float64 {
	var s, n float64
	for k, c := range hist {
		s += float64(k * c)
		n += float64(c)
	}
	return s / n
}

func poissonMean(pmf []float64, z float64) float64 {
	var s float64
	for k, p := range pmf {
		s += float64(k) * p / z
	}
	return s
}

func meanOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// ks is the Kolmogorov–Smirnov distance between the sample x and the CDF.
func ks(x []float64, cdf func(float64) float64) float64 {
	x = slices.Clone(x)
	slices.Sort(x)
	var d float64
	n := float64(len(x))
	for i, v := range x {
		c := cdf(v)
		d = max(d, math.Abs(c-float64(i)/n), math.Abs(float64(i+1)/n-c))
	}
	return d
}
