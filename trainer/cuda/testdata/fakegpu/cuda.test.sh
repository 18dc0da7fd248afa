#!/usr/bin/env bash
# A stand-in for the CUDA backend's test binary on a GPU machine, for the
# tests of .ci/gpu (ci_test.go): it answers each stage's invocation as the
# real binary would on a GPU, quickly, and writes the result files.
#
#   FAKE_PIDS    a file this appends its process id to
#   FAKE_HANG    a stage (preflight, bench, model, ops) to hang in
#   FAKE_FLAKY   an op test target that fails in the shared process only
#   FAKE_BROKEN  an op test target that fails alone too
#   FAKE_NOGPU   1: TestPreflight skips (no GPU)
#   FAKE_NONEW   1: New fails in TestPreflight (a GPU, but the backend does not start)
set -u
run="" bench=""
while [ $# -gt 0 ]; do
	case $1 in
	-test.run) run=$2; shift ;;
	-test.bench) bench=$2; shift ;;
	esac
	shift
done
[ -n "${FAKE_PIDS:-}" ] && echo $$ >>"$FAKE_PIDS"
res=${GLMKIT_RESULTS_DIR:?}
hang() {
	if [ "${FAKE_HANG:-}" = "$1" ]; then
		echo "hanging in $1"
		exec sleep 600
	fi
}
put() { printf '%s\n' "$2" >"$res/$1.tmp" && mv "$res/$1.tmp" "$res/$1"; }
info='{"Device": "Fake H200", "Arch": "sm_90", "SMs": 132, "MemoryBytes": 150754820096, "Driver": "13.0", "Cublas": "13.0.2", "NVRTC": "13.0", "Kernels": "sm_90 (compiled by NVRTC 13.0)", "KernelCount": 25, "ParamsChecked": 25, "DriverPath": "/usr/local/nvidia/lib64/libcuda.so.1", "CublasPath": "/x/libcublas.so.13", "CublasLtPath": "/x/libcublasLt.so.13", "NVRTCPath": "/x/libnvrtc.so.13", "Notes": null}'

if [ -n "$bench" ]; then
	hang bench
	echo "BenchmarkTrainStep/base-16         	      20	  98765432 ns/op	    165890 tokens/s	        16.60 MFU%	        14.10 MFUloss%"
	echo "BenchmarkTrainStep/large-16        	      20	 123456789 ns/op	     66360 tokens/s	        20.10 MFU%	        18.20 MFUloss%"
	for p in base large; do
		put bench-$p.json '{"preset": "'$p'", "batch": 32, "seq": 512, "loss_positions": 4100, "step_ms": 98.8, "tokens_per_s": 165890, "mfu_989": 0.166, "mfu_798": 0.205, "mfu_loss_989": 0.141, "mfu_loss_798": 0.175, "profiled_step_ms": 130.1, "ops": [{"op": "attention forward", "calls": 12, "ms": 30.5, "share": 0.23}, {"op": "matmul forward 16384×768×3072", "calls": 12, "ms": 12.1, "share": 0.09}], "info": '"$info"'}'
	done
	put gemm.json '{"gemms": [{"preset": "base", "gemm": "qkv forward", "m": 2304, "n": 16384, "k": 768, "batch": 1, "tflops": 612.3, "us": 94.7}]}'
	put copy.json '{"bytes": 268435456, "upload_gbs": 9.8, "pinned_to_device_gbs": 52.1, "device_to_device_gbs": 4100}'
	echo PASS
	exit 0
fi
case $run in
*TestPreflight*)
	hang preflight
	if [ "${FAKE_NOGPU:-}" = 1 ]; then
		echo "--- SKIP: TestPreflight (0.00s)"
		echo "    bench_test.go:610: no GPU: no CUDA driver found"
		exit 0
	fi
	echo "    bench_test.go:613: Probe: driver /usr/local/nvidia/lib64/libcuda.so.1 (CUDA 13.0)"
	if [ "${FAKE_NONEW:-}" = 1 ]; then
		echo "    bench_test.go:636: New (cycle 1): cuda: kernels for sm_90: no image loaded"
		echo "--- FAIL: TestPreflight (0.40s)"
		echo "    --- PASS: TestLayerNorm/gpu/fp32 (0.10s)"
		exit 1
	fi
	echo "    bench_test.go:631: cycle 1: New took 2.10s: cuda (Fake H200, sm_90, 132 SMs, 140 GiB; bf16 GEMMs)"
	echo "--- PASS: TestPreflight (2.50s)"
	echo "    --- PASS: TestLayerNorm/gpu/fp32 (0.10s)"
	put preflight.json '{"cycles": [{"new_s": 2.1, "gemm_rel_err": 0.003, "info": '"$info"'}, {"new_s": 0.4, "gemm_rel_err": 0.002, "info": '"$info"'}]}'
	;;
*TestModel*)
	hang model
	for tg in fp32 bf16; do
		echo "    --- PASS: TestModel/gpu/$tg (1.00s)"
		echo "    --- PASS: TestTrainCurve/gpu/$tg (3.00s)"
		put curve-$tg.json '{"target": "gpu/'$tg'", "losses": [6.9, 6.1, 5.2], "cpu_losses": [6.9, 6.1, 5.21]}'
	done
	;;
*TestKernelsCompile*) echo "--- PASS: TestKernelsCompile (1.20s)" ;;
*TestBenchInputs*) echo PASS ;;
*'/^gpu$/^'*) # one op test target, alone: ^Name$/^gpu$/^fp32$
	hang ops
	name=${run#^}
	name=${name%%\$*}
	tg=${run##*^}
	tg=${tg%\$}
	if [ "$name/gpu/$tg" = "${FAKE_BROKEN:-}" ]; then
		echo "    ops_test.go:12: relative error 0.5 > 1e-05"
		echo "    --- FAIL: $name/gpu/$tg (0.10s)"
		exit 1
	fi
	echo "    --- PASS: $name/gpu/$tg (0.10s)"
	;;
*) # the op tests in one process: ^(A|B|C)$/^gpu$
	hang ops
	names=${run#^(}
	names=${names%%)*}
	fail=0
	for n in ${names//|/ }; do
		for tg in fp32 bf16; do
			if [ "$n/gpu/$tg" = "${FAKE_FLAKY:-}" ] || [ "$n/gpu/$tg" = "${FAKE_BROKEN:-}" ]; then
				echo "    --- FAIL: $n/gpu/$tg (0.10s)"
				fail=1
			else
				echo "    --- PASS: $n/gpu/$tg (0.10s)"
			fi
		done
	done
	exit $fail
	;;
esac
exit 0
