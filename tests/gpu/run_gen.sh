#!/usr/bin/env bash
# run_gen.sh — on the GPU machine: generation checks of the CUDA backend. Builds test_gen (standalone
# GPU project), makes the small Qwen3/Llama models + transformers greedy references and the
# Qwen3-0.6B-shape decode benchmark (make_gen.py), runs test_gen on both models and the benchmark,
# then `ragd serve` with a GGUF (chat + embed + rerank) on cuda, auto and cpu; summary table last.
# Usage: tests/gpu/run_gen.sh RT_DIR [LIB_DIR]  (RT_DIR: ragd binary + a .gguf; LIB_DIR: ragd's Debian
#   libraries, default RT_DIR/lib)
set -uo pipefail
cd "$(dirname "$0")/../.."
RT=$(realpath "${1:?rt dir}")
LIBD=$(realpath "${2:-$RT/lib}")
RET=${OUT:-/tmp/ragd-gen}
W=${RAGD_GPU_WORK:-/tmp/ragd-gen-work}
LOG=$W/logs
mkdir -p "$RET" "$LOG"
export PYTHONUNBUFFERED=1
declare -A RES
step() {
    local name=$1 to=$2
    shift 2
    local t0=$(date +%s)
    timeout "$to" "$@" >"$LOG/$name.log" 2>&1
    local rc=$?
    RES[$name]="$([ $rc -eq 0 ] && echo PASS || echo "FAIL(rc=$rc)") $(( $(date +%s) - t0 ))s"
    echo "== $name: ${RES[$name]}"
    tail -n "${TAILN:-30}" "$LOG/$name.log"
    tar -czf "$RET/logs.tgz" -C "$LOG" . 2>/dev/null
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOG/device.txt"
step build 240 bash -c "cmake -S tests/gpu -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-gpu -j16 --target test_gen"
if [ -f "$W/q06b/config.json" ] && [ -f "$W/llama/refs/logits_f32.f32" ]; then echo "== make_gen: reusing $W"; else
TAILN=5 step make_gen 300 python3 tests/gpu/make_gen.py "$W"; fi
TAILN=12 step gen_qwen3 120 build-gpu/test_gen "$W/qwen3"
TAILN=12 step gen_llama 120 build-gpu/test_gen "$W/llama"
TAILN=5 step bench 120 build-gpu/test_gen --bench "$W/q06b"
GG=$(ls "$RT"/*.gguf | head -1)
export LD_LIBRARY_PATH="$LIBD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
TAILN=3 step serve_cuda 120 python3 tests/gpu/serve_check.py "$RT/ragd" "$GG" cuda 18301
TAILN=3 step serve_auto 120 python3 tests/gpu/serve_check.py "$RT/ragd" "$GG" auto 18302
TAILN=3 step serve_cpu 120 python3 tests/gpu/serve_check.py "$RT/ragd" "$GG" cpu 18303
echo
echo "== summary ($(sed -n 2p "$LOG/device.txt"))"
for k in build make_gen gen_qwen3 gen_llama bench serve_cuda serve_auto serve_cpu; do
    [ -n "${RES[$k]:-}" ] && printf "  %-11s %s\n" "$k" "${RES[$k]}"
done
grep -hE "greedy ids|rel L2|FAIL|hf_decode|ragd_decode|plan MiB" "$LOG"/gen_*.log "$LOG"/make_gen.log "$LOG"/bench.log 2>/dev/null | cut -c1-300
for d in cuda auto cpu; do tail -c 400 "$LOG/serve_$d.log" | tr -d '\n' | cut -c1-400; echo; done
