// layernorm.cu: LayerNorm forward and backward, one thread block per row
// (eps 1e-5, biased variance; statistics in double as on the CPU).

// layernorm_forward: inp (N,C); w, b (C) → out (N,C), mean (N), rstd (N).
// Grid N.
extern "C" __global__ void __launch_bounds__(1024) layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
	const float* b, int n, int c) {
	__shared__ double shd[1024];
	long long row = blockIdx.x;
	const float* x = inp + row * c;
	double s = 0.0;
	for (int j = threadIdx.x; j < c; j += blockDim.x) {
		s += (double)x[j];
	}
	s = block_sum(s, shd);
	double m = s / c;
	double ss = 0.0;
	for (int j = threadIdx.x; j < c; j += blockDim.x) {
		double d = (double)x[j] - m;
		ss += d * d;
	}
	ss = block_sum(ss, shd);
	float mf = (float)m;
	float rf = (float)(1.0 / sqrt(ss / c + 1e-5));
	float* o = out + row * c;
	for (int j = threadIdx.x; j < c; j += blockDim.x) {
		o[j] = (x[j] - mf) * rf * w[j] + b[j];
	}
	if (threadIdx.x == 0) {
		mean[row] = mf;
		rstd[row] = rf;
	}
}

// layernorm_backward_input: dout, inp (N,C); w (C); mean, rstd (N) →
// dinp (N,C) +=. Grid N.
extern "C" __global__ void __launch_bounds__(1024) layernorm_backward_input(float* dinp, const float* dout, const float* inp, const float* w,
	const float* mean, const float* rstd, int n, int c) {
	__shared__ float sh[1024];
	long long row = blockIdx.x;
	const float* x = inp + row * c;
	const float* g = dout + row * c;
	float* d = dinp + row * c;
	float m = mean[row];
	float r = rstd[row];
	float dmean = 0.0f;
	float dnormMean = 0.0f;
	for (int j = threadIdx.x; j < c; j += blockDim.x) {
		float dnorm = w[j] * g[j];
		dmean += dnorm;
		dnormMean += dnorm * (x[j] - m) * r;
	}
	dmean = block_sum(dmean, sh) / (float)c;
	dnormMean = block_sum(dnormMean, sh) / (float)c;
	for (int j = threadIdx.x; j < c; j += blockDim.x) {
		float norm = (x[j] - m) * r;
		d[j] += (w[j] * g[j] - dmean - norm * dnormMean) * r;
	}
}

// layernorm_backward_params_partial sums dw and db over chunks of rows:
// grid (ceil(C/blockDim), chunks) → pw, pb (chunks,C); colsum_add finishes.
extern "C" __global__ void layernorm_backward_params_partial(float* pw, float* pb, const float* dout, const float* inp,
	const float* mean, const float* rstd, int n, int c, int rows_per_chunk) {
	COLUMN_CHUNK(j, r0, r1, n, rows_per_chunk)
	if (j < c) {
		float sw = 0.0f;
		float sb = 0.0f;
		for (int i = r0; i < r1; i++) {
			float g = dout[(long long)i * c + j];
			sw += (inp[(long long)i * c + j] - mean[i]) * rstd[i] * g;
			sb += g;
		}
		pw[(long long)blockIdx.y * c + j] = sw;
		pb[(long long)blockIdx.y * c + j] = sb;
	}
}
