#!/bin/sh
# Training speed of the same GLM, same batch, same threads: the Go trainer
# (CPU backend, float32) against PyTorch (Debian python3-torch, float32).
#
#   trainer/testdata/bench_vs_torch.sh [PRESET] [ROUNDS]
#
# PRESET is a BenchmarkTrainStep case (tiny or small; default small), ROUNDS
# the number of alternating Go/PyTorch rounds (default 3; the machine is
# shared, so compare the best or the median). THREADS (default: nproc) is
# the core budget: GOMAXPROCS for Go. PyTorch has two thread pools, its
# intra-op threads (torch.set_num_threads) and OpenBLAS's own threads
# (OPENBLAS_NUM_THREADS, which torch 1.13 does not set), so it runs three
# ways: intra-op THREADS with BLAS 1, intra-op 1 with BLAS THREADS (both
# within the budget), and intra-op THREADS with BLAS at its default
# (nproc: over the budget when both pools spin). STEPS (default 10) timed
# steps per round. Both sides load the same OpenBLAS; set OPENBLAS_CORETYPE
# in the environment to pin its kernels for both. Run from anywhere inside
# the repository.
set -eu

preset=${1:-small}
rounds=${2:-3}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-10}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root"
go test -c -o "$tmp/trainer.test" ./trainer
echo "# $(nproc) CPUs, $threads threads, preset $preset, $steps steps per round"
i=1
while [ "$i" -le "$rounds" ]; do
	GLMKIT_BENCH_DIR=$tmp GOMAXPROCS=$threads "$tmp/trainer.test" -test.run '^$' \
		-test.bench "BenchmarkTrainStep/$preset\$" -test.benchtime "${steps}x" -test.v |
		grep -E '(tokens/s$|params, batch)' | sed 's/^ *//; s/^bench_test.go:[0-9]*: //; s/^/go: /'
	for cfg in "$threads 1" "1 $threads" "$threads default"; do
		set -- $cfg
		if [ "$2" = default ]; then
			/usr/bin/python3 trainer/testdata/bench_torch.py "$tmp/config.json" "$tmp/batch.safetensors" \
				--threads "$1" --steps "$steps" | sed "s/^/torch (intra-op $1, blas default): /"
		else
			OPENBLAS_NUM_THREADS=$2 /usr/bin/python3 trainer/testdata/bench_torch.py "$tmp/config.json" \
				"$tmp/batch.safetensors" --threads "$1" --steps "$steps" | sed "s/^/torch (intra-op $1, blas $2): /"
		fi
	done
	i=$((i + 1))
done
