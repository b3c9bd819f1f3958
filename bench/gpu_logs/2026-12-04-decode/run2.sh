#!/usr/bin/env bash
# device call 2: occupancy grid + single-buffer decode vs base; ncu stall reasons of the decode kernel
set -uo pipefail
L=$OUT; mkdir -p $L
t0=$(date +%s)
b() { local src=$1 dir=$2; (cmake -S $src/tests/gpu -B $dir -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build $dir -j8 --target test_gen test_paged) > $L/build_$(basename $dir).log 2>&1; echo "build $dir rc=$? $(( $(date +%s) - t0 ))s"; }
b . /tmp/bn & b .dev/base /tmp/bbase &
(RAGD_SKIP_HF_BENCH=1 timeout 400 python3 tests/gpu/make_gen.py /tmp/w > $L/make_gen.log 2>&1; echo "make_gen rc=$? $(( $(date +%s) - t0 ))s") &
wait
timeout 200 /tmp/bn/test_paged > $L/paged_new.log 2>&1; echo "paged_new rc=$?"; tail -3 $L/paged_new.log
timeout 200 /tmp/bn/test_gen /tmp/w/qwen3 > $L/gen_qwen3.log 2>&1; echo "gen_qwen3 rc=$?"; tail -2 $L/gen_qwen3.log
timeout 150 /tmp/bn/test_gen --stress /tmp/w/q06b 300 > $L/stress.log 2>&1; echo "stress rc=$?"; tail -2 $L/stress.log
for rv in bbase:1 bn:1 bbase:2 bn:2; do v=${rv%:*}; rep=${rv#*:}
  timeout 150 /tmp/$v/test_gen --bench /tmp/w/q06b > $L/bench_${v}_$rep.log 2>&1; echo "bench $v $rep rc=$? $(( $(date +%s) - t0 ))s"
done
for v in bbase bn; do
  timeout 120 ncu --profile-from-start off --kernel-name regex:paged_decode --launch-skip 6 --launch-count 1 --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section SourceCounters /tmp/$v/test_gen --kprofile /tmp/w/q06b 256 > $L/ncu_$v.txt 2>&1; echo "ncu $v rc=$? $(( $(date +%s) - t0 ))s"
done
echo "== summary"
for f in $L/bench_*; do echo "$(basename $f): $(grep -o 'ragd_decode bs [0-9]*: .*tok/s' $f | sed 's/prompts.*steps in [0-9.]* s: //' | tr '\n' ' ')"; grep -h "ragd_ttft" $f | tail -1; done
grep ragd_phases $L/bench_bn_2.log $L/bench_bbase_2.log | grep "bs 256"
for v in bbase bn; do echo "-- ncu $v"; grep -E "Duration|Achieved Occupancy|Theoretical Occupancy|Memory Throughput|DRAM Throughput|Stall|Warp Cycles Per Issued|Registers Per|Block Limit" $L/ncu_$v.txt | head -24; done
