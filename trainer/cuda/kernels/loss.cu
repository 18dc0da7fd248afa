// loss.cu: softmax cross entropy, the gradient norm's sum of squares and
// AdamW.

// crossentropy_forward: one block per row. logits (N,V); targets (N) →
// losses (N) = logsumexp(row) − row[target], and, when probs is not null,
// the softmax (probs may alias logits). The sum of exponentials runs in
// double, as on the CPU. Grid N.
extern "C" __global__ void __launch_bounds__(1024) crossentropy_forward(float* losses, float* probs, const float* logits, const int* targets,
	int n, int v) {
	__shared__ float sh[1024];
	__shared__ double shd[1024];
	long long row = blockIdx.x;
	const float* x = logits + row * v;
	float target = x[targets[row]]; // read before probs may overwrite it
	float mx = NEG_INF;
	for (int j = threadIdx.x; j < v; j += blockDim.x) {
		mx = fmaxf(mx, x[j]);
	}
	mx = block_max(mx, sh);
	double s = 0.0;
	for (int j = threadIdx.x; j < v; j += blockDim.x) {
		s += (double)expf(x[j] - mx);
	}
	s = block_sum(s, shd);
	if (threadIdx.x == 0) {
		losses[row] = (float)((double)mx + log(s) - (double)target);
	}
	if (probs != 0) {
		float inv = (float)(1.0 / s);
		float* p = probs + row * v;
		for (int j = threadIdx.x; j < v; j += blockDim.x) {
			p[j] = expf(x[j] - mx) * inv;
		}
	}
}

// crossentropy_backward: dlogits = scale·(probs − onehot(targets));
// dlogits may alias probs.
extern "C" __global__ void crossentropy_backward(float* dlogits, const float* probs, const int* targets, int n, int v,
	float scale) {
	GRID_STRIDE(e, (long long)n * v) {
		long long row = e / v;
		float d = scale * probs[e];
		if (e - row * v == targets[row]) {
			d -= scale;
		}
		dlogits[e] = d;
	}
}

// sumsq_partial: block k sums x² over [k·chunk, (k+1)·chunk) in double into
// partials[k]; the host adds the partials in order.
extern "C" __global__ void sumsq_partial(double* partials, const float* x, long long n, long long chunk) {
	__shared__ double shd[1024];
	long long lo = (long long)blockIdx.x * chunk;
	long long hi = lo + chunk < n ? lo + chunk : n;
	double s = 0.0;
	for (long long i = lo + threadIdx.x; i < hi; i += blockDim.x) {
		double v = (double)x[i];
		s += v * v;
	}
	s = block_sum(s, shd);
	if (threadIdx.x == 0) {
		partials[blockIdx.x] = s;
	}
}

// adamw is PyTorch's AdamW step in float32, with the CPU backend's
// expression: bias corrections come from the host as step_size = lr/bc1
// and inv_sqrt_bc2 = 1/√bc2, decay = 1 − lr·weight_decay.
extern "C" __global__ void adamw(float* p, const float* g, float* m, float* v, long long n, float beta1, float beta2,
	float eps, float step_size, float inv_sqrt_bc2, float decay, float grad_scale) {
	GRID_STRIDE(i, n) {
		float gi = g[i] * grad_scale;
		float mi = beta1 * m[i] + (1.0f - beta1) * gi;
		float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
		m[i] = mi;
		v[i] = vi;
		p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
	}
}
