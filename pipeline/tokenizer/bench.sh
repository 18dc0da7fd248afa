#!/usr/bin/env bash
# bench.sh runs glmkit's tokenizer benchmarks and Hugging Face tokenizers
# (through node, encode only, one rayon thread) on the same documents:
# wikitext-2 (English, ~4 KB documents) and the generated multilingual
# stress set; then every tokenizer family against its references on
# WikiText and CMRC 2018 (BenchmarkFamilies), and SentencePiece .model
# files against SentencePiece. Needs ../shared/corpora and
# `cd testdata/js && npm ci`.
#
# Usage: pipeline/tokenizer/bench.sh [benchtime]   (default 3s)
set -euo pipefail
cd "$(dirname "$0")/../.."
benchtime=${1:-3s}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(go version | cut -d' ' -f3), node $(node --version), $(date -u +%Y-%m-%d)"
GLMKIT_BENCH_DUMP=$tmp go test -count=1 -run TestDumpBenchCorpora ./pipeline/tokenizer/ >/dev/null

echo "# glmkit, 1 worker on 1 core (GOMAXPROCS=1): MB/s per core"
go test -run '^$' -bench 'BenchmarkEncode$/.*/.*/workers=1' -benchtime "$benchtime" -cpu 1 ./pipeline/tokenizer/ | grep '^Benchmark'
echo "# glmkit, 2 workers on 2 cores (GOMAXPROCS=2)"
go test -run '^$' -bench 'BenchmarkEncode$/.*/.*/workers=2' -benchtime "$benchtime" -cpu 2 ./pipeline/tokenizer/ | grep '^Benchmark'
echo "# glmkit, one warm ~4 KB document: allocations per document"
go test -run '^$' -bench 'BenchmarkEncodeDoc' -benchtime "$benchtime" ./pipeline/tokenizer/ | grep '^Benchmark'

echo "# Hugging Face tokenizers (npm @anush008/tokenizers 0.6.0), encode only"
toks=(bert-base-uncased=../shared/tokenizers/bert-base-uncased/tokenizer.json gpt2=../shared/tokenizers/gpt2/tokenizer.json)
for threads in 1 2; do
	RAYON_NUM_THREADS=$threads node testdata/js/hf_bench.js "${toks[@]}" -- "$tmp/wikitext-2-raw.json" "$tmp/stress.json"
done

echo "# every tokenizer family vs its references (each measured just before it, same documents), one core"
go test -run '^$' -bench BenchmarkFamilies -benchtime 3x -cpu 1 -timeout 60m ./pipeline/tokenizer/ | grep '^Benchmark'
echo "# SentencePiece .model files vs SentencePiece 0.1.97"
go test -run '^$' -bench BenchmarkSentencePiece -benchtime 5x -cpu 1 ./pipeline/tokenizer/ | grep '^Benchmark'
