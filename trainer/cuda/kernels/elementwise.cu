// elementwise.cu: embeddings, GeLU, residuals, dropout, row gathers,
// conversions and column sums.

// encoder_forward sums the three embeddings of GLM's input.
// inp, pos, bpos (N); wte (V,C), wpe (P,C), wbpe (P,C) → out (N,C)
extern "C" __global__ void encoder_forward(float* out, const int* inp, const int* pos, const int* bpos,
	const float* wte, const float* wpe, const float* wbpe, int n, int c) {
	GRID_STRIDE(idx, (long long)n * c) {
		long long i = idx / c;
		long long j = idx - i * c;
		out[idx] = wte[(long long)inp[i] * c + j] + wpe[(long long)pos[i] * c + j] + wbpe[(long long)bpos[i] * c + j];
	}
}

// The embedding backward sums, for every table row, the gradient rows of
// the positions with that id, without atomics: the host groups positions
// by id (rows, in increasing order) and cuts each group into pieces of at
// most 64; embed_backward_partial sums each piece, and embed_backward_add
// adds a group's pieces, in order, to its table row. Grids (pieces or
// groups, ceil(C/blockDim)).

// embed_backward_partial: partials[q] = Σ dout[rows[k]] over k in
// [piece_start[q], piece_start[q+1]).
extern "C" __global__ void embed_backward_partial(float* partials, const float* dout, const int* rows,
	const int* piece_start, int c) {
	int q = blockIdx.x;
	int j = blockIdx.y * blockDim.x + threadIdx.x;
	if (j < c) {
		float acc = 0.0f;
		for (int k = piece_start[q]; k < piece_start[q + 1]; k++) {
			acc += dout[(long long)rows[k] * c + j];
		}
		partials[(long long)q * c + j] = acc;
	}
}

// embed_backward_add: dtable[group_id[s]] += Σ partials[q] over q in
// [group_piece[s], group_piece[s+1]), in order.
extern "C" __global__ void embed_backward_add(float* dtable, const float* partials, const int* group_piece,
	const int* group_id, int c) {
	int s = blockIdx.x;
	int j = blockIdx.y * blockDim.x + threadIdx.x;
	if (j < c) {
		float* dst = dtable + (long long)group_id[s] * c + j;
		float acc = *dst;
		for (int q = group_piece[s]; q < group_piece[s + 1]; q++) {
			acc += partials[(long long)q * c + j];
		}
		*dst = acc;
	}
}

// gelu_forward: out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
extern "C" __global__ void gelu_forward(float* out, const float* inp, long long n) {
	GRID_STRIDE(i, n) {
		float x = inp[i];
		float t = tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x));
		out[i] = 0.5f * x * (1.0f + t);
	}
}

// gelu_backward: dinp += dout · gelu'(inp)
extern "C" __global__ void gelu_backward(float* dinp, const float* inp, const float* dout, long long n) {
	GRID_STRIDE(i, n) {
		float x = inp[i];
		float t = tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x));
		float du = 0.7978845608028654f * (1.0f + 0.134145f * x * x);
		dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
	}
}

// residual_forward: out = a + b
extern "C" __global__ void residual_forward(float* out, const float* a, const float* b, long long n) {
	GRID_STRIDE(i, n) { out[i] = a[i] + b[i]; }
}

// dropout keeps element i with the CPU backend's mask: draw i mod 4096 of
// the stream of block i / 4096. Each thread decides 8 consecutive elements;
// jump holds, for k in [0, 512), the map of 8k+1 steps (a thread's first
// draw within its 4096-element block). dst may alias src.
extern "C" __global__ void dropout(float* dst, const float* src, long long n, u32 thr, float scale, u64 seed,
	u64 stream, const u64* jump) {
	long long nt = (n + 7) / 8;
	GRID_STRIDE(t, nt) {
		long long i0 = t * 8;
		u128 st = pcg_jump(pcg_start(seed, stream, (u64)(i0 / 4096)), jump + 4 * ((i0 % 4096) / 8));
		for (int k = 0; k < 8 && i0 + k < n; k++) {
			if (k > 0) {
				st = pcg_step(st);
			}
			float x = src[i0 + k];
			dst[i0 + k] = pcg_keep(pcg_output(st), thr) ? x * scale : 0.0f;
		}
	}
}

// gather_rows: dst[i] = src[idx[i]], rows of C.
extern "C" __global__ void gather_rows(float* dst, const float* src, const int* idx, int n, int c) {
	GRID_STRIDE(e, (long long)n * c) {
		long long i = e / c;
		long long j = e - i * c;
		dst[e] = src[(long long)idx[i] * c + j];
	}
}

// scatter_add_rows: dst[idx[i]] += src[i]; idx has no repeats.
extern "C" __global__ void scatter_add_rows(float* dst, const float* src, const int* idx, int n, int c) {
	GRID_STRIDE(e, (long long)n * c) {
		long long i = e / c;
		long long j = e - i * c;
		dst[(long long)idx[i] * c + j] += src[e];
	}
}

// to_bf16 rounds float32 to bfloat16 (nearest even), for the GEMM operands.
extern "C" __global__ void to_bf16(bf16* dst, const float* src, long long n) {
	GRID_STRIDE(i, n) { dst[i] = float_to_bf16(src[i]); }
}

// bias_rows sets every row of out to bias, before a GEMM adds inp·wᵀ.
extern "C" __global__ void bias_rows(float* out, const float* bias, int n, int oc) {
	GRID_STRIDE(e, (long long)n * oc) { out[e] = bias[e % oc]; }
}

// colsum_partial sums the columns of x (N,C) over chunks of rows: grid
// (ceil(C/blockDim), chunks) → partials (chunks,C). colsum_add then adds the
// chunks in order, so the result is deterministic.
extern "C" __global__ void colsum_partial(float* partials, const float* x, int n, int c, int rows_per_chunk) {
	COLUMN_CHUNK(j, r0, r1, n, rows_per_chunk)
	if (j < c) {
		float s = 0.0f;
		for (int i = r0; i < r1; i++) {
			s += x[(long long)i * c + j];
		}
		partials[(long long)blockIdx.y * c + j] = s;
	}
}

// colsum_add: dst (C) += Σ_k partials[k] in order.
extern "C" __global__ void colsum_add(float* dst, const float* partials, int chunks, int c) {
	GRID_STRIDE(j, c) {
		float s = 0.0f;
		for (int k = 0; k < chunks; k++) {
			s += partials[(long long)k * c + j];
		}
		dst[j] += s;
	}
}
