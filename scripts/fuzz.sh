#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for RAGD_FUZZ_SECONDS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-fuzz
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAGD_FUZZ=ON -DRAGD_CUDA=OFF \
  -DRAGD_FUZZ_SECONDS="${RAGD_FUZZ_SECONDS:-20}" >/dev/null
cmake --build "$dir" -j "$(nproc)" --target fuzz_all
ctest --test-dir "$dir" --output-on-failure -L fuzz
