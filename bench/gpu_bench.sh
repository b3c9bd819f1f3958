#!/usr/bin/env bash
# gpu_bench.sh — the CUDA benchmark in one run on the GPU machine: builds the GPU project, writes the
# random Qwen3-0.6B-shape model (tests/gpu/make_model.py), then ragd engine-level throughput
# (bench/gpu_bench.c) and transformers SDPA on the same model and length mixes (bench/gpu_hf_bench.py),
# plus hf_baseline.py (ceilings) when given. tests/gpu/run_all.sh runs all of this with the tests.
# Usage: bench/gpu_bench.sh TOKENIZER_DIR [HF_BASELINE_PY]
set -euo pipefail
cd "$(dirname "$0")/.."
TOK=${1:?tokenizer dir}
W=${RAGD_GPU_WORK:-/tmp/ragd-gpu-work}
cmake -S tests/gpu -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-gpu -j16 >/dev/null
[ -f "$W/refs/lens_long.txt" ] || python3 tests/gpu/make_model.py "$W/model" "$W/refs" "$TOK"
build-gpu/gpu_bench "$W/model" "$W/refs" 32768
python3 bench/gpu_hf_bench.py "$W/model" "$W/refs"
[ -z "${2:-}" ] || python3 "$2"
