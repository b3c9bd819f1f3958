#!/usr/bin/env bash
# Builds the tokenizer benchmark (Release) and runs it side by side with HF tokenizers, single thread.
# usage: bash bench/tokenizer_bench.sh [extra args for tokenizer_bench.py]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DRAGD_CUDA=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target tok_bench >/dev/null
python3 bench/tokenizer_bench.py --bin build/tests/tokenizer/tok_bench "$@"
