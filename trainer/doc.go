// Package trainer trains GLM language models (Du et al. 2022) on glmkit
// shards: the model, the backend interface its ops run on, AdamW with
// GLM's schedule, the training loop, evaluation, checkpoints and infilling.
//
// # Model
//
// The model is GLM as in THUDM/GLM (glm-reference.md §5): word + position
// (dim 1) + block position (dim 2) embeddings summed, embedding dropout;
// pre-LN blocks (h = x + Attn(LN1(x)); out = h + MLP(LN2(h))); a fused QKV
// projection split into contiguous thirds q|k|v; attention where row i of a
// batch row with Part A length sep sees key j iff j < sep or j ≤ i; a tanh
// GeLU MLP of width 4h; a final LayerNorm; logits tied to the word
// embedding over the padded vocabulary; and the token-mean cross entropy
// over the loss positions, Σ(CE·mask)/Σ mask. Layout lists the parameters
// with their PyTorch state-dict names; checkpoints use those names, so
// PyTorch loads them directly (testdata/glm_torch.py is the same model in
// PyTorch).
//
// The code follows llm.c: parameters and gradients are one flat allocation
// each, every layer is a forward/backward pair of Backend ops with shape
// comments, and Model.Forward, Model.Backward and Train read top to bottom.
//
// # Backends
//
// Backend is the set of ops the model needs, on buffers the backend owns
// (float32 master weights or wider). Its errors stick, as in arrow-go's IPC
// writer: an op returns nothing, the first error is kept and the ops after
// it do nothing, and the calls that read results (Download, SumSquares,
// Sync, Err) report it; so a pass is a plain list of ops, checked where its
// loss is read. Package trainer/cpu implements it in Go, multi-threaded,
// with OpenBLAS through purego when present; trainer/cuda on NVIDIA GPUs. The CPU backend's float64
// instantiation is the oracle of the gradient checks and of the parity test
// against PyTorch.
//
// # Training
//
// Train runs AdamW (β 0.9/0.98, ε 1e-6, decoupled weight decay 0.1 except
// biases and LayerNorm), linear warmup then cosine decay to a floor,
// global-norm clipping at 1.0 and gradient accumulation, where a step's
// loss is the token mean over all of its micro-batches' loss positions.
// Dropout masks are a pure function of (seed, step, micro-batch, site), and
// a checkpoint stores the weights, AdamW's moments, the step and the
// loader's position, so a resumed run is bitwise identical to an
// uninterrupted one on the CPU, whatever the thread count.
//
// # Outputs
//
// Train writes OUT/metrics.jsonl (one JSON object per logged step: step,
// loss, lr, grad_norm, tokens_per_s, and eval_loss, eval_ppl and
// eval_loss_<objective> when evaluated) and OUT/ckpt-NNNNNNNN checkpoint
// directories (see SaveCheckpoint for their files).
package trainer
