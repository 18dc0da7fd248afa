package trainer

import (
	"errors"
	"fmt"
	"math"

	"github.com/glmkit/glmkit/masking"
	"github.com/glmkit/glmkit/trainer/loader"
)

// Model is a GLM (glm-reference.md §5) whose parameters, gradients and
// activations live in buffers of one Backend: word + position + block
// position embeddings summed, pre-LN blocks with fused QKV and attention
// bidirectional over Part A and causal over Part B, tanh-GeLU MLP, final
// LayerNorm, logits tied to the word embedding, token-mean cross entropy
// over the loss positions.
//
// As in llm.c, the parameters are one flat allocation (see Layout) and so
// are the gradients; Forward then Backward accumulate into the gradients
// until ZeroGrad. The logits are computed only at loss positions (Part B),
// which gives the same loss and gradients as the full logits.
//
// A Model is not safe for concurrent use.
type Model struct {
	cfg     Config
	be      Backend
	tensors []Tensor
	n       int // parameters

	params, grads Buf
	w, g          weights

	acts acts
	// the last forward pass, which Backward differentiates
	last struct {
		ok       bool
		b, t, ns int
		pass     Pass
	}
	host struct{ sel, tgt []int32 } // reused upload scratch
}

// NewModel allocates a model of shape cfg on be with zero parameters; call
// Init or LoadCheckpoint next.
func NewModel(cfg Config, be Backend) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, be: be, tensors: Layout(cfg)}
	m.n = cfg.NumParams()
	var err error
	if m.params, err = be.Floats(m.n); err != nil {
		return nil, fmt.Errorf("trainer: allocate %d parameters: %w", m.n, err)
	}
	if m.grads, err = be.Floats(m.n); err != nil {
		return nil, fmt.Errorf("trainer: allocate %d gradients: %w", m.n, err)
	}
	m.w = bind(m.params, m.tensors, cfg.Layers)
	m.g = bind(m.grads, m.tensors, cfg.Layers)
	return m, nil
}

// Config returns the model's shape.
func (m *Model) Config() Config { return m.cfg }

// Backend returns the backend the model lives on.
func (m *Model) Backend() Backend { return m.be }

// Tensors returns the parameter tensors in flat-buffer order. The result
// is shared; do not modify it.
func (m *Model) Tensors() []Tensor { return m.tensors }

// NumParams is the number of parameters.
func (m *Model) NumParams() int { return m.n }

// Params is the flat parameter buffer (see Tensors for its layout).
func (m *Model) Params() Buf { return m.params }

// Grads is the flat gradient buffer, laid out as Params.
func (m *Model) Grads() Buf { return m.grads }

// Init sets GLM's initial weights from seed (see Layout for the tensors).
func (m *Model) Init(seed uint64) error {
	host := make([]float32, m.n)
	initParams(host, m.tensors, m.cfg, seed)
	return m.SetParams(host)
}

// SetParams uploads a flat float32 parameter vector.
func (m *Model) SetParams(host []float32) error {
	if len(host) != m.n {
		return fmt.Errorf("trainer: %d parameter values for a model of %d", len(host), m.n)
	}
	m.be.Upload(m.params, host)
	if err := m.be.Err(); err != nil {
		return fmt.Errorf("trainer: upload parameters: %w", err)
	}
	return nil
}

// ParamsHost downloads the parameters as one flat float32 vector.
func (m *Model) ParamsHost() ([]float32, error) {
	host := make([]float32, m.n)
	if err := m.be.Download(host, m.params); err != nil {
		return nil, fmt.Errorf("trainer: download parameters: %w", err)
	}
	return host, nil
}

// ZeroGrad sets every gradient to 0.
func (m *Model) ZeroGrad() error {
	m.be.Zero(m.grads)
	return m.be.Err()
}

// Close frees the model's buffers and returns the backend's error, if
// any.
func (m *Model) Close() error {
	free(m.be, &m.params)
	free(m.be, &m.grads)
	m.acts.free(m.be)
	return m.be.Err()
}

// Pass says how a forward pass runs. With Train set, dropout is on and its
// masks are a function of (Seed, Step, Micro, site), so a resumed run
// draws the masks an uninterrupted one would.
type Pass struct {
	Train bool
	Seed  uint64
	Step  int
	Micro int
}

