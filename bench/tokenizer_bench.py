#!/usr/bin/env python3
"""tokenizer_bench.py — ragd's tokenizer vs Hugging Face `tokenizers`, side by side, single thread.

Both sides encode the public corpus (shared/cases/tokenizer/qwen3_public.jsonl, 400 texts) one text at a
time, 50 passes, with the real Qwen3 tokenizer.json, and time the 1 MB pathological inputs. HF runs with
RAYON_NUM_THREADS=1 / TOKENIZERS_PARALLELISM=false; encode_batch (single-threaded) is reported for
reference. Each measurement is repeated --repeats times and the best run is kept (the host is shared).

usage: python3 bench/tokenizer_bench.py [--bin build/tests/tokenizer/tok_bench] [--shared ../shared]
             [--tokenizer PATH/tokenizer.json]   (default: the Qwen3 one; e.g. all-MiniLM-L6-v2's WordPiece or
                                                  tests/tokenizer/fixtures/uni_spm for Unigram)
Build first: cmake --build build --target tok_bench (Release).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIG = [("a x 1M", "a", 1000000), ("space x 1M", " ", 1000000), ("newline x 1M", "\n", 1000000),
       ("abcdefghij x 100k (no spaces)", "abcdefghij", 100000), ("digits x 100k", "1234567890", 100000),
       ("! x 1M", "!", 1000000), ("CJK x 333k chars (no spaces)", "日本語", 111111),
       ("words with spaces", "the quick brown fox jumps over the lazy dog ", 22728)]


def hf_bench(tok_path, texts, passes, repeats):
    tok = Tokenizer.from_file(tok_path)
    tok.no_padding()  # ragd ignores a tokenizer.json's padding/truncation (all-MiniLM-L6-v2 pads to 128)
    tok.no_truncation()
    n_tok = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)  # also warms the cache
    best_one = best_batch = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        total = 0
        for _ in range(passes):
            for t in texts:
                total += len(tok.encode(t, add_special_tokens=False).ids)
        best_one = max(best_one, total / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        total = 0
        for _ in range(passes):
            total += sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
        best_batch = max(best_batch, total / (time.perf_counter() - t0))
    big = {}
    for name, unit, count in BIG:
        s = unit * count
        t0 = time.perf_counter()
        n = len(tok.encode(s, add_special_tokens=False).ids)
        big[name] = (n, time.perf_counter() - t0)
    return {"tokens_per_pass": n_tok, "encode_tok_per_s": best_one, "encode_batch_tok_per_s": best_batch, "big": big}


def hf_pair_bench(tok_path, texts, passes, repeats):
    tok = Tokenizer.from_file(tok_path)
    tok.no_padding()
    tok.enable_truncation(512, strategy="longest_first")
    pairs = [(texts[i], texts[(i + 1) % len(texts)]) for i in range(len(texts))]
    n_tok = sum(len(tok.encode(a, b).ids) for a, b in pairs)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        total = 0
        for _ in range(passes):
            for a, b in pairs:
                total += len(tok.encode(a, b).ids)
        best = max(best, total / (time.perf_counter() - t0))
    return n_tok, best


def ragd_bench(binary, tok_path, cases, passes, repeats, env_extra=None, pair=False):
    env = dict(os.environ, **(env_extra or {}))
    best, big = None, {}
    for r in range(repeats):
        args = [binary, tok_path, cases, str(passes)] + (["--big"] if r == 0 and not pair else [])
        args += ["--pair"] if pair else []
        out = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout
        for line in out.splitlines():
            d = json.loads(line)
            if "big" in d:
                big[d["big"]] = (d["tokens"], d["seconds"])
            elif best is None or d["tok_per_s"] > best["tok_per_s"]:
                best = d
    return best, big


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "tests", "tokenizer", "tok_bench"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--passes", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--pair", action="store_true",
                    help="also time (text i, text i+1) pairs with special tokens, longest_first to 512")
    a = ap.parse_args()
    tok_path = a.tokenizer or os.path.join(a.shared, "models", "qwen3-tokenizer", "tokenizer.json")
    cases = os.path.join(a.shared, "cases", "tokenizer", "qwen3_public.jsonl")
    texts = [json.loads(l)["text"] for l in open(cases, encoding="utf-8")]

    import tokenizers
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  host: {platform.node()}  "
          f"cpu: {platform.processor() or platform.machine()}  nproc: {os.cpu_count()}  "
          f"tokenizers {tokenizers.__version__}  tokenizer: {tok_path}")
    hf = hf_bench(tok_path, texts, a.passes, a.repeats)
    rg, rg_big = ragd_bench(a.bin, tok_path, cases, a.passes, a.repeats)
    nc, _ = ragd_bench(a.bin, tok_path, cases, a.passes, a.repeats, {"RAGD_TOK_NO_CACHE": "1"})
    assert rg["tokens"] == hf["tokens_per_pass"] * a.passes, "token counts differ between ragd and HF"
    print(f"corpus: {len(texts)} texts x {a.passes} passes = {rg['tokens']} tokens, one text at a time, 1 thread")
    print(f"  HF tokenizers encode        {hf['encode_tok_per_s']:>12,.0f} tok/s")
    print(f"  HF tokenizers encode_batch  {hf['encode_batch_tok_per_s']:>12,.0f} tok/s  (RAYON_NUM_THREADS=1)")
    print(f"  ragd encode                 {rg['tok_per_s']:>12,.0f} tok/s  ratio vs HF encode: "
          f"{rg['tok_per_s'] / hf['encode_tok_per_s']:.2f}x")
    print(f"  ragd encode, no word cache  {nc['tok_per_s']:>12,.0f} tok/s  ratio vs HF encode: "
          f"{nc['tok_per_s'] / hf['encode_tok_per_s']:.2f}x")
    if a.pair:
        hn, hs = hf_pair_bench(tok_path, texts, a.passes, a.repeats)
        rp, _ = ragd_bench(a.bin, tok_path, cases, a.passes, a.repeats, pair=True)
        assert rp["tokens"] == hn * a.passes, "pair token counts differ between ragd and HF"
        print(f"pairs: {len(texts)} (text i, text i+1) x {a.passes} passes = {rp['tokens']} tokens, "
              "special tokens, longest_first 512")
        print(f"  HF tokenizers encode(a, b)  {hs:>12,.0f} tok/s")
        print(f"  ragd encode_pair            {rp['tok_per_s']:>12,.0f} tok/s  ratio vs HF: {rp['tok_per_s'] / hs:.2f}x")
    print("1 MB inputs (one encode call each):")
    print(f"  {'input':32} {'tokens':>8} {'HF s':>8} {'ragd s':>8} {'ratio':>6}")
    for name, _, _ in BIG:
        hn, hs = hf["big"][name]
        rn, rs = rg_big[name]
        assert hn == rn, f"{name}: token counts differ ({hn} vs {rn})"
        print(f"  {name:32} {hn:>8} {hs:>8.3f} {rs:>8.3f} {hs / rs:>5.1f}x")


if __name__ == "__main__":
    sys.exit(main())
