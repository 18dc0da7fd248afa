package trainer

import "github.com/glmkit/glmkit/masking"

// Buf is a buffer owned by a Backend: float elements in the backend's
// precision, or int32 elements. On the CPU it is host memory; on a GPU it
// is device memory the host never touches directly. A Buf is valid until
// the backend frees it; views made by Slice share its memory and must not
// outlive it.
type Buf interface {
	// Len is the number of elements.
	Len() int
	// Slice returns the view of elements [off, off+n).
	Slice(off, n int) Buf
}

// RNGKey names the dropout masks of one dropout site in one micro-batch.
// Whether element i is kept is a pure function of (Seed, Stream, i) fixed by
// the backend, so a mask can be regenerated in the backward pass and a
// resumed run draws the same masks as an uninterrupted one.
type RNGKey struct {
	Seed   uint64
	Stream uint64
}

// Block returns the PCG (math/rand/v2) seeds of block b of the key's
// masks. The CPU backend decides element i of a mask by draw i mod its
// block size of rand.NewPCG(key.Block(i / block size)), and the CUDA
// kernels compute the same seeds (kernels/prelude.cuh): the scheme the
// checkpoints name, "pcg(seed, mix(step, micro, site, block)) v1".
func (k RNGKey) Block(b uint64) (seed, stream uint64) {
	return k.Seed, masking.Mix64(k.Stream ^ masking.Mix64(b+0x9e3779b97f4a7c15))
}

// AdamWStep holds the hyperparameters of one AdamW update of one group of
// parameters (PyTorch's AdamW, with bias correction).
type AdamWStep struct {
	LR          float64 // learning rate of this step
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64 // decoupled: p -= LR·WeightDecay·p before the Adam step
	GradScale   float64 // the gradients are multiplied by this first (clipping)
	T           int     // 1-based step number, for bias correction
}

