package masking

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Masker turns samples of source tokens into GLM rows. It is immutable
// after New and safe for concurrent use; every draw comes from an RNG seeded
// from (Config.Seed, sample key, mask epoch), so a row never depends on
// which goroutine made it or in which order.
type Masker struct {
	cfg  Config
	lcum []float64              // cumulative truncated-Poisson weights of lengths 1..MaxSpan
	wcum [NumObjectives]float64 // cumulative normalised objective weights
	ends []bool                 // cfg.SentenceEnd
	mask [NumObjectives]int32   // blank id per objective
	last Objective              // the last objective with a positive weight
}

// Errors returned by Mask for samples that break the input contract.
var (
	ErrNoCLS    = errors.New("masking: sample does not start with [CLS]")
	ErrTooShort = errors.New("masking: sample has no token that can be masked")
)

// New validates cfg and returns a Masker.
func New(cfg Config) (*Masker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Masker{cfg: cfg, ends: cfg.SentenceEnd}
	// Poisson(λ) pmf at 1..MaxSpan, renormalised by the draw (GLM's
	// rng.choices over range(1, 40)). Computed in log space so a large λ
	// does not overflow.
	m.lcum = make([]float64, cfg.MaxSpan)
	var acc float64
	for k := 1; k <= cfg.MaxSpan; k++ {
		lg, _ := math.Lgamma(float64(k + 1))
		acc += math.Exp(float64(k)*math.Log(cfg.Lambda) - cfg.Lambda - lg)
		m.lcum[k-1] = acc
	}
	var sum float64
	for _, w := range cfg.Weights {
		sum += w
	}
	acc = 0
	for i, w := range cfg.Weights {
		acc += w / sum
		m.wcum[i] = acc
	}
	for o := range NumObjectives {
		m.mask[o] = cfg.IDs.MaskID(Objective(o), cfg.TaskMask)
		if cfg.Weights[o] > 0 {
			m.last = Objective(o)
		}
	}
	return m, nil
}

// Config returns the configuration the Masker was built with.
func (m *Masker) Config() Config { return m.cfg }

// Mask masks one sample into a new row. key identifies the sample (glmkit
// uses task<<40 | index of the sample within its task) and epoch the mask
// epoch; tokens is the sample: [CLS] doc eos [CLS] doc eos …, where a [CLS]
// may only follow an eos, and no token is one the masker inserts (sop, eop,
// the blanks).
func (m *Masker) Mask(key uint64, epoch uint32, tokens []int32) (Sample, error) {
	var s Sample
	err := m.MaskTo(&s, key, epoch, tokens)
	return s, err
}

// MaskTo is Mask into a caller-owned Sample, reusing its memory: in steady
// state it does not allocate. tokens is only read.
func (m *Masker) MaskTo(s *Sample, key uint64, epoch uint32, tokens []int32) error {
	if err := m.check(tokens); err != nil {
		return err
	}
	s.reset(len(tokens))
	r := &s.sc.r
	r.seed(m.cfg.Seed, key, epoch)
	u := r.float64()
	obj := m.last // where rounding leaves u above the last cumulative weight
	for i, c := range m.wcum {
		if u < c && m.cfg.Weights[i] > 0 {
			obj = Objective(i)
			break
		}
	}
	s.Objective = obj
	switch obj {
	case Token:
		m.token(s, r, tokens)
	case Sentence:
		if !m.sentence(s, r, tokens) {
			s.reset(len(tokens))
			s.Objective = Token
			s.Fallback = true
			m.token(s, r, tokens)
		}
	default:
		m.document(s, r, tokens)
	}
	return nil
}

func (m *Masker) check(t []int32) error {
	ids := m.cfg.IDs
	reserved := ids.reserved()
	if len(t) == 0 || t[0] != ids.CLS {
		return ErrNoCLS
	}
	maskable := false
	for i, id := range t {
		switch {
		case id == ids.CLS:
			if i > 0 && t[i-1] != ids.EOS {
				return fmt.Errorf("masking: [CLS] at %d does not follow an eos", i)
			}
		case id == ids.EOS:
		case reserved.has(id):
			return fmt.Errorf("masking: source token %d at %d is a token the masker inserts", id, i)
		case id < 0:
			return fmt.Errorf("masking: negative token id %d at %d", id, i)
		default:
			if i < len(t)-1 || t[len(t)-1] == ids.EOS {
				maskable = true
			}
		}
	}
	if !maskable || len(t) < 3 {
		return ErrTooShort
	}
	return nil
}

// target is the number of tokens the token and sentence objectives mask at
// least: ⌈ratio·L⌉. GLM floors it (76 of 512 is 14.8%); the ceiling keeps the
// paper's "at least 15%" for every row.
func (m *Masker) target(L int) int {
	return int(math.Ceil(m.cfg.Ratio*float64(L) - 1e-9))
}

func (m *Masker) drawLength(r *rng) int32 {
	u := r.float64() * m.lcum[len(m.lcum)-1]
	i, _ := slices.BinarySearch(m.lcum, u)
	if i < len(m.lcum) && m.lcum[i] == u {
		i++ // the interval of length i+1 is [lcum[i-1], lcum[i])
	}
	return int32(min(i, len(m.lcum)-1) + 1)
}

