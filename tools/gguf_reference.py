#!/usr/bin/env python3
"""gguf_reference.py — transformers' reference outputs for the embedded default model (SmolLM2 Q4_1 GGUF).

Loads the GGUF that scripts/default-model.sh caches with transformers (`from_pretrained(dir,
gguf_file=...)`, which dequantizes every tensor to fp32 with gguf-py and reverses llama's Q/K permutation)
and its tokenizer (built by transformers from the GGUF's tokenizer.ggml.* keys), then records:
  - greedy generations (input ids, output ids, text, and the top-1 − top-2 logit margin of every step, so a
    mismatch can be told apart from a near tie) for plain and chat-formatted prompts, incl. "What is the
    capital of France?";
  - for a few tensors, the sha256 of the fp32 weights transformers holds (HF layout), their sum and a few
    values, so that ragd's load-time dequantization (ragd_tensor_to_f32) can be checked bit for bit.
Writes fixtures/refs/smollm2_gguf_greedy.json (committed: CI has no torch/transformers).

Usage: python3 tools/gguf_reference.py [--gguf PATH] [--out fixtures/refs/smollm2_gguf_greedy.json]
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROMPTS = [
    {"name": "chat_capital", "messages": [{"role": "user", "content": "What is the capital of France?"}],
     "max_new_tokens": 48},
    {"name": "chat_colors", "messages": [{"role": "user", "content": "Name three primary colors."}],
     "max_new_tokens": 40},
    {"name": "chat_system", "messages": [{"role": "system", "content": "You are a terse assistant."},
                                         {"role": "user", "content": "How many legs does a spider have?"}],
     "max_new_tokens": 32},
    {"name": "plain_fox", "text": "The quick brown fox", "max_new_tokens": 24},
    {"name": "plain_code", "text": "def fibonacci(n):\n", "max_new_tokens": 32},
]

TENSORS = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
           "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
           "model.layers.0.mlp.down_proj.weight", "model.layers.29.mlp.up_proj.weight",
           "model.layers.29.input_layernorm.weight", "model.norm.weight"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "refs", "smollm2_gguf_greedy.json"))
    args = ap.parse_args()
    path = args.gguf or subprocess.check_output(["bash", os.path.join(ROOT, "scripts", "default-model.sh")],
                                                text=True).strip()
    warnings.filterwarnings("ignore")
    import numpy as np
    import torch
    import transformers
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    d, f = os.path.dirname(path), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    with open(path, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()

    out = {"model_file": f, "model_sha256": sha,
           "generator": "tools/gguf_reference.py",
           "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                        "gguf": getattr(gguf, "__version__", "?"), "numpy": np.__version__},
           "dtype": "float32", "decoding": "greedy (do_sample=False), stops at eos id 2 or max_new_tokens",
           "eos_token_id": int(model.config.eos_token_id) if not isinstance(model.config.eos_token_id, list)
           else model.config.eos_token_id,
           "prompts": [], "tensors": []}

    for p in PROMPTS:
        if "messages" in p:
            text = tok.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True)
        else:
            text = p["text"]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            g = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False,
                               max_new_tokens=p["max_new_tokens"], output_logits=True,
                               return_dict_in_generate=True, pad_token_id=2)
        new = g.sequences[0, len(ids):].tolist()
        margins = []
        for lg in g.logits:
            top = torch.topk(lg[0].float(), 2).values
            margins.append(round(float(top[0] - top[1]), 5))
        rec = {k: v for k, v in p.items()}
        rec.update({"prompt_text": text, "input_ids": ids, "output_ids": new,
                    "output_text": tok.decode(new, skip_special_tokens=True),
                    "min_margin": min(margins), "margins": margins})
        out["prompts"].append(rec)
        print(f"{p['name']}: {len(ids)} in, {len(new)} out, min margin {min(margins):.4f}: "
              f"{rec['output_text']!r}", file=sys.stderr)

    sd = model.state_dict()
    for name in TENSORS:
        w = sd[name].detach().float().contiguous().numpy()
        rows = sorted({0, 1, 31, 32, w.shape[0] - 1}) if w.ndim == 2 else []
        out["tensors"].append({
            "name": name, "shape": list(w.shape),
            "sha256_f32": hashlib.sha256(w.astype("<f4").tobytes()).hexdigest(),
            "sum": float(w.astype(np.float64).sum()),
            "rows": {str(r): [float(v) for v in w[r, :8]] for r in rows},
            "first": [float(v) for v in w.reshape(-1)[:8]],
        })
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
