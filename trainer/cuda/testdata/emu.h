// emu.h: just enough of CUDA C++ for g++ to compile the backend's kernels
// (kernels/*.cu) into the stand-in library, where fakecuda.cpp runs them
// on the CPU: every thread of a block is a coroutine (ucontext), blocks run
// one after another, and __syncthreads switches back to the scheduler, which
// resumes each thread in turn. So __shared__ arrays can be static: only one
// block is alive at a time.
//
// Only the subset prelude.cuh documents is provided.
#include <math.h>
#include <string.h>

struct emu_dim3 {
	unsigned int x, y, z;
};

extern "C" {
extern emu_dim3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;
void emu_syncthreads(void);
}

#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim
#define __syncthreads() emu_syncthreads()
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

static inline float __int_as_float(int i) {
	float f;
	memcpy(&f, &i, 4);
	return f;
}

static inline float __uint_as_float(unsigned int i) {
	float f;
	memcpy(&f, &i, 4);
	return f;
}

static inline unsigned int __float_as_uint(float f) {
	unsigned int i;
	memcpy(&i, &f, 4);
	return i;
}

static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
	return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
