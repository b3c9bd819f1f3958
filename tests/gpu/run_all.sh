#!/usr/bin/env bash
# run_all.sh — on the GPU machine: build the standalone GPU project, run the kernel tests, make the
# random Qwen3-0.6B-shape model + transformers references, run the whole-model test, the benchmark
# (ragd and transformers side by side) and compute-sanitizer; print a summary table last.
# Usage: tests/gpu/run_all.sh TOKENIZER_DIR [HF_BASELINE_PY]   (RAGD_GPU_SKIP_HF=1: no transformers benchmarks;
#   RAGD_BIN=path/to/ragd: also the HTTP benchmark through ragd serve --device cuda;
#   RAGD_GPU_ONLY="build kernels ...": run only the named steps; RAGD_GPU_AB=1: also the benchmark with
#   the GEMM tuning off and with the last-layer pruning off)   (logs packed into $OUT/logs.tgz)
set -uo pipefail
cd "$(dirname "$0")/../.."
TOK=${1:?tokenizer dir}
HFB=${2:-}
RET=${OUT:-/tmp/ragd-gpu}   # what comes back: logs.tgz (re-packed after every step)
W=${RAGD_GPU_WORK:-/tmp/ragd-gpu-work}
OUT=$W/logs                  # per-step logs
mkdir -p "$RET" "$OUT"
export PYTHONUNBUFFERED=1
declare -A RES
step() {  # step NAME TIMEOUT CMD...: runs, logs to $OUT/NAME.log, records PASS/FAIL
    local name=$1 to=$2
    shift 2
    if [ -n "${RAGD_GPU_ONLY:-}" ] && [[ " $RAGD_GPU_ONLY " != *" $name "* ]]; then return; fi
    local t0=$(date +%s)
    timeout "$to" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    RES[$name]="$([ $rc -eq 0 ] && echo PASS || echo "FAIL(rc=$rc)") $(( $(date +%s) - t0 ))s"
    echo "== $name: ${RES[$name]}"
    tar -czf "$RET/logs.tgz" -C "$OUT" . 2>/dev/null
    tail -n "${TAILN:-40}" "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/device.txt"
nvcc --version | tail -1 | tee -a "$OUT/device.txt"

SYSROOT=${RAGD_GPU_SYSROOT:-}   # unpacked jansson/utf8proc/pcre2 packages for test_pipeline (optional)
step build 300 bash -c "cmake -S tests/gpu -B build-gpu -DCMAKE_BUILD_TYPE=Release ${SYSROOT:+-DRAGD_GPU_SYSROOT=$SYSROOT} && cmake --build build-gpu -j16"
step kernels 300 build-gpu/test_kernels
TAILN=4 step attn_bench 120 build-gpu/test_kernels --bench-attn
step make_model 400 python3 tests/gpu/make_model.py "$W/model" "$W/refs" "$TOK"
step model 300 build-gpu/test_model "$W/model" "$W/refs"
if [ -x build-gpu/test_pipeline ]; then
    step pipeline 300 env LD_LIBRARY_PATH="${SYSROOT:+$SYSROOT/usr/lib/x86_64-linux-gnu}" build-gpu/test_pipeline "$W/model" "$W/refs"
fi
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 250 >"$OUT/clocks.csv" 2>&1 &
SMI=$!
TAILN=70 step bench 300 build-gpu/gpu_bench "$W/model" "$W/refs" 32768
kill $SMI 2>/dev/null
echo "SM clock / power during the benchmark (min / median / max):"
awk -F', ' 'NR>1 {gsub(/ MHz/,"",$2); gsub(/ W/,"",$3); print $2, $3}' "$OUT/clocks.csv" | sort -n | awk '{c[NR]=$1; p[NR]=$2} END {print "  clock MHz", c[1], c[int(NR/2)+1], c[NR]}'
awk -F', ' 'NR>1 {gsub(/ W/,"",$3); print $3}' "$OUT/clocks.csv" | sort -n | awk '{p[NR]=$1} END {print "  power W", p[1], p[int(NR/2)+1], p[NR]}'
TAILN=25 step bench64k 300 build-gpu/gpu_bench "$W/model" "$W/refs" 65536
if [ -n "${RAGD_GPU_AB:-}" ]; then
    TAILN=25 step bench_notune 300 env RAGD_GEMM_TUNE=0 build-gpu/gpu_bench "$W/model" "$W/refs" 32768
    TAILN=25 step bench_noprune 300 env RAGD_PRUNE_LAST=0 build-gpu/gpu_bench "$W/model" "$W/refs" 32768
fi
if [ -n "${RAGD_BIN:-}" ]; then  # a ragd binary (+ its libraries on LD_LIBRARY_PATH): HTTP-level numbers
    TAILN=8 step http 300 env OUT="$OUT" python3 bench/gpu_http_bench.py "$RAGD_BIN" "$W/model" "$W/refs"
fi
if [ -n "$HFB" ] && [ -z "${RAGD_GPU_SKIP_HF:-}" ]; then step hf_baseline 400 env OUT="$OUT" python3 "$HFB"; fi
[ -n "${RAGD_GPU_SKIP_HF:-}" ] || step hf_bench 400 python3 bench/gpu_hf_bench.py "$W/model" "$W/refs"
TAILN=15 step memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_kernels --quick
TAILN=15 step racecheck 300 compute-sanitizer --tool racecheck --error-exitcode 9 build-gpu/test_kernels --quick

echo
echo "== summary ($(head -2 "$OUT/device.txt" | tail -1))"
for k in build kernels attn_bench make_model model pipeline bench bench64k bench_notune bench_noprune http hf_bench memcheck racecheck hf_baseline; do
    [ -n "${RES[$k]:-}" ] && printf "  %-12s %s\n" "$k" "${RES[$k]}"
done
grep -hE "tokens/s|TFLOP|median|differ|min_cos|rerank scores|gemm_bf16|copy_gbps|FAIL|startup|tokenizer:|embed_texts|attention bench|^http:" "$OUT"/bench.log "$OUT"/bench64k.log "$OUT"/bench_notune.log "$OUT"/bench_noprune.log "$OUT"/http.log "$OUT"/hf_bench.log \
    "$OUT"/attn_bench.log "$OUT"/model.log "$OUT"/pipeline.log "$OUT"/kernels.log "$OUT"/hf_baseline.log 2>/dev/null | grep -v "^  [a-z_]* *[0-9.]* ms" | head -40