// key is the RNG key of one dropout site: 0 the embeddings, then per layer
// l 1+3l the attention probabilities, 2+3l the attention output, 3+3l the
// MLP output.
func (p Pass) key(site int) RNGKey {
	s := masking.Mix64(uint64(p.Step) + 0x9e3779b97f4a7c15)
	s = masking.Mix64(s + uint64(p.Micro))
	s = masking.Mix64(s + uint64(site))
	return RNGKey{Seed: p.Seed, Stream: s}
}

// Loss is the cross entropy of one forward pass over its loss positions.
type Loss struct {
	Sum    float64 // Σ CE over the loss positions (summed in float64, in order)
	Tokens int     // number of loss positions
	// ObjSum and ObjTokens split Sum and Tokens by the row's objective
	// (empty when the batch has no Objective column).
	ObjSum    [masking.NumObjectives]float64
	ObjTokens [masking.NumObjectives]int
}

// Mean is the token-mean loss, GLM's Σ(CE·mask)/Σ mask; 0 without tokens.
func (l Loss) Mean() float64 {
	if l.Tokens == 0 {
		return 0
	}
	return l.Sum / float64(l.Tokens)
}

// Add accumulates o into l.
func (l *Loss) Add(o Loss) {
	l.Sum += o.Sum
	l.Tokens += o.Tokens
	for i := range l.ObjSum {
		l.ObjSum[i] += o.ObjSum[i]
		l.ObjTokens[i] += o.ObjTokens[i]
	}
}

// checkBatch reports a batch whose slices do not match its B and T.
func checkBatch(b *loader.Batch) error {
	if b.B < 1 || b.T < 1 {
		return fmt.Errorf("trainer: batch of %d×%d", b.B, b.T)
	}
	bt := b.B * b.T
	for _, f := range []struct {
		name string
		n    int
	}{{"Input", len(b.Input)}, {"Target", len(b.Target)}, {"LossMask", len(b.LossMask)}, {"Pos", len(b.Pos)}, {"BlockPos", len(b.BlockPos)}} {
		if f.n < bt {
			return fmt.Errorf("trainer: batch %s has %d elements; want B·T = %d", f.name, f.n, bt)
		}
	}
	if len(b.Sep) < b.B {
		return fmt.Errorf("trainer: batch Sep has %d elements; want B = %d", len(b.Sep), b.B)
	}
	for i, s := range b.Sep[:b.B] {
		if s < 0 || int(s) > b.T {
			return fmt.Errorf("trainer: batch row %d has sep %d outside [0, %d]", i, s, b.T)
		}
	}
	return nil
}

// Forward runs the model on b and returns the loss over b's loss
// positions. With pass.Train, dropout is on. Backward may follow.
func (m *Model) Forward(b *loader.Batch, pass Pass) (Loss, error) {
	return m.forward(b, pass, false)
}

// forward is Forward; with keepLogits the logits stay in acts.logits
// (Backward cannot follow), else they are replaced by the probabilities.
// The ops are listed as llm.c lists them, each with the shapes it writes;
// the backend's first error, if any, comes back where the losses are read.
func (m *Model) forward(b *loader.Batch, pass Pass, keepLogits bool) (Loss, error) {
	if err := checkBatch(b); err != nil {
		return Loss{}, err
	}
	m.last.ok = false
	N, err := m.upload(b)
	if err != nil {
		return Loss{}, err
	}
	BT, C, V := b.B*b.T, m.cfg.Hidden, m.cfg.Vocab
	be, w, a := m.be, &m.w, &m.acts
	p, _ := m.dropouts(pass)

	// embeddings: inp, pos, bpos (B,T) → encoded (B,T,C), the residual stream
	be.EncoderForward(a.encoded, a.inp, a.pos, a.bpos, w.wte, w.wpe, w.wbpe, BT, C)
	dropout(be, a.encoded, BT*C, p, pass.key(0))
	x := a.encoded
	for l := range m.cfg.Layers {
		m.layerForward(l, x, b.B, b.T, pass)
		x = a.layers[l].res3
	}
	// final LayerNorm, then logits at the loss positions only
	be.LayerNormForward(a.lnf, a.lnfMean, a.lnfRstd, x, w.lnfw, w.lnfb, BT, C) // lnf (B,T,C)
	if N > 0 {
		be.GatherRows(a.hsel, a.lnf, a.sel, N, C)               // hsel (N,C)
		be.MatmulForward(a.logits, a.hsel, w.wte, nil, N, C, V) // logits (N,V) = hsel·wteᵀ
		probs := a.logits                                       // a training pass keeps only the probabilities
		if keepLogits {
			probs = nil
		}
		be.CrossEntropyForward(a.losses, probs, a.logits, a.tgt, N, V) // losses (N)
	}
	loss, err := m.readLoss(b, N)
	if err != nil {
		return Loss{}, fmt.Errorf("trainer: forward: %w", err)
	}
	m.last.ok, m.last.b, m.last.t, m.last.ns, m.last.pass = !keepLogits, b.B, b.T, N, pass
	return loss, nil
}

