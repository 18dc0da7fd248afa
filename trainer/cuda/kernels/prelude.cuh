// prelude.cuh: what every kernel shares. NVRTC compiles the kernel files
// as one program with this file first, and without any system header (no
// math.h, stdint.h or cuda_bf16.h): the types are spelled out, -inf is
// __int_as_float(0xff800000), and bf16 is handled as raw bits.
//
// The tests also compile these files with g++ against testdata/emu.h, a
// small CUDA emulator, so every kernel must stay inside the subset it
// implements: 1-D and 2-D grids, fixed-size __shared__ arrays, and
// __syncthreads reached by every thread of a block (no warp intrinsics,
// no atomics, no early return before a barrier). Kernels launched with one
// block per row may get up to 1024 threads: they say so with
// __launch_bounds__(1024), so the compiler keeps their registers within
// what such a block may use.

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short bf16; // the raw bits of a bfloat16

#define NEG_INF __int_as_float(0xff800000)

// GRID_STRIDE loops i over [0, n) with 64-bit indices; any 1-D launch shape
// gives the same result.
#define GRID_STRIDE(i, n) \
	for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// COLUMN_CHUNK declares, for a grid (ceil(C/blockDim), chunks) that sums
// columns over chunks of `rows` rows, the thread's column j and its chunk's
// rows [r0, r1) of n; the chunk is blockIdx.y.
#define COLUMN_CHUNK(j, r0, r1, n, rows)                  \
	int j = blockIdx.x * blockDim.x + threadIdx.x;         \
	int r0 = blockIdx.y * (rows);                          \
	int r1 = r0 + (rows) < (n) ? r0 + (rows) : (n);

// ----------------------------------------------------------------------------
// bfloat16

__device__ __forceinline__ float bf16_to_float(bf16 h) { return __uint_as_float(((u32)h) << 16); }

// float_to_bf16 rounds to nearest even; NaN stays a (quiet) NaN.
__device__ __forceinline__ bf16 float_to_bf16(float f) {
	u32 u = __float_as_uint(f);
	if ((u & 0x7fffffffu) > 0x7f800000u) {
		return (bf16)((u >> 16) | 0x40u);
	}
	u += 0x7fffu + ((u >> 16) & 1u);
	return (bf16)(u >> 16);
}

// store_elem writes element i of dst, a float array, or a bf16 array when
// bf is set.
__device__ __forceinline__ void store_elem(void* dst, long long i, float v, int bf) {
	if (bf) {
		((bf16*)dst)[i] = float_to_bf16(v);
	} else {
		((float*)dst)[i] = v;
	}
}

// ----------------------------------------------------------------------------
// GLM's attention mask

// visible is the number of keys row i of a batch row with Part A length
// sep sees: key j is visible iff j < sep or j <= i, the prefix
// [0, max(sep, i+1)) cut at t.
__device__ __forceinline__ int visible(int sep, int i, int t) {
	int n = sep > i + 1 ? sep : i + 1;
	return n < t ? n : t;
}

// ----------------------------------------------------------------------------
// block reductions in a fixed order (deterministic); blockDim.x is a power
// of two up to 1024 and sh has blockDim.x elements. Every thread of the
// block must call them.

template <typename T, typename Op>
__device__ T block_reduce(T v, T* sh, Op op) {
	int tid = threadIdx.x;
	sh[tid] = v;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (tid < s) {
			sh[tid] = op(sh[tid], sh[tid + s]);
		}
		__syncthreads();
	}
	T r = sh[0];
	__syncthreads();
	return r;
}

struct add_op {
	template <typename T>
	__device__ T operator()(T a, T b) const { return a + b; }
};

struct max_op {
	__device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// block_sum adds in float or in double, as v is.
template <typename T>
__device__ T block_sum(T v, T* sh) { return block_reduce(v, sh, add_op()); }

__device__ float block_max(float v, float* sh) { return block_reduce(v, sh, max_op()); }

// ----------------------------------------------------------------------------
// dropout RNG: Go's math/rand/v2 PCG (128-bit LCG, DXSM output), so that
// the masks are bit for bit those of the CPU backend. A mask block's stream
// starts at state (hi, lo) = (seed, mix64(stream ^ mix64(block + golden)))
// and draw k is the output after k+1 steps. A thread reaches its first
// draw with a jump (state·A + C, where (A, C) is the affine map of that
// many steps, computed on the host) and steps from there.

struct u128 {
	u64 hi, lo;
};

__device__ __forceinline__ u128 mul128(u128 a, u128 b) {
	u128 r;
	r.lo = a.lo * b.lo;
	r.hi = __umul64hi(a.lo, b.lo) + a.hi * b.lo + a.lo * b.hi;
	return r;
}

__device__ __forceinline__ u128 add128(u128 a, u128 b) {
	u128 r;
	r.lo = a.lo + b.lo;
	r.hi = a.hi + b.hi + (r.lo < a.lo ? 1ull : 0ull);
	return r;
}

// splitmix64's finaliser, as in the CPU backend.
__device__ __forceinline__ u64 mix64(u64 x) {
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

__device__ __forceinline__ u128 pcg_start(u64 seed, u64 stream, u64 block) {
	u128 s;
	s.hi = seed;
	s.lo = mix64(stream ^ mix64(block + 0x9e3779b97f4a7c15ull));
	return s;
}

// pcg_step advances the state by one step: state·mul + inc (mod 2^128).
__device__ __forceinline__ u128 pcg_step(u128 s) {
	u128 mul, inc;
	mul.hi = 2549297995355413924ull;
	mul.lo = 4865540595714422341ull;
	inc.hi = 6364136223846793005ull;
	inc.lo = 1442695040888963407ull;
	return add128(mul128(s, mul), inc);
}

// pcg_jump applies the affine map jump[0..3] = (A.hi, A.lo, C.hi, C.lo).
__device__ __forceinline__ u128 pcg_jump(u128 s, const u64* jump) {
	u128 a, c;
	a.hi = jump[0];
	a.lo = jump[1];
	c.hi = jump[2];
	c.lo = jump[3];
	return add128(mul128(s, a), c);
}

// pcg_output is PCG-DXSM's output of a state.
__device__ __forceinline__ u64 pcg_output(u128 s) {
	u64 hi = s.hi;
	hi ^= hi >> 32;
	hi *= 0xda942042e4dd58b5ull;
	hi ^= hi >> 48;
	hi *= (s.lo | 1ull);
	return hi;
}

// keep reports whether a draw keeps its element: a 24-bit draw at or above
// the threshold round(p·2^24).
__device__ __forceinline__ int pcg_keep(u64 draw, u32 thr) { return (u32)(draw >> 40) >= thr; }
