#!/usr/bin/env bash
# decode_ab.sh — on the GPU machine, in one call: the decode-attention and chunked-MLP checks this tree
# still owes (written 2026-12-04, when no device was lent again): test_paged (both decode schedules),
# test_gen (Qwen3, Llama), the graphs-vs-eager stress, engine-level test_gen --bench side by side with a
# baseline tree (A B A B), ncu of the decode kernel at batch 256 (source counters), encoder_check on
# bge-base and nv-rerank-1b at 16,384 batch tokens (the chunked MLP vs transformers) plus the seed case
# (1B reranker in 4 GiB), and the HTTP chat benchmark. Logs in $OUT/logs.tgz, a summary last.
# Prepare on the CPU machine (carry: .dev/base .dev/rt .dev/tok.tgz .dev/bert_vocab.txt):
#   mkdir -p .dev/base && git archive <BASE> src tests/gpu bench CMakeLists.txt | tar -x -C .dev/base
#   .dev/rt/ragd (this tree's CUDA build) and .dev/rt/lib (its Debian libraries: ldd, all but libc/CUDA)
#   tar -czf .dev/tok.tgz -C ../shared/models/qwen3-tokenizer tokenizer.json tokenizer_config.json
#   cp ../shared/models/bge-base-en-v1.5/vocab.txt .dev/bert_vocab.txt
# Usage: bash tests/gpu/decode_ab.sh
set -uo pipefail
L=$OUT/logs; mkdir -p $L
t0=$(date +%s)
export LD_LIBRARY_PATH=$PWD/.dev/rt/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
mkdir -p /tmp/tk && tar -xzf .dev/tok.tgz -C /tmp/tk
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv > $L/device.txt
b() { local src=$1 dir=$2; (cmake -S $src/tests/gpu -B $dir -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build $dir -j8 --target test_gen test_paged) > $L/build_$(basename $dir).log 2>&1; echo "build $dir rc=$? $(( $(date +%s) - t0 ))s"; }
b . /tmp/bn & b .dev/base /tmp/bbase &
(RAGD_SKIP_HF_BENCH=1 timeout 300 python3 tests/gpu/make_gen.py /tmp/w > $L/make_gen.log 2>&1; echo "make_gen rc=$? $(( $(date +%s) - t0 ))s") &
(timeout 300 python3 tests/gpu/make_encoders.py /tmp/enc .dev/bert_vocab.txt /tmp/tk bge-base nv-rerank-1b > $L/make_enc.log 2>&1; echo "make_enc rc=$? $(( $(date +%s) - t0 ))s") &
wait
timeout 200 /tmp/bn/test_paged > $L/paged_new.log 2>&1; echo "paged_new rc=$?"; grep -E "rows differ|FAIL|passed" $L/paged_new.log | tail -4
for m in qwen3 llama; do timeout 200 /tmp/bn/test_gen /tmp/w/$m > $L/gen_$m.log 2>&1; echo "gen_$m rc=$?"; tail -1 $L/gen_$m.log; done
timeout 150 /tmp/bn/test_gen --stress /tmp/w/q06b 1000 > $L/stress.log 2>&1; echo "stress rc=$?"; tail -1 $L/stress.log
for rv in bbase:1 bn:1 bbase:2 bn:2; do v=${rv%:*}; rep=${rv#*:}
  timeout 150 /tmp/$v/test_gen --bench /tmp/w/q06b > $L/bench_${v}_$rep.log 2>&1; echo "bench $v $rep rc=$? $(( $(date +%s) - t0 ))s"
done
timeout 100 ncu --profile-from-start off --kernel-name regex:paged_decode --launch-skip 6 --launch-count 1 --section SpeedOfLight --section Occupancy --section WarpStateStats --section SourceCounters --print-details all /tmp/bn/test_gen --kprofile /tmp/w/q06b 256 > $L/ncu_bn256.txt 2>&1; echo "ncu rc=$? $(( $(date +%s) - t0 ))s"
nvidia-smi --query-compute-apps=pid,used_memory --format=csv > $L/apps_before_enc.txt
OUT=$L timeout 300 python3 tests/gpu/encoder_check.py .dev/rt/ragd /tmp/enc 18111 bge-base nv-rerank-1b seed > $L/enc_check.log 2>&1; echo "enc_check rc=$? $(( $(date +%s) - t0 ))s"
cp /tmp/tk/tokenizer.json /tmp/tk/tokenizer_config.json /tmp/w/q06b/
OUT=$L timeout 240 python3 bench/gpu_chat_bench.py .dev/rt/ragd /tmp/w/q06b > $L/http_chat.log 2>&1; echo "http_chat rc=$? $(( $(date +%s) - t0 ))s"
tar -czf $OUT/logs.tgz -C $L . ; rm -rf $L
echo "== summary"
tar -xzf $OUT/logs.tgz -C /tmp && L=/tmp
for f in $L/bench_*; do echo "$(basename $f): $(grep -o 'ragd_decode bs [0-9]*: .*tok/s' $f | sed 's/prompts.*steps in [0-9.]* s: //' | tr '\n' ' ')"; grep -h "ragd_ttft" $f | tail -1; done
grep -h '"pass"\|encoder_check' $L/enc_check.log | cut -c1-330
grep -h "memory plan" $L/enc_serve_*.log | sort -u | cut -c1-250 | head -4
grep "chat\[" $L/http_chat.log | grep -v metrics | cut -c1-200
