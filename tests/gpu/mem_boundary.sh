#!/usr/bin/env bash
# mem_boundary.sh — on the GPU machine: `ragd serve` (chat + embed + rerank, one model) at --gpu-memory
# budgets around the plan's boundary; for each: accepted or refused (the message), the startup memory
# line, and the device memory nvidia-smi reports after start and after a chat request — which must stay
# within every accepted budget (issue 18). Usage: RAGD_BIN=... RAGD_LIBS=... mem_boundary.sh MODEL_DIR BUDGET...
set -u
M=$1; shift
OUT=${OUT:-/tmp}
export LD_LIBRARY_PATH="${RAGD_LIBS:-}:${LD_LIBRARY_PATH:-}"
port=18123
for b in "$@"; do
    log=$OUT/mem_$b.log
    "$RAGD_BIN" serve --chat "$M" --embed "$M" --rerank "$M" --device cuda --port $port --gpu-memory "$b" \
        --max-seqs 8 --max-model-len 4096 > "$log" 2>&1 &
    pid=$!
    state=refused
    for i in $(seq 1 150); do
        if ! kill -0 $pid 2>/dev/null; then break; fi
        if curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:$port/health/ready 2>/dev/null | grep -q 200; then
            state=ready; break; fi
        sleep 0.1
    done
    used0=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    used1=-
    if [ $state = ready ]; then
        curl -s http://127.0.0.1:$port/v1/completions -H 'Content-Type: application/json' \
            -d '{"prompt": "hello there", "max_tokens": 200, "ignore_eos": true, "temperature": 0}' > /dev/null
        used1=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
        kill -TERM $pid; wait $pid
    else
        wait $pid
    fi
    echo "budget $b: $state; nvidia-smi used after start ${used0} MiB, after a request ${used1} MiB"
    grep -hE "device memory after start|memory plan|need .* MiB together|already holds|after creating" "$log" | cut -c1-400
    sleep 1
done
