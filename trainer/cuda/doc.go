// Package cuda is the CUDA backend of the GLM trainer: trainer.Backend on
// an NVIDIA GPU, in a binary built with CGO_ENABLED=0.
//
// # How it runs
//
// New opens libcuda.so.1, libcublas (with its libcublasLt) and libnvrtc at
// run time with purego (v0.11, which calls C functions of up to 32 mixed
// integer and float arguments: cublasGemmStridedBatchedEx has 23). It
// searches Options.LibDir, $GLMKIT_CUDA_LIB_DIR, LD_LIBRARY_PATH,
// /usr/local/nvidia/lib64, /usr/local/cuda/lib64, the system folders and
// the nvidia-* Python wheels (PyTorch's CUDA), newest version first among
// those no newer than the driver's CUDA major (a newer one only as a last
// resort); Probe and `glmtrain doctor` say what they found. Driver entry
// points are bound under their ABI names (cuMemAlloc_v2 …); optional ones
// the driver does not export are looked up with cuGetProcAddress_v2.
//
// Every CUDA call runs on one goroutine locked to its OS thread, from New
// to Close (a request channel): the device's primary context
// (cuDevicePrimaryCtxRetain, then cuCtxSetCurrent, which also avoids
// CUDA 13's cuCtxCreate_v4) is current on that thread, and cuBLAS shares it.
// The context is never released: releasing its last reference would
// destroy it under cuBLAS's per-context state, so a second New in the same
// process would run cuBLAS on a context it does not know.
// Ops queue their work on one compute stream and return; Download,
// DownloadFloat64, SumSquares and Sync wait for it and report the first
// error of an op (errors stick: an op after one does nothing; a kernel that
// faults surfaces at the next wait, or at its own op with Options.Sync).
//
// Buffers are float32 (the master weights, gradients, AdamW moments and
// activations) or int32 in device memory. Matrix products go through
// cublasGemmEx and cublasGemmStridedBatchedEx: by default with bfloat16
// operands (rounded into a workspace by a kernel) and float32 accumulation
// into float32 results; with Options.FP32 in float32 throughout, for tight
// comparisons with the CPU. The other ops are CUDA C++ kernels
// (kernels/*.cu, embedded) that NVRTC compiles at start-up for the device,
// cached on disk by source, options and versions: the first of the sm_XY
// CUBIN, then PTX for the device, compute_90 and compute_80 that compiles
// and loads, else the compute_80 PTX embedded in the binary (NVRTC 11.8;
// for machines without NVRTC or where its output does not load). Each
// fallback, and NVRTC's warnings, are noted in Info.Notes (module.go).
// Kernel arguments are packed into one buffer passed with
// CU_LAUNCH_PARAM_BUFFER_POINTER; where the driver has cuFuncGetParamInfo
// (CUDA ≥ 12.4), New checks the packing against it.
//
// Attention is naive: q, k, v permuted to (B,NH,T,hs), the scores by one
// batched GEMM, GLM's mask (key j visible to row i iff j < sep or j ≤ i),
// softmax and dropout by a kernel with one block per row, then a batched
// GEMM with v; the saved state is the CPU backend's (the probabilities,
// and the dropped-out ones).
//
// Results do not depend on timing: no kernel uses atomics, reductions run
// in a fixed order (block trees, fixed row chunks added in order), and the
// embedding backward groups positions by id on the host (int32 buffers
// keep a host copy, since only UploadInt32 and Zero write them) and sums
// each group in fixed pieces added in order. Dropout draws the CPU backend's masks
// bit for bit: the kernels run math/rand/v2's PCG-DXSM, each thread
// jumping to its first draw with an affine map computed on the host.
//
// Uploads go through a ring of pinned staging buffers: the host copies into
// pinned memory and returns; the transfer runs on a copy stream, and the
// compute stream waits for it (an event) before copying the data into
// place, so the transfer overlaps the work queued before it.
//
// # Performance
//
// This is gpu-notes.md's stage G0 (correct first): unfused elementwise
// kernels, naive attention, float32 activations. Per training step of
// GLM-Base at 32×512 it moves roughly 10 GB per layer through device
// memory next to about 10 TFLOP of matrix work in all, so expect well
// under the 30% MFU goal until G1: bf16 activations, bias and GeLU in
// cuBLASLt epilogues, the bf16 copies of the weights made once per
// optimizer step instead of per product, LayerNorm fused with the
// residual, and a flash-style attention that keeps neither the float32
// scores nor the dropped-out probabilities (BenchmarkTrainStep and
// .ci/gpu measure it; METHOD.md says how to go on from there).
//
// # What is verified where
//
// Without a GPU (go test ./trainer/cuda, in CI):
//   - NVRTC (Debian's libnvrtc11.2, NVRTC 11.8) compiles the kernel program
//     to compute_80 and compute_90 PTX and an sm_90 CUBIN (warnings are
//     logged), the PTX's entry points and parameter types match the table
//     the backend packs arguments from, and the compute_80 PTX is the
//     embedded one byte for byte (TestKernelsCompile; skipped without
//     NVRTC); the embedded PTX's stamp matches the sources and its
//     parameters the table (TestEmbeddedPTX, always).
//   - Every binding of the driver, cuBLAS and NVRTC is called against a
//     stand-in library (testdata/fakecuda.cpp, built with g++) that logs
//     the arguments it receives and returns known values: 64-bit sizes and
//     strides, pointers, alpha and beta, option strings, the 11-argument
//     launch with its packed parameter buffer, the 19- and 23-argument
//     GEMMs with their results, error codes and names, cuGetProcAddress_v2
//     (TestDriverBindings, TestCublasBindings, TestNVRTCBindings).
//   - The stand-in also runs the real kernel sources, compiled by g++
//     against testdata/emu.h (threads as coroutines, blocks one at a time,
//     barriers as switches), computes the GEMMs in double with cuBLAS's
//     argument checks plus bounds checks of every operand, fences every
//     allocation with guard bytes and fills it with NaN, and checks that
//     every thread of a block passes the same barriers, and models the
//     primary context's life (cuBLAS fails in a context created after the
//     one it first ran in was destroyed). Through it, every
//     op matches the CPU backend's float64 oracle (under 1e-5 relative
//     error with float32 GEMMs, 1e-2 with bf16 operands), the dropout masks
//     are the CPU's bit for bit, the whole model's loss and gradients match
//     (TestModel), a few training steps match the CPU's losses
//     (TestTrainCurve), two passes give bitwise equal gradients, nothing
//     leaks, the packed parameter layout matches the compiler's
//     (TestKernelParamLayout), every way of making the kernel module is
//     taken when the ones before it fail (TestKernelFallbacks), the
//     driver's CUDA major picks the libraries (TestLibraryMajors), two
//     New/Close cycles work (TestNewTwice), and the benchmarks' code runs
//     (TestBenchOnStandIn).
//   - .ci/gpu runs as a dry run with the real test binary, and against a
//     stand-in GPU (testdata/fakegpu): every stage, the deadline, a kill
//     mid-stage (ci_test.go).
//
// Only on a GPU (.ci/gpu runs it all in under 8 minutes, with
// GLM_REQUIRE_CUDA=1; see its header and the README):
//   - the real driver, cuBLAS 12/13 and NVRTC 12/13 on the device, the
//     primary context, library discovery on the machine, the CUBIN for the
//     device's architecture, the parameter layout as the driver reports it;
//   - the same op, model and dropout tests on the device (the kernels'
//     behaviour under true parallelism, cuBLAS's transposes and bf16
//     accumulation, the asynchronous staging ring with real streams and
//     events);
//   - 300 training steps of the small preset against the CPU's loss curve
//     (testdata/curve_small.json) in float32 and bf16 (TestTrainCurve);
//   - the throughput of GLM-Base and GLM-Large at sequence length 512:
//     tokens/s, MFU counted two ways and the time per op of a step
//     (BenchmarkTrainStep), cuBLAS at GLM's shapes (BenchmarkGEMM), the
//     copy bandwidths (BenchmarkCopy), and PyTorch's throughput on the same
//     card with eager and scaled-dot-product attention
//     (testdata/bench_torch_cuda.py);
//   - compute-sanitizer's memcheck and racecheck on GPU tests.
package cuda