// upload sizes the activations for b and uploads its ids, positions, seps,
// loss positions (row-major) and their targets; it returns the number of
// loss positions.
func (m *Model) upload(b *loader.Batch) (int, error) {
	B, BT, be, a := b.B, b.B*b.T, m.be, &m.acts
	sel, tgt := m.host.sel[:0], m.host.tgt[:0]
	for i, mk := range b.LossMask[:BT] {
		if mk != 0 {
			sel = append(sel, int32(i))
			tgt = append(tgt, b.Target[i])
		}
	}
	m.host.sel, m.host.tgt = sel, tgt
	if err := a.ensure(be, m.cfg, B, b.T, len(sel)); err != nil {
		return 0, err
	}
	be.UploadInt32(a.inp, b.Input[:BT])
	be.UploadInt32(a.pos, b.Pos[:BT])
	be.UploadInt32(a.bpos, b.BlockPos[:BT])
	be.UploadInt32(a.sep, b.Sep[:B])
	be.UploadInt32(a.sel, sel)
	be.UploadInt32(a.tgt, tgt)
	return len(sel), nil
}

// dropouts returns the hidden and attention dropout of a pass.
func (m *Model) dropouts(pass Pass) (p, pa float32) {
	if !pass.Train {
		return 0, 0
	}
	return float32(m.cfg.HiddenDropout), float32(m.cfg.AttentionDropout)
}

// layerForward is block l on its input x (B,T,C): h = x + drop(Attn(LN1(x))),
// out = h + drop(MLP(LN2(h))).
func (m *Model) layerForward(l int, x Buf, B, T int, pass Pass) {
	be, lw, la := m.be, &m.w.layers[l], &m.acts.layers[l]
	BT, C, NH := B*T, m.cfg.Hidden, m.cfg.Heads
	p, pa := m.dropouts(pass)
	be.LayerNormForward(la.ln1, la.ln1Mean, la.ln1Rstd, x, lw.ln1w, lw.ln1b, BT, C) // ln1 (B,T,C), mean, rstd (B,T)
	be.MatmulForward(la.qkv, la.ln1, lw.qkvw, lw.qkvb, BT, C, 3*C)                  // qkv (B,T,3C)
	// qkv (B,T,3C), sep (B) → atty (B,T,C), attSaved
	be.AttentionForward(la.atty, la.attSaved, la.qkv, m.acts.sep, B, T, C, NH, pa, pass.key(1+3*l))
	be.MatmulForward(la.attproj, la.atty, lw.projw, lw.projb, BT, C, C) // attproj (B,T,C)
	dropout(be, la.attproj, BT*C, p, pass.key(2+3*l))
	be.ResidualForward(la.res2, x, la.attproj, BT*C)                                      // h = res2 (B,T,C)
	be.LayerNormForward(la.ln2, la.ln2Mean, la.ln2Rstd, la.res2, lw.ln2w, lw.ln2b, BT, C) // ln2 (B,T,C), mean, rstd (B,T)
	be.MatmulForward(la.fch, la.ln2, lw.fcw, lw.fcb, BT, C, 4*C)                          // fch (B,T,4C)
	be.GeluForward(la.fchGelu, la.fch, BT*4*C)                                            // fchGelu (B,T,4C)
	be.MatmulForward(la.fcproj, la.fchGelu, lw.fcprojw, lw.fcprojb, BT, 4*C, C)           // fcproj (B,T,C)
	dropout(be, la.fcproj, BT*C, p, pass.key(3+3*l))
	be.ResidualForward(la.res3, la.res2, la.fcproj, BT*C) // out = res3 (B,T,C)
}

