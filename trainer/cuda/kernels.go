package cuda

import (
	"embed"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

//go:embed kernels/*.cu kernels/*.cuh
var kernelFS embed.FS

// kernelFiles are the kernel sources in the order NVRTC compiles them, as
// one program.
var kernelFiles = [...]string{"prelude.cuh", "elementwise.cu", "layernorm.cu", "attention.cu", "loss.cu"}

// kernelSource returns the program NVRTC compiles: the kernel files
// concatenated, each introduced by a #line directive so that errors name
// the file.
func kernelSource() string {
	var b strings.Builder
	for _, f := range kernelFiles {
		src, err := kernelFS.ReadFile("kernels/" + f)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		fmt.Fprintf(&b, "#line 1 \"%s\"\n%s\n", f, src)
	}
	return b.String()
}

// kernel names one kernel of the program.
type kernel int

// The kernels, in the order of kernelSigs.
const (
	kEncoderForward kernel = iota
	kEmbedBackwardPartial
	kEmbedBackwardAdd
	kGeluForward
	kGeluBackward
	kResidualForward
	kDropout
	kGatherRows
	kScatterAddRows
	kToBF16
	kBiasRows
	kColsumPartial
	kColsumAdd
	kLayerNormForward
	kLayerNormBackwardInput
	kLayerNormBackwardParamsPartial
	kPermuteHeads
	kUnpermuteHeads
	kAttnSoftmaxForward
	kAttnSoftmaxBackward
	kCrossEntropyForward
	kCrossEntropyBackward
	kSumSqPartial
	kAdamW
	numKernels
)

// kernelSig is a kernel's name and its C parameter list, exactly as in the
// source: the backend packs the arguments from it, the NVRTC test checks
// it against the PTX, and the emulator test against the C++ declaration.
type kernelSig struct {
	name   string
	params string
}

// kernelSigs is an immutable table, indexed by kernel.
var kernelSigs = [numKernels]kernelSig{
	kEncoderForward:                 {"encoder_forward", "float*, const int*, const int*, const int*, const float*, const float*, const float*, int, int"},
	kEmbedBackwardPartial:           {"embed_backward_partial", "float*, const float*, const int*, const int*, int"},
	kEmbedBackwardAdd:               {"embed_backward_add", "float*, const float*, const int*, const int*, int"},
	kGeluForward:                    {"gelu_forward", "float*, const float*, long long"},
	kGeluBackward:                   {"gelu_backward", "float*, const float*, const float*, long long"},
	kResidualForward:                {"residual_forward", "float*, const float*, const float*, long long"},
	kDropout:                        {"dropout", "float*, const float*, long long, u32, float, u64, u64, const u64*"},
	kGatherRows:                     {"gather_rows", "float*, const float*, const int*, int, int"},
	kScatterAddRows:                 {"scatter_add_rows", "float*, const float*, const int*, int, int"},
	kToBF16:                         {"to_bf16", "bf16*, const float*, long long"},
	kBiasRows:                       {"bias_rows", "float*, const float*, int, int"},
	kColsumPartial:                  {"colsum_partial", "float*, const float*, int, int, int"},
	kColsumAdd:                      {"colsum_add", "float*, const float*, int, int"},
	kLayerNormForward:               {"layernorm_forward", "float*, float*, float*, const float*, const float*, const float*, int, int"},
	kLayerNormBackwardInput:         {"layernorm_backward_input", "float*, const float*, const float*, const float*, const float*, const float*, int, int"},
	kLayerNormBackwardParamsPartial: {"layernorm_backward_params_partial", "float*, float*, const float*, const float*, const float*, const float*, int, int, int"},
	kPermuteHeads:                   {"permute_heads", "void*, const float*, int, int, int, int, int, int"},
	kUnpermuteHeads:                 {"unpermute_heads", "float*, const float*, int, int, int, int, int, int"},
	kAttnSoftmaxForward:             {"attn_softmax_forward", "float*, float*, bf16*, const int*, int, int, int, u32, float, u64, u64, const u64*"},
	kAttnSoftmaxBackward:            {"attn_softmax_backward", "float*, bf16*, const float*, const int*, int, int, int, u32, float, u64, u64, const u64*"},
	kCrossEntropyForward:            {"crossentropy_forward", "float*, float*, const float*, const int*, int, int"},
	kCrossEntropyBackward:           {"crossentropy_backward", "float*, const float*, const int*, int, int, float"},
	kSumSqPartial:                   {"sumsq_partial", "double*, const float*, long long, long long"},
	kAdamW:                          {"adamw", "float*, const float*, float*, float*, long long, float, float, float, float, float, float, float"},
}

func (k kernel) String() string { return kernelSigs[k].name }

// paramKind is the ABI class of a kernel parameter.
type paramKind uint8

const (
	pPtr paramKind = iota // any pointer: 8 bytes (a CUdeviceptr)
	pI32                  // int
	pU32                  // u32 (unsigned int)
	pF32                  // float
	pI64                  // long long
	pU64                  // u64 (unsigned long long)
)

// size is the parameter's size and alignment in bytes.
func (p paramKind) size() int {
	switch p {
	case pI32, pU32, pF32:
		return 4
	}
	return 8
}

// ptx is the PTX parameter type NVRTC gives the kind.
func (p paramKind) ptx() string {
	switch p {
	case pI32, pU32:
		return ".u32"
	case pF32:
		return ".f32"
	}
	return ".u64"
}

// paramKinds parses a C parameter list of kernelSigs.
func paramKinds(params string) ([]paramKind, error) {
	var out []paramKind
	for _, p := range strings.Split(params, ",") {
		p = strings.TrimSpace(p)
		switch {
		case strings.HasSuffix(p, "*"):
			out = append(out, pPtr)
		case p == "int":
			out = append(out, pI32)
		case p == "u32":
			out = append(out, pU32)
		case p == "float":
			out = append(out, pF32)
		case p == "long long":
			out = append(out, pI64)
		case p == "u64":
			out = append(out, pU64)
		default:
			return nil, fmt.Errorf("unknown kernel parameter type %q", p)
		}
	}
	return out, nil
}

// packParams lays the arguments out as the kernel's parameter buffer
// (CU_LAUNCH_PARAM_BUFFER_POINTER): each at the next multiple of its size.
// Pointers are uint64 device addresses; int takes int or int32, long long
// int or int64, u32 uint32, u64 uint64, float float32.
func packParams(dst []byte, kinds []paramKind, args []any) ([]byte, error) {
	if len(args) != len(kinds) {
		return nil, fmt.Errorf("%d arguments for %d parameters", len(args), len(kinds))
	}
	dst = dst[:0]
	for i, k := range kinds {
		for len(dst)%k.size() != 0 {
			dst = append(dst, 0)
		}
		bad := func() ([]byte, error) {
			return nil, fmt.Errorf("argument %d: %T does not fit parameter kind %d", i, args[i], k)
		}
		switch v := args[i].(type) {
		case uint64:
			if k != pPtr && k != pU64 {
				return bad()
			}
			dst = binary.LittleEndian.AppendUint64(dst, v)
		case int:
			switch k {
			case pI32:
				if v < math.MinInt32 || v > math.MaxInt32 {
					return nil, fmt.Errorf("argument %d: %d overflows int", i, v)
				}
				dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(v)))
			case pI64:
				dst = binary.LittleEndian.AppendUint64(dst, uint64(int64(v)))
			default:
				return bad()
			}
		case int32:
			if k != pI32 {
				return bad()
			}
			dst = binary.LittleEndian.AppendUint32(dst, uint32(v))
		case int64:
			if k != pI64 {
				return bad()
			}
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
		case uint32:
			if k != pU32 {
				return bad()
			}
			dst = binary.LittleEndian.AppendUint32(dst, v)
		case float32:
			if k != pF32 {
				return bad()
			}
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		default:
			return bad()
		}
	}
	return dst, nil
}