// token is GLM's token-level blank infilling (glm-reference.md §3.1).
func (m *Masker) token(s *Sample, r *rng, t []int32) {
	sc := &s.sc
	L := len(t)
	target := m.target(L)
	sc.lengths = sc.lengths[:0]
	for sum := 0; sum < target; {
		l := m.drawLength(r)
		sc.lengths = append(sc.lengths, l)
		sum += int(l)
	}
	shuffle(r, sc.lengths)
	m.regions(s, t)
	docs, lengths := sc.docs, sc.lengths
	sc.owner = slices.Grow(sc.owner[:0], len(lengths))[:len(lengths)]
	for i := range sc.owner {
		sc.owner[i] = -1
	}
	// GLM's assignment: documents shortest first take lengths from the front
	// while the sum stays within ratio of their region; the longest takes the
	// rest while they fit. "Fit" is the region holding the spans with a free
	// token between neighbours (sum + count ≤ n with the new length). Within
	// ratio ≤ ½ of a region a length always fits, so that test changes
	// nothing there; above ½ GLM's sample_spans would fail on a document
	// given more, and drop the sample.
	next := 0
	for d := range docs {
		g := &docs[d]
		if d == len(docs)-1 {
			for next < len(lengths) && lengths[next]+g.sum+g.cnt <= g.n {
				g.sum += lengths[next]
				g.cnt++
				sc.owner[next] = int32(d)
				next++
			}
			break
		}
		capacity := int32(float64(g.n) * m.cfg.Ratio)
		for next < len(lengths) && lengths[next]+g.sum <= capacity && lengths[next]+g.sum+g.cnt <= g.n {
			g.sum += lengths[next]
			g.cnt++
			sc.owner[next] = int32(d)
			next++
		}
	}
	// Where GLM would drop the sample, place what fits: each remaining
	// length goes to the document with the most room, cut to that room.
	s.Rebalanced = next < len(lengths)
	for ; next < len(lengths); next++ {
		best, room := -1, int32(0)
		for d := range docs {
			if fr := docs[d].n - docs[d].sum - docs[d].cnt; fr > room {
				best, room = d, fr
			}
		}
		if best < 0 {
			break
		}
		l := min(lengths[next], room)
		lengths[next] = l
		docs[best].sum += l
		docs[best].cnt++
		sc.owner[next] = int32(best)
	}
	spans := s.Spans[:0]
	masked := 0
	for d := range docs {
		g := &docs[d]
		if g.cnt == 0 {
			continue
		}
		spans = m.place(s, r, spans, int32(d), *g)
		masked += int(g.sum)
	}
	s.Spans = spans
	if masked < target {
		s.Shortfall = int32(target - masked)
	}
	shuffle(r, s.Spans)
	s.build(t, m.mask[Token], m.cfg.IDs)
}

// regions lists the maskable region of every document of t the way GLM's
// sample_span_in_document does: cut at eos, skip each leading [CLS], drop
// the last token of a sample that does not end with eos, then sort stably
// by length (documents are listed last first, as GLM walks them).
func (m *Masker) regions(s *Sample, t []int32) {
	ids := m.cfg.IDs
	docs := s.sc.docs[:0]
	last := len(t)
	for i := len(t) - 1; i >= -1; i-- {
		if i >= 0 && t[i] != ids.EOS {
			continue
		}
		start := i
		if start+1 < len(t) && t[start+1] == ids.CLS {
			start++
		}
		n := last - start - 1
		if last == len(t) && n > 0 {
			n--
		}
		docs = append(docs, region{off: int32(start + 1), n: int32(max(n, 0))})
		last = i
	}
	slices.SortStableFunc(docs, func(a, b region) int { return int(a.n - b.n) })
	s.sc.docs = docs
}

// place is GLM's sample_spans: the lengths owned by document d, in list
// order, placed uniformly in its region with at least one free token
// between neighbours.
func (m *Masker) place(s *Sample, r *rng, spans []Span, d int32, g region) []Span {
	sc := &s.sc
	free := g.n - g.sum - g.cnt + 1
	sc.places = sc.places[:0]
	for range g.cnt {
		sc.places = append(sc.places, int32(r.intn(int(free)+1)))
	}
	slices.Sort(sc.places)
	off, k := g.off, 0
	for j, l := range sc.lengths {
		if sc.owner[j] != d {
			continue
		}
		start := off + sc.places[k]
		spans = append(spans, Span{start, start + l})
		off += l + 1
		k++
	}
	return spans
}

// sentence is GLM's sentence-level objective (glm-reference.md §3.2). It
// reports false when the sample has no candidate sentence.
func (m *Masker) sentence(s *Sample, r *rng, t []int32) bool {
	s.sc.ends = m.SentenceEnds(t, s.sc.ends[:0])
	cand := m.sentences(s.sc.cand[:0], t, s.sc.ends)
	s.sc.cand = cand
	if len(cand) == 0 {
		return false
	}
	shuffle(r, cand)
	target := m.target(len(t))
	spans, n := s.Spans[:0], 0
	for _, c := range cand {
		spans = append(spans, c)
		n += int(c.Len())
		if n >= target {
			break
		}
	}
	if n < target {
		s.SentenceShort = int32(target - n)
	}
	s.Spans = spans
	shuffle(r, s.Spans)
	s.build(t, m.mask[Sentence], m.cfg.IDs)
	return true
}