// readLoss downloads the N losses of the last forward pass (reporting the
// backend's first error, if any) and sums them, per objective too.
func (m *Model) readLoss(b *loader.Batch, N int) (Loss, error) {
	var loss Loss
	if N == 0 {
		return loss, m.be.Err()
	}
	losses := make([]float64, N)
	if err := m.be.DownloadFloat64(losses, m.acts.losses); err != nil {
		return Loss{}, err
	}
	withObj := len(b.Objective) >= b.B
	for i, v := range losses {
		loss.Sum += v
		if withObj {
			o := b.Objective[int(m.host.sel[i])/b.T]
			if int(o) < masking.NumObjectives {
				loss.ObjSum[o] += v
				loss.ObjTokens[o]++
			}
		}
	}
	loss.Tokens = N
	return loss, nil
}

// dropout applies dropout in place; p = 0 is a no-op.
func dropout(be Backend, x Buf, n int, p float32, key RNGKey) {
	if p > 0 {
		be.Dropout(x, x, n, p, key)
	}
}

// Backward accumulates into Grads the gradient of scale·Σ CE of the last
// Forward (scale = 1/tokens gives the token mean). It overwrites the
// output layer's probabilities, so it runs at most once per Forward. The
// ops are the forward pass's backward pairs in reverse order.
func (m *Model) Backward(scale float64) error {
	if !m.last.ok {
		return errors.New("trainer: backward without a forward pass (or twice for one)")
	}
	m.last.ok = false
	B, T, N, pass := m.last.b, m.last.t, m.last.ns, m.last.pass
	BT, C, V := B*T, m.cfg.Hidden, m.cfg.Vocab
	be, w, g, a, d := m.be, &m.w, &m.g, &m.acts, &m.acts.grad
	p, _ := m.dropouts(pass)
	xL := a.encoded // the input of the final LayerNorm
	if L := m.cfg.Layers; L > 0 {
		xL = a.layers[L-1].res3
	}

	// output layer: logits (N,V) → dlogits; hsel (N,C), wte (V,C) → dhsel,
	// dwte; dhsel scattered to dlnf (B,T,C); final LayerNorm → dres (B,T,C)
	be.Zero(d.lnf)
	if N > 0 {
		be.CrossEntropyBackward(a.logits, a.logits, a.tgt, N, V, scale) // dlogits (N,V), over the probabilities
		be.Zero(d.hsel)
		be.MatmulBackward(d.hsel, g.wte, nil, a.logits, a.hsel, w.wte, N, C, V) // dhsel (N,C), dwte (V,C) +=
		be.ScatterAddRows(d.lnf, d.hsel, a.sel, N, C)                           // dlnf (B,T,C)
	}
	be.Zero(d.res)
	be.LayerNormBackward(d.res, g.lnfw, g.lnfb, d.lnf, xL, w.lnfw, a.lnfMean, a.lnfRstd, BT, C) // dres (B,T,C)
	for l := m.cfg.Layers - 1; l >= 0; l-- {
		x := a.encoded // this layer's input
		if l > 0 {
			x = a.layers[l-1].res3
		}
		m.layerBackward(l, x, B, T, pass) // d.res: d out → d x
	}
	// embeddings: d encoded (B,T,C) through the embedding dropout → dwte, dwpe, dwbpe +=
	dropout(be, d.res, BT*C, p, pass.key(0))
	be.EncoderBackward(g.wte, g.wpe, g.wbpe, d.res, a.inp, a.pos, a.bpos, BT, C)
	if err := be.Err(); err != nil {
		return fmt.Errorf("trainer: backward: %w", err)
	}
	return nil
}

