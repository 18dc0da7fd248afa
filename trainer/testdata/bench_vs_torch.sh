#!/bin/sh
# Training speed of the same GLM, same batch, same threads: the Go trainer
# (CPU backend, float32) against PyTorch (Debian python3-torch, float32).
#
#   trainer/testdata/bench_vs_torch.sh [PRESET] [ROUNDS]
#
# PRESET is a BenchmarkTrainStep case (tiny or small; default small), ROUNDS
# the number of alternating Go/PyTorch rounds (default 3; the machine is
# shared, so compare the best or the median). THREADS (default: nproc) sets
# GOMAXPROCS for Go and torch.set_num_threads for PyTorch. STEPS (default 10)
# timed steps per round. Both sides load the same OpenBLAS; set
# OPENBLAS_CORETYPE in the environment to pin its kernels for both.
# Run from anywhere inside the repository.
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
	/usr/bin/python3 trainer/testdata/bench_torch.py "$tmp/config.json" "$tmp/batch.safetensors" \
		--threads "$threads" --steps "$steps" | sed 's/^/torch: /'
	i=$((i + 1))
done
