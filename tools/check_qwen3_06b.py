#!/usr/bin/env python3
"""check_qwen3_06b.py — the golden check once at the real Qwen3-0.6B shape (28 layers, hidden 1024, 16/8 heads,
head_dim 128, MLP 3072, 151669 vocabulary rows, tied, random bf16 weights, the real Qwen3 tokenizer from
../shared/models/qwen3-tokenizer), outside CTest (it needs torch + transformers, ~8 GB RAM and minutes).

  1. writes the model to --dir (default /tmp/ragd-qwen3-0.6b-random; not committed)
  2. transformers fp32 (eager attention, CPU): normalized last-token embeddings of 4 texts (one ~300 tokens),
     Qwen3-Reranker scores of one query × 3 documents, 24 greedy tokens from a raw prompt; timings
  3. the same through the ragd CLI (--bin): max abs errors, ids equality
  4. CPU speed of ragd and transformers side by side: embed tokens/s (prefill) and decode tokens/s, each
     ragd figure as a difference of two runs so model loading is excluded (see --help of the output)

Usage: python3 tools/check_qwen3_06b.py --bin build/ragd [--dir DIR] [--threads N] [--tiny]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_tiny_models as mtm  # noqa: E402

SHARED_TOK = os.path.join(HERE, "..", "..", "shared", "models", "qwen3-tokenizer")
TASK = "Given a web search query, retrieve relevant passages that answer the query"


def write_model(d):
    import shutil
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return
    cfg = mtm.qwen3_config(151669, "bf16", True, layers=28)
    cfg.update({"hidden_size": 1024, "intermediate_size": 3072, "num_attention_heads": 16, "num_key_value_heads": 8,
                "head_dim": 128, "max_position_embeddings": 40960, "max_window_layers": 28,
                "bos_token_id": 151643, "eos_token_id": 151645})
    mtm.write_json(os.path.join(d, "config.json"), cfg)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(SHARED_TOK, f), os.path.join(d, f))
    w = mtm.decoder_weights(2026, "bf16", cfg, qk_norm=True)
    mtm.save_weights(w, os.path.join(d, "model.safetensors"))


def texts():
    long = mtm.CORPUS * 1
    return ["What is the capital of France?", "Paris is the capital and largest city of France.",
            "Photosynthesis converts light energy into chemical energy.", " ".join(long)]


def ragd(bin_, args, stdin=""):
    t = time.time()
    p = subprocess.run([bin_] + args, input=stdin.encode(), capture_output=True)
    dt = time.time() - t
    if p.returncode:
        raise SystemExit(f"ragd {' '.join(args)} failed: {p.stderr.decode()}")
    return p.stdout.decode(), dt


def jl(ts):
    return "".join(json.dumps({"text": t}) + "\n" for t in ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "ragd"))
    ap.add_argument("--dir", default="/tmp/ragd-qwen3-0.6b-random")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="speed only, on fixtures/models/qwen3-tiny")
    args = ap.parse_args()
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(args.threads)
    d = os.path.join(HERE, "..", "fixtures", "models", "qwen3-tiny") if args.tiny else args.dir
    if not args.tiny:
        t = time.time()
        write_model(d)
        print(f"model at {d} ({time.time() - t:.0f} s)", flush=True)
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    T = texts()
    res = {"shape": "tiny" if args.tiny else "qwen3-0.6b", "threads": args.threads}

    # ---- transformers reference + timing ----
    with torch.no_grad():
        ref_emb, n_tok, t_hf = [], 0, time.time()
        for s in T:
            ids = tok.encode(s, add_special_tokens=False).ids  # Qwen3 causal: no post-processor tokens
            h = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
            ref_emb.append((h / h.norm().clamp_min(1e-12)).numpy())
            n_tok += len(ids)
        res["hf_embed_tok_s"] = n_tok / (time.time() - t_hf)
        res["embed_tokens"] = n_tok
        yes, no = tok.token_to_id("yes"), tok.token_to_id("no")
        pre = tok.encode("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
                         "the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
                         "<|im_start|>user\n", add_special_tokens=False).ids
        suf = tok.encode("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", add_special_tokens=False).ids
        ref_scores = []
        for doc in T[1:]:
            body = f"<Instruct>: {TASK}\n<Query>: {T[0]}\n<Document>: {doc}"
            ids = pre + tok.encode(body, add_special_tokens=False).ids + suf
            lg = model(input_ids=torch.tensor([ids])).logits[0, -1]
            ref_scores.append(float(torch.softmax(torch.stack([lg[no], lg[yes]]), 0)[1]))
        prompt = "The capital of France is"
        pids = tok.encode(prompt, add_special_tokens=False).ids
        gen, past, cur, t_dec = [], None, torch.tensor([pids]), None
        for i in range(24):
            if i == 1:
                t_dec = time.time()
            out = model(input_ids=cur, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = int(torch.argmax(out.logits[0, -1]))
            gen.append(nxt)
            cur = torch.tensor([[nxt]])
        res["hf_decode_tok_s"] = 23 / (time.time() - t_dec)
    del model

    # ---- ragd ----
    base = ["--model", d, "--threads", str(args.threads)]
    out, _ = ragd(args.bin, ["embed"] + base, jl(T))
    got = [np.array(json.loads(l)["embedding"], dtype=np.float32) for l in out.splitlines()]
    res["embed_max_abs_err"] = float(max(np.abs(g - r).max() for g, r in zip(got, ref_emb)))
    out, _ = ragd(args.bin, ["rerank"] + base + ["--query", T[0]], jl(T[1:]))
    sc = [json.loads(l)["score"] for l in out.splitlines()]
    res["rerank_max_abs_err"] = float(max(abs(a - b) for a, b in zip(sc, ref_scores)))
    res["rerank_scores"] = sc
    out, _ = ragd(args.bin, ["generate"] + base + ["--prompt", prompt, "--max-tokens", "24", "--ignore-eos", "--json"])
    ids = json.loads(out)["ids"]
    same = 0
    while same < min(len(ids), len(gen)) and ids[same] == gen[same]:
        same += 1
    res["greedy_ids_equal"] = same
    res["greedy_ids_total"] = len(gen)
    res["greedy_all_equal"] = ids == gen

    # ---- ragd speed: differences of two runs exclude model load and weight conversion ----
    reps = 4 if not args.tiny else 64
    _, t0 = ragd(args.bin, ["embed"] + base, "")
    _, t1 = ragd(args.bin, ["embed"] + base, jl(T * reps))
    res["ragd_embed_tok_s"] = n_tok * reps / max(t1 - t0, 1e-9)
    n1, n2 = 8, 8 + (32 if not args.tiny else 256)
    _, a = ragd(args.bin, ["generate"] + base + ["--prompt", prompt, "--max-tokens", str(n1), "--ignore-eos"])
    _, b = ragd(args.bin, ["generate"] + base + ["--prompt", prompt, "--max-tokens", str(n2), "--ignore-eos"])
    res["ragd_decode_tok_s"] = (n2 - n1) / max(b - a, 1e-9)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