// sentences appends t's candidate sentences to dst, as GLM finds them, given
// the sentence ends of t (SentenceEnds): a sentence ends at a token whose
// text ends one; an eos drops the fragment before it; a trailing fragment
// counts. A sentence may start with the [CLS] of the next document, as in
// GLM.
func (m *Masker) sentences(dst []Span, t []int32, ends []bool) []Span {
	ids := m.cfg.IDs
	last := 0
	if t[0] == ids.CLS {
		last = 1
	}
	for i, id := range t {
		switch {
		case id == ids.EOS:
			last = i + 1
		case id != ids.CLS && ends[i]:
			if last < i+1 {
				dst = append(dst, Span{int32(last), int32(i + 1)})
			}
			last = i + 1
		}
	}
	if last < len(t) {
		dst = append(dst, Span{int32(last), int32(len(t))})
	}
	return dst
}

// SentenceEnds sets dst[i] (dst resized to len(t)) when token i of t ends
// a sentence: Config.SentenceEndsOf where it is set (which also finds a
// sentence-end character spelt by several tokens), else the bit of the
// id in Config.SentenceEnd. The packer's cuts of long documents use it too.
func (m *Masker) SentenceEnds(t []int32, dst []bool) []bool {
	if m.cfg.SentenceEndsOf != nil {
		return m.cfg.SentenceEndsOf(t, dst)
	}
	dst = slices.Grow(dst[:0], len(t))[:len(t)]
	for i, id := range t {
		dst[i] = id >= 0 && int(id) < len(m.ends) && m.ends[id]
	}
	return dst
}

// document is GLM's document-level (generation) objective
// (glm-reference.md §3.3), with the span length drawn per sample.
func (m *Masker) document(s *Sample, r *rng, t []int32) {
	ids := m.cfg.IDs
	L := len(t)
	hi := min(L-2, max(1, int(m.cfg.DocMax*float64(L))))
	lo := min(max(1, int(m.cfg.DocMin*float64(L))), hi)
	G := lo + r.intn(hi-lo+1)
	first := slices.Index(t, ids.EOS)
	multi := first != -1 && first != L-1
	if multi || r.float64() < m.cfg.SuffixProb {
		s.suffix(t, L-G, m.mask[Document], ids)
		return
	}
	// One span of G tokens anywhere in the document's region, which for a
	// single document is [1, L−1): after [CLS], before eos or the last token.
	p := int32(r.intn(L - 2 - G + 1))
	s.Spans = append(s.Spans[:0], Span{1 + p, 1 + p + int32(G)})
	s.build(t, m.mask[Document], ids)
}

// build lays out Part A and Part B from s.Spans, which are in Part B order
// (glm-reference.md §2.2).
func (s *Sample) build(t []int32, maskID int32, ids SpecialIDs) {
	sc := &s.sc
	sc.sorted = append(sc.sorted[:0], s.Spans...)
	slices.SortFunc(sc.sorted, func(a, b Span) int { return int(a.Start - b.Start) })
	sc.maskPos = sc.maskPos[:0]
	last := int32(0)
	for _, sp := range sc.sorted {
		s.pushSource(t[last:sp.Start])
		p := int32(len(s.Input))
		sc.maskPos = append(sc.maskPos, p)
		s.push(maskID, maskID, 0, p, 0)
		last = sp.End
	}
	s.pushSource(t[last:])
	s.Sep = int32(len(s.Input))
	for _, sp := range s.Spans {
		k, _ := slices.BinarySearchFunc(sc.sorted, sp.Start, func(a Span, start int32) int { return int(a.Start - start) })
		p := sc.maskPos[k]
		s.push(ids.SOP, t[sp.Start], 1, p, 1)
		for j := sp.Start; j < sp.End; j++ {
			next := ids.EOP
			if j+1 < sp.End {
				next = t[j+1]
			}
			s.push(t[j], next, 1, p, j-sp.Start+2)
		}
	}
}

// suffix is the document objective's suffix layout: Part A is t[:D] and one
// blank, Part B generates t[D:] with no eop; the last target is the sample's
// last token, and the loss follows the dataset's rule (0 on [CLS]).
func (s *Sample) suffix(t []int32, D int, maskID int32, ids SpecialIDs) {
	L := len(t)
	s.pushSource(t[:D])
	s.push(maskID, maskID, 0, int32(D), 0)
	s.Sep = int32(D + 1)
	in := ids.SOP
	for k, j := 1, D; j < L; k, j = k+1, j+1 {
		var loss uint8 = 1
		if t[j] == ids.CLS {
			loss = 0
		}
		s.push(in, t[j], loss, int32(D), int32(k))
		in = t[j]
	}
	s.Spans = append(s.Spans[:0], Span{int32(D), int32(L)})
}