// layerBackward is block l's backward pass: d.res holds d out (B,T,C) and
// becomes d x; the parameter gradients accumulate (+=).
func (m *Model) layerBackward(l int, x Buf, B, T int, pass Pass) {
	be, lw, lg, la, d := m.be, &m.w.layers[l], &m.g.layers[l], &m.acts.layers[l], &m.acts.grad
	BT, C, NH := B*T, m.cfg.Hidden, m.cfg.Heads
	p, pa := m.dropouts(pass)
	// out = h + drop(fcproj): d fcproj = drop(d out); d h = d out + the MLP's
	dproj := dropoutGrad(be, d.tmp, d.res, BT*C, p, pass.key(3+3*l))
	be.Zero(d.fchGelu)
	// → d fchGelu (B,T,4C), d fcprojw (C,4C), d fcprojb (C)
	be.MatmulBackward(d.fchGelu, lg.fcprojw, lg.fcprojb, dproj, la.fchGelu, lw.fcprojw, BT, 4*C, C)
	be.Zero(d.fch)
	be.GeluBackward(d.fch, la.fch, d.fchGelu, BT*4*C) // d fch (B,T,4C)
	be.Zero(d.ln)
	be.MatmulBackward(d.ln, lg.fcw, lg.fcb, d.fch, la.ln2, lw.fcw, BT, C, 4*C) // d ln2 (B,T,C), d fcw (4C,C), d fcb (4C)
	// → d h = d res2 (B,T,C) +=, d ln2w, d ln2b (C)
	be.LayerNormBackward(d.res, lg.ln2w, lg.ln2b, d.ln, la.res2, lw.ln2w, la.ln2Mean, la.ln2Rstd, BT, C)
	// h = x + drop(attproj): d attproj = drop(d h); d x = d h + the attention's
	dproj = dropoutGrad(be, d.tmp, d.res, BT*C, p, pass.key(2+3*l))
	be.Zero(d.atty)
	be.MatmulBackward(d.atty, lg.projw, lg.projb, dproj, la.atty, lw.projw, BT, C, C) // d atty (B,T,C), d projw (C,C), d projb (C)
	be.Zero(d.qkv)
	// → d qkv (B,T,3C)
	be.AttentionBackward(d.qkv, d.att, d.atty, la.qkv, la.attSaved, m.acts.sep, B, T, C, NH, pa, pass.key(1+3*l))
	be.Zero(d.ln)
	be.MatmulBackward(d.ln, lg.qkvw, lg.qkvb, d.qkv, la.ln1, lw.qkvw, BT, C, 3*C) // d ln1 (B,T,C), d qkvw (3C,C), d qkvb (3C)
	// → d x (B,T,C) +=, d ln1w, d ln1b (C)
	be.LayerNormBackward(d.res, lg.ln1w, lg.ln1b, d.ln, x, lw.ln1w, la.ln1Mean, la.ln1Rstd, BT, C)
}

// dropoutGrad returns the gradient of a dropout's input given the gradient
// dy of its output: dy itself when p = 0, else its masked copy in tmp.
func dropoutGrad(be Backend, tmp, dy Buf, n int, p float32, key RNGKey) Buf {
	if p == 0 {
		return dy
	}
	be.Dropout(tmp, dy, n, p, key)
	return tmp
}

// Logits runs the model on b without dropout and returns the logits at b's
// loss positions, (N,V) row-major in the order of the positions. The loss
// positions' targets must be valid ids.
func (m *Model) Logits(b *loader.Batch) ([]float32, error) {
	if _, err := m.forward(b, Pass{}, true); err != nil {
		return nil, err
	}
	out := make([]float32, m.acts.ns*m.cfg.Vocab)
	if len(out) == 0 {
		return out, nil
	}
	if err := m.be.Download(out, m.acts.logits.Slice(0, len(out))); err != nil {
		return nil, fmt.Errorf("trainer: download logits: %w", err)
	}
	return out, nil
}

// GradNorm returns the global L2 norm of the gradients.
func (m *Model) GradNorm() (float64, error) {
	ss, err := m.be.SumSquares(m.grads)
	if err != nil {
		return 0, fmt.Errorf("trainer: gradient norm: %w", err)
	}
	return math.Sqrt(ss), nil
}
