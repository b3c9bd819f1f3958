#!/usr/bin/env bash
# device call 1: build base / v128 / new (split 64) tests/gpu; correctness of new; engine bench A/B/C
set -uo pipefail
L=$OUT; mkdir -p $L
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv > $L/device.txt
t0=$(date +%s)
b() { local src=$1 dir=$2; (cmake -S $src/tests/gpu -B $dir -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build $dir -j16 --target test_gen test_paged) > $L/build_$(basename $dir).log 2>&1; echo "build $dir rc=$? $(( $(date +%s) - t0 ))s"; }
b . /tmp/bn &
(RAGD_SKIP_HF_BENCH=1 timeout 400 python3 tests/gpu/make_gen.py /tmp/w > $L/make_gen.log 2>&1; echo "make_gen rc=$? $(( $(date +%s) - t0 ))s") &
wait %1
b .dev/v128 /tmp/b128 & b .dev/base /tmp/bbase &
timeout 200 /tmp/bn/test_paged > $L/paged_new.log 2>&1; echo "paged_new rc=$?"; tail -4 $L/paged_new.log
wait
timeout 200 /tmp/b128/test_paged > $L/paged_128.log 2>&1; echo "paged_128 rc=$?"; tail -2 $L/paged_128.log
for m in qwen3 llama; do timeout 200 /tmp/bn/test_gen /tmp/w/$m > $L/gen_$m.log 2>&1; echo "gen_$m rc=$?"; tail -5 $L/gen_$m.log; done
timeout 150 /tmp/bn/test_gen --stress /tmp/w/q06b 500 > $L/stress.log 2>&1; echo "stress rc=$?"; tail -2 $L/stress.log
for rv in bbase:1 bn:1 b128:1 bn:2 bbase:2; do v=${rv%:*}; rep=${rv#*:}; {
  timeout 150 /tmp/$v/test_gen --bench /tmp/w/q06b > $L/bench_${v}_$rep.log 2>&1; echo "bench $v $rep rc=$? $(( $(date +%s) - t0 ))s"
}; done
echo "== summary"
for f in $L/bench_*; do echo "$(basename $f): $(grep -o 'ragd_decode bs [0-9]*: .*tok/s' $f | sed 's/prompts.*steps in [0-9.]* s: //' | tr '\n' ' ')"; grep -h "ragd_ttft" $f | tail -1; done
for f in $L/bench_bn_2.log; do grep ragd_phases $f; done