// Backend runs the model's ops on buffers it owns. The model is written
// once against this interface (llm.c-style forward/backward pairs); the CPU
// backend (package trainer/cpu) is the reference, a CUDA backend plugs in
// the same way.
//
// Conventions, as in llm.c:
//   - Every float tensor is a row-major Buf; shapes are given in the method
//     comments as (B,T,C) etc. N is the number of rows (B·T or fewer).
//   - Linear weights are (OC, C), PyTorch's nn.Linear layout: out = inp·Wᵀ + b.
//   - Backward methods accumulate (+=) into every gradient they are given,
//     both parameter and activation gradients; the caller zeroes them.
//   - Results must not depend on how many threads the backend uses (fixed
//     partitions, reductions in a fixed order), so training is reproducible.
//   - Float parameters are the master weights, float32 or wider; a backend
//     may compute in lower precision internally.
//
// Methods may run asynchronously on a device; Download and Sync wait. A
// Backend is not safe for concurrent use.
//
// Errors stick, as in arrow-go's IPC writer (and bufio.Writer): the ops
// return nothing, the first error of any of them (a bad argument, a failed
// launch, a fault on the device) is kept, every op after it does nothing,
// and Download, DownloadFloat64, SumSquares, Sync and Err report it. So a
// model's pass is a plain list of ops, checked once where its result is
// read. Floats and Int32s return their own errors (a failed allocation
// leaves the backend usable).
type Backend interface {
	// Name describes the backend, e.g. "cpu (openblas, 2 threads, float32)".
	Name() string
	// Err returns the first error of an op so far, without waiting for the
	// queued work (Sync waits).
	Err() error
	// Close releases everything the backend holds (its buffers, a
	// device); the backend and its buffers are unusable afterwards. It
	// reports a failure to release, not an earlier op's error (Err does).
	Close() error

	// Floats allocates n zeroed float elements.
	Floats(n int) (Buf, error)
	// Int32s allocates n zeroed int32 elements.
	Int32s(n int) (Buf, error)
	// Free releases a buffer returned by Floats or Int32s (not a view).
	Free(b Buf)
	// Upload copies src into dst; len(src) == dst.Len().
	Upload(dst Buf, src []float32)
	// UploadInt32 copies src into the int32 buffer dst; len(src) == dst.Len().
	UploadInt32(dst Buf, src []int32)
	// Download copies src into dst; len(dst) == src.Len(). It waits for the
	// queued work and returns the backend's error, if any.
	Download(dst []float32, src Buf) error
	// DownloadFloat64 is Download into float64, exact for a float64
	// backend (the losses, and the tests' float64 oracle, read through it).
	DownloadFloat64(dst []float64, src Buf) error
	// Zero sets every element of b to 0.
	Zero(b Buf)
	// Sync waits until all queued work has finished and returns the
	// backend's error, if any.
	Sync() error

	// EncoderForward sums the three embeddings of GLM's input.
	// inp, pos, bpos (N) int32; wte (V,C), wpe (P,C), wbpe (P,C) → out (N,C)
	EncoderForward(out, inp, pos, bpos, wte, wpe, wbpe Buf, n, c int)
	// EncoderBackward scatters dout into the three tables.
	// dout (N,C); inp, pos, bpos (N) → dwte (V,C), dwpe (P,C), dwbpe (P,C) +=
	EncoderBackward(dwte, dwpe, dwbpe, dout, inp, pos, bpos Buf, n, c int)

	// LayerNormForward normalises each row (eps 1e-5, biased variance).
	// inp (N,C); w, b (C) → out (N,C), mean (N), rstd (N)
	LayerNormForward(out, mean, rstd, inp, w, b Buf, n, c int)
	// LayerNormBackward: dout, inp (N,C); w (C); mean, rstd (N) → dinp (N,C), dw, db (C) +=
	LayerNormBackward(dinp, dw, db, dout, inp, w, mean, rstd Buf, n, c int)

	// MatmulForward is a linear layer; bias may be nil.
	// inp (N,C); w (OC,C); bias (OC) → out (N,OC) = inp·wᵀ + bias
	MatmulForward(out, inp, w, bias Buf, n, c, oc int)
	// MatmulBackward: dout (N,OC); inp (N,C); w (OC,C) → dinp (N,C), dw (OC,C), dbias (OC) +=.
	// dinp and dbias may be nil.
	MatmulBackward(dinp, dw, dbias, dout, inp, w Buf, n, c, oc int)

	// AttentionSizes returns the floats the attention of a B×T batch needs:
	// saved, per layer, kept from the forward to the backward pass (the CPU
	// keeps the probabilities; a flash-style kernel would keep the row
	// statistics), and scratch, shared by all layers' backward passes.
	AttentionSizes(b, t, c, nh int, dropout bool) (saved, scratch int)
	// AttentionForward is GLM's multi-head attention core on a fused QKV
	// activation whose last dimension is three contiguous thirds q|k|v, each
	// nh heads of c/nh. Row i of batch row b sees key j iff j < sep[b] or
	// j <= i (bidirectional over Part A, causal after it; padding rows after
	// Part B are causal and no real row sees them). Scores are scaled by
	// 1/√(c/nh); dropout p on the probabilities draws its mask from key.
	// qkv (B,T,3C); sep (B) int32 → out (B,T,C), saved (AttentionSizes)
	AttentionForward(out, saved, qkv, sep Buf, b, t, c, nh int, p float32, key RNGKey)
	// AttentionBackward: dout (B,T,C); qkv (B,T,3C); saved from the forward
	// pass with the same p and key; scratch is overwritten → dqkv (B,T,3C) +=
	AttentionBackward(dqkv, scratch, dout, qkv, saved, sep Buf, b, t, c, nh int, p float32, key RNGKey)

	// GeluForward is the tanh approximation 0.5x(1+tanh(√(2/π)(x+0.044715x³))),
	// √(2/π) = 0.7978845608028654 as in GLM's gelu_impl.
	// inp (N) → out (N)
	GeluForward(out, inp Buf, n int)
	// GeluBackward: inp, dout (N) → dinp (N) +=
	GeluBackward(dinp, inp, dout Buf, n int)

	// ResidualForward: a, b (N) → out (N) = a + b
	ResidualForward(out, a, b Buf, n int)
	// Dropout keeps each element with probability 1−p and scales it by
	// 1/(1−p); the mask is fixed by key. dst may alias src. Applied to a
	// gradient with the same key it is the backward pass.
	// src (N) → dst (N)
	Dropout(dst, src Buf, n int, p float32, key RNGKey)

	// GatherRows: src (M,C); idx (N) int32 → dst (N,C), dst[i] = src[idx[i]]
	GatherRows(dst, src, idx Buf, n, c int)
	// ScatterAddRows: src (N,C); idx (N) int32, distinct → dst (M,C), dst[idx[i]] += src[i]
	ScatterAddRows(dst, src, idx Buf, n, c int)

	// CrossEntropyForward computes each row's loss, logsumexp(logits[i]) −
	// logits[i][targets[i]], and, when probs is not nil, the softmax (probs
	// may alias logits: a training pass keeps only the probabilities).
	// logits (N,V); targets (N) int32 → losses (N), probs (N,V)
	CrossEntropyForward(losses, probs, logits, targets Buf, n, v int)
	// CrossEntropyBackward is the gradient of scale·Σ losses with respect to
	// the logits, scale·(probs − onehot(targets)); dlogits may alias probs.
	// probs (N,V); targets (N) → dlogits (N,V)
	CrossEntropyBackward(dlogits, probs, targets Buf, n, v int, scale float64)

	// SumSquares returns Σ x², accumulated in float64 in a fixed order.
	SumSquares(x Buf) (float64, error)
	// AdamW updates the parameters p in place from their gradients g and the
	// moments m and v (all the same length).
	AdamW(p, g, m, v Buf, s AdamWStep)
}
