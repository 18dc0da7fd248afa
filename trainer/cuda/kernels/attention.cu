// attention.cu: the non-GEMM parts of GLM's naive attention. The backend
// permutes q, k, v into (B,NH,T,hs), computes the scores and products with
// strided batched GEMMs, and these kernels do the masked softmax (row i of
// batch row b sees key j iff j < sep[b] or j <= i), its dropout and its
// backward, one thread block per score row. Thread tid of a row kernel
// owns the keys [tid·chunk, (tid+1)·chunk), chunk = ceil(T/blockDim), so
// its dropout draws start at draw tid·chunk of the row's stream.

#define ROW_RANGE(j0, j1, t)                                  \
	int chunk_ = ((t) + (int)blockDim.x - 1) / (int)blockDim.x; \
	int j0 = (int)threadIdx.x * chunk_;                       \
	int j1 = j0 + chunk_ < (t) ? j0 + chunk_ : (t);

// row_visible is the number of keys score row `row` of (B,NH,T) sees.
__device__ __forceinline__ int row_visible(const int* sep, int nh, int t, long long row) {
	int i = (int)(row % t);
	int bb = (int)(row / ((long long)t * nh));
	return visible(sep[bb], i, t);
}

// dropout_keys sets y[j] = x[j]·dscale where draw j of the row's stream
// keeps key j and 0 where it drops it, for this thread's visible keys
// [j0, jv); y may be x.
__device__ void dropout_keys(float* y, const float* x, int j0, int jv, u32 thr, float dscale, u64 seed, u64 stream,
	long long row, const u64* jump) {
	if (j0 >= jv) {
		return;
	}
	u128 st = pcg_jump(pcg_start(seed, stream, (u64)row), jump + 4 * threadIdx.x);
	for (int j = j0; j < jv; j++) {
		if (j > j0) {
			st = pcg_step(st);
		}
		y[j] = pcg_keep(pcg_output(st), thr) ? x[j] * dscale : 0.0f;
	}
}

// store_bf16_keys writes x[j0:j1] to q as bf16, when q is not null.
__device__ __forceinline__ void store_bf16_keys(bf16* q, const float* x, int j0, int j1) {
	if (q != 0) {
		for (int j = j0; j < j1; j++) {
			q[j] = float_to_bf16(x[j]);
		}
	}
}

// permute_heads: src (B,T,·) with row stride `stride`, head h in columns
// [h·hs, (h+1)·hs) → dst (B,NH,T,hs), float or bf16.
extern "C" __global__ void permute_heads(void* dst, const float* src, int b, int t, int nh, int hs, int stride, int bf) {
	GRID_STRIDE(idx, (long long)b * nh * t * hs) {
		long long d = idx % hs;
		long long i = (idx / hs) % t;
		long long h = (idx / ((long long)hs * t)) % nh;
		long long bb = idx / ((long long)hs * t * nh);
		store_elem(dst, idx, src[(bb * t + i) * stride + h * hs + d], bf);
	}
}

// unpermute_heads: src (B,NH,T,hs) → dst (B,T,·) with row stride `stride`,
// head h in columns [h·hs, (h+1)·hs); accumulate adds instead of storing.
extern "C" __global__ void unpermute_heads(float* dst, const float* src, int b, int t, int nh, int hs, int stride,
	int accumulate) {
	GRID_STRIDE(idx, (long long)b * t * nh * hs) {
		long long d = idx % hs;
		long long h = (idx / hs) % nh;
		long long i = (idx / ((long long)hs * nh)) % t;
		long long bb = idx / ((long long)hs * nh * t);
		float v = src[((bb * nh + h) * t + i) * hs + d];
		float* o = dst + (bb * t + i) * stride + h * hs + d;
		if (accumulate) {
			*o += v;
		} else {
			*o = v;
		}
	}
}

// attn_softmax_forward turns scores into probabilities in place, row by
// row: softmax over the visible keys, 0 elsewhere. With dropout set it
// writes the dropped-out probabilities (kept ones times dscale) to attd,
// from draw j of the stream of row (b·NH+h)·T+i for visible key j. pmat,
// when not null, receives the matrix the P·V product reads (attd with
// dropout, else att) as bf16. jump holds each thread's first-draw jump.
// Grid B·NH·T.
extern "C" __global__ void __launch_bounds__(1024) attn_softmax_forward(float* att, float* attd, bf16* pmat, const int* sep, int nh, int t,
	int dropout, u32 thr, float dscale, u64 seed, u64 stream, const u64* jump) {
	__shared__ float sh[1024];
	long long row = blockIdx.x;
	int n = row_visible(sep, nh, t, row);
	float* x = att + row * t;
	ROW_RANGE(j0, j1, t)
	int jv = j1 < n ? j1 : n;
	float mx = NEG_INF;
	for (int j = j0; j < jv; j++) {
		mx = fmaxf(mx, x[j]);
	}
	mx = block_max(mx, sh);
	float s = 0.0f;
	for (int j = j0; j < jv; j++) {
		float e = expf(x[j] - mx);
		x[j] = e;
		s += e;
	}
	s = block_sum(s, sh);
	float inv = 1.0f / s;
	for (int j = j0; j < j1; j++) {
		x[j] = j < n ? x[j] * inv : 0.0f;
	}
	const float* p = x;
	if (dropout) {
		float* y = attd + row * t;
		dropout_keys(y, x, j0, jv, thr, dscale, seed, stream, row, jump);
		for (int j = jv > j0 ? jv : j0; j < j1; j++) {
			y[j] = 0.0f;
		}
		p = y;
	}
	store_bf16_keys(pmat == 0 ? 0 : pmat + row * t, p, j0, j1);
}

// attn_softmax_backward: ds holds the gradient of the (dropped-out)
// probabilities; it becomes the gradient of the scaled scores, through the
// dropout mask (the forward's draws) and the softmax, 0 for hidden keys.
// dsmat, when not null, receives it as bf16. Grid B·NH·T.
extern "C" __global__ void __launch_bounds__(1024) attn_softmax_backward(float* ds, bf16* dsmat, const float* att, const int* sep, int nh, int t,
	int dropout, u32 thr, float dscale, u64 seed, u64 stream, const u64* jump) {
	__shared__ float sh[1024];
	long long row = blockIdx.x;
	int n = row_visible(sep, nh, t, row);
	float* d = ds + row * t;
	const float* a = att + row * t;
	ROW_RANGE(j0, j1, t)
	int jv = j1 < n ? j1 : n;
	if (dropout) {
		dropout_keys(d, d, j0, jv, thr, dscale, seed, stream, row, jump);
	}
	float dot = 0.0f;
	for (int j = j0; j < jv; j++) {
		dot += d[j] * a[j];
	}
	dot = block_sum(dot, sh);
	for (int j = j0; j < j1; j++) {
		d[j] = j < n ? a[j] * (d[j] - dot) : 0.0f;
	}
	store_bf16_keys(dsmat == 0 ? 0 : dsmat + row * t, d, j0, j1);
}
