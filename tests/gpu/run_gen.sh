#!/usr/bin/env bash
# run_gen.sh — on the GPU machine: the generation checks and benchmark of the CUDA backend. Builds the
# standalone GPU project, runs the paged-attention kernel test (accuracy vs float64 and the bit-for-bit
# contract: chunkings, prefill vs decode kernel, packings), makes the small Qwen3/Llama models +
# transformers greedy references and the Qwen3-0.6B-shape model (make_gen.py, which also times
# transformers generate), runs test_gen on both small models (through the engine API: greedy vs
# transformers, chunked / batched / prefix-cache / graph-vs-eager identity), the graphs-vs-eager
# stress test and the engine-level benchmark on the 0.6B shape, compute-sanitizer on the kernel tests;
# with RAGD_BIN (a ragd binary + LD_LIBRARY_PATH for its libraries) and TOK (a tokenizer dir) also the
# HTTP chat benchmark (bench/gpu_chat_bench.py). Summary table last.
# Usage: tests/gpu/run_gen.sh   (env: RAGD_GPU_ONLY="step ..." runs only those steps; STRESS_ITERS=2000)
set -uo pipefail
cd "$(dirname "$0")/../.."
RET=${OUT:-/tmp/ragd-gen}
W=${RAGD_GPU_WORK:-/tmp/ragd-gen-work}
LOG=$W/logs
mkdir -p "$RET" "$LOG"
export PYTHONUNBUFFERED=1
declare -A RES
ORDER=()
step() {
    local name=$1 to=$2
    shift 2
    if [ -n "${RAGD_GPU_ONLY:-}" ] && [[ " $RAGD_GPU_ONLY " != *" $name "* ]]; then return; fi
    local t0=$(date +%s)
    timeout "$to" "$@" >"$LOG/$name.log" 2>&1
    local rc=$?
    RES[$name]="$([ $rc -eq 0 ] && echo PASS || echo "FAIL(rc=$rc)") $(( $(date +%s) - t0 ))s"
    ORDER+=("$name")
    echo "== $name: ${RES[$name]}"
    tail -n "${TAILN:-25}" "$LOG/$name.log"
    tar -czf "$RET/logs.tgz" -C "$LOG" . 2>/dev/null
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$LOG/device.txt"
step build 400 bash -c "cmake -S tests/gpu -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-gpu -j16"
TAILN=30 step paged 300 build-gpu/test_paged
TAILN=6 step sample 300 build-gpu/test_sample
TAILN=12 step sample_bench 120 build-gpu/test_sample --bench
TAILN=4 step sample_memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_sample --quick
TAILN=6 step logit_proc 300 build-gpu/test_logit_proc
TAILN=6 step logit_proc_bench 120 build-gpu/test_logit_proc --bench
if [ -f "$W/q06b/config.json" ] && [ -f "$W/llama/refs/logits_f32.f32" ]; then echo "== make_gen: reusing $W"; else
TAILN=8 step make_gen 400 python3 tests/gpu/make_gen.py "$W"; fi
TAILN=14 step gen_qwen3 300 build-gpu/test_gen "$W/qwen3"
TAILN=14 step gen_llama 300 build-gpu/test_gen "$W/llama"
TAILN=6 step stress 170 build-gpu/test_gen --stress "$W/q06b" "${STRESS_ITERS:-2000}"
TAILN=16 step bench 220 build-gpu/test_gen --bench "$W/q06b"
TAILN=8 step memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_paged --quick
TAILN=8 step racecheck 300 compute-sanitizer --tool racecheck --error-exitcode 9 build-gpu/test_paged --quick
TAILN=8 step memcheck_gen 400 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_gen "$W/qwen3"
if [ -n "${RAGD_BIN:-}" ] && [ -n "${TOK:-}" ]; then
    for f in tokenizer.json tokenizer_config.json; do cp "$TOK/$f" "$W/q06b/" 2>/dev/null; done
    TAILN=30 step http_chat 300 env RAGD_LIBS="${RAGD_LIBS:-}" OUT="$LOG" python3 bench/gpu_chat_bench.py "$RAGD_BIN" "$W/q06b"
    if [ -n "${RAGD_BIN_OLD:-}" ]; then  # the previous build, side by side (fewer stream counts: it is slow)
        TAILN=30 step http_chat_old 300 env RAGD_LIBS="${RAGD_LIBS:-}" OUT="$LOG" RAGD_CHAT_TAG=old RAGD_CHAT_PORT=18091 \
            RAGD_CHAT_STREAMS="16 64" RAGD_CHAT_EXTRA="--max-seqs 64" python3 bench/gpu_chat_bench.py "$RAGD_BIN_OLD" "$W/q06b"
    fi
fi
echo
echo "== summary ($(sed -n 2p "$LOG/device.txt"))"
for k in "${ORDER[@]}"; do printf "  %-13s %s\n" "$k" "${RES[$k]}"; done
grep -hE "FAIL|sample:|accuracy:|differ|greedy ids|rel L2|stress:|ragd_decode|ragd_ttft|ragd_phases|hf_decode|graphs \(|chat:|ERROR SUMMARY" \
    "$LOG"/*.log 2>/dev/null | cut -c1-260 | head -60