// ----------------------------------------------------------------------------
// dropout RNG jumps

// PCG's multiplier and increment (math/rand/v2).
const (
	pcgMulHi = 2549297995355413924
	pcgMulLo = 4865540595714422341
	pcgIncHi = 6364136223846793005
	pcgIncLo = 1442695040888963407
)

type u128 struct{ hi, lo uint64 }

func (a u128) mul(b u128) u128 {
	hi, lo := bits.Mul64(a.lo, b.lo)
	return u128{hi + a.hi*b.lo + a.lo*b.hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

// pcgJump returns the affine map (A, C) of delta PCG steps: the state after
// them is state·A + C (mod 2^128). This is Brown's jump-ahead for LCGs.
func pcgJump(delta uint64) (a, c u128) {
	a, c = u128{0, 1}, u128{0, 0}
	mul, inc := u128{pcgMulHi, pcgMulLo}, u128{pcgIncHi, pcgIncLo}
	for delta > 0 {
		if delta&1 != 0 {
			a = a.mul(mul)
			c = c.mul(mul).add(inc)
		}
		inc = mul.add(u128{0, 1}).mul(inc)
		mul = mul.mul(mul)
		delta >>= 1
	}
	return a, c
}

// jumpTable returns, for k in [0, n), the map of first + k·stride steps as
// four uint64 (A.hi, A.lo, C.hi, C.lo), the layout the kernels read.
func jumpTable(n int, first, stride uint64) []uint64 {
	t := make([]uint64, 0, 4*n)
	for k := range uint64(n) {
		a, c := pcgJump(first + k*stride)
		t = append(t, a.hi, a.lo, c.hi, c.lo)
	}
	return t
}

// dropBlock and dropPerThread are the dropout kernel's layout: the CPU
// backend's mask blocks of 4096 elements, 8 elements per thread.
const (
	dropBlock     = 4096
	dropPerThread = 8
)

// dropThreshold is the CPU backend's threshold on 24-bit draws.
func dropThreshold(p float32) uint32 { return uint32(math.Round(float64(p) * (1 << 24))) }

// compileFlags are NVRTC's options besides the architecture: no fused
// multiply-add contraction, so elementwise results round like the CPU
// backend's (these kernels are memory-bound; it costs nothing).
var compileFlags = []string{"--fmad=false"}

// paramOffsets returns each parameter's offset in the packed buffer and
// the buffer's size.
func paramOffsets(kinds []paramKind) (offs []int, size int) {
	for _, k := range kinds {
		size = (size + k.size() - 1) / k.size() * k.size()
		offs = append(offs, size)
		size += k.size()
	}
	return offs, size
}
