#!/usr/bin/env bash
# cpuperf_bench.sh — A/B CPU speed of two ragd binaries on one model, run back to back (alternating).
# Usage: bench/cpuperf_bench.sh MODEL REPS BIN_A BIN_B [DECODE_LONG] [EMBED_TEXTS]
#   decode tok/s = (L - 8) / (t(generate L tokens) - t(generate 8 tokens))   greedy, --ignore-eos, raw prompt
#   embed  s     = t(embed N texts) - t(embed 0 texts)                      model loading / packing cancel out
# Prints one line per binary per rep; take medians. Embed tokens per text: `ragd tokenize` of the text.
set -euo pipefail
model=$1 reps=$2 a=$3 b=$4 long=${5:-40} ntext=${6:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
line='{"text":"The quick brown fox jumps over the lazy dog while the committee debates the annual budget, the river floods the lower fields and the children of the village learn to read by candle light in the old school house."}'
for i in $(seq "$ntext"); do echo "$line"; done > "$tmp/texts"
: > "$tmp/empty"
t() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
for r in $(seq "$reps"); do
  for bin in "$a" "$b"; do
    t8=$(t "$bin" generate --model "$model" --prompt "The capital of France is" --max-tokens 8 --ignore-eos)
    tl=$(t "$bin" generate --model "$model" --prompt "The capital of France is" --max-tokens "$long" --ignore-eos)
    e0=$(t sh -c "'$bin' embed --model '$model' < '$tmp/empty'")
    en=$(t sh -c "'$bin' embed --model '$model' < '$tmp/texts'")
    printf '%s decode_tok_s %.2f embed_s_%dtexts %.3f\n' "$bin" "$(echo "($long - 8) / ($tl - $t8)" | bc -l)" \
      "$ntext" "$(echo "$en - $e0" | bc -l)"
  done
done
