#!/usr/bin/env python3
"""gguf_make_fixtures.py — writes the tiny models of tests/gguf/fixtures/ (committed; CI has no `gguf`).

The same tiny weights are written as a Hugging Face directory (config.json, tokenizer.json,
tokenizer_config.json, model.safetensors) and as GGUF files with the `gguf` package, the way
llama.cpp's convert_hf_to_gguf.py writes them:
  llama/  LlamaForCausalLM, tied output (no output.weight), Q/K rows permuted for arch `llama`,
          tokenizer cut from SmolLM2's (pre "smollm");        f32.gguf f16.gguf bf16.gguf q.gguf
  llama3/ the llama model with Llama 3.x RoPE scaling (theta 500000: head_dim 8 puts one frequency in each
          band), stored in GGUF as rope_freqs.weight the way convert_hf_to_gguf computes it; f32.gguf q.gguf
  qwen2/  Qwen2ForCausalLM, tied, q/k/v biases (F32 in every variant); f32.gguf q.gguf
  qwen3/  Qwen3ForCausalLM, untied output, q_norm/k_norm, head_dim 16 ≠ hidden/heads, 336 embedding
          rows > tokenizer size, general.alignment 64, tokenizer cut from Qwen3's (pre "qwen2"); f32.gguf q.gguf
Weights are bf16-representable values with |w| in [0.02, 0.5] so that F32, F16 and BF16 files hold exactly
the same numbers. q.gguf mixes Q8_0 / Q4_0 / Q4_1 (norms stay F32); its twin HF directory q_hf/ holds the
dequantized values (gguf-py's dequantize, which transformers uses too), so loading q.gguf and q_hf/ must give
bit-identical f32 tensors.

Usage: python3 tools/gguf_make_fixtures.py [--smollm GGUF] [--out tests/gguf/fixtures]
  --smollm defaults to the file scripts/default-model.sh caches (the SmolLM2 tokenizer source).
"""
import argparse
import copy
import json
import os
import subprocess
import sys

import numpy as np
from safetensors.numpy import save_file

import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QWEN3_TOK = os.path.join(ROOT, "..", "shared", "models", "qwen3-tokenizer")

LLAMA = dict(arch="llama", n_embd=32, n_ff=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=8, n_vocab=320,
             eps=1e-5, theta=100000.0, max_pos=256, tied=True, qk_norm=False)
LLAMA3 = dict(LLAMA, theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
QWEN2 = dict(arch="qwen2", n_embd=32, n_ff=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=8, n_vocab=336,
             eps=1e-6, theta=1000000.0, max_pos=256, tied=True, qk_norm=False, qkv_bias=True)
QWEN3 = dict(arch="qwen3", n_embd=32, n_ff=64, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_vocab=336,
             eps=1e-6, theta=1000000.0, max_pos=256, tied=False, qk_norm=True)

# quantized variant: one of each type on the matrices, so every type meets every role somewhere
QTYPES = {"token_embd": Q.Q8_0, "output": Q.Q4_1, "attn_q": Q.Q4_0, "attn_k": Q.Q4_1, "attn_v": Q.Q8_0,
          "attn_output": Q.Q4_0, "ffn_gate": Q.Q4_1, "ffn_up": Q.Q4_0, "ffn_down": Q.Q8_0}


# ------------------------------------------------------------------------------------------------
# weights

def bf16_round(x):
    """Round float32 to the nearest bf16 value (ties to even), kept as float32."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def rand_w(rng, shape, lo=0.02, hi=0.5):
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return bf16_round((mag * sign).astype(np.float32))


def make_weights(c, seed):
    """HF-named float32 weights (PyTorch [out, in] layout)."""
    rng = np.random.default_rng(seed)
    E, F, hd = c["n_embd"], c["n_ff"], c["head_dim"]
    w = {"model.embed_tokens.weight": rand_w(rng, (c["n_vocab"], E)),
         "model.norm.weight": rand_w(rng, (E,), 0.5, 1.5)}
    for i in range(c["n_layer"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = rand_w(rng, (E,), 0.5, 1.5)
        w[p + "self_attn.q_proj.weight"] = rand_w(rng, (c["n_head"] * hd, E))
        w[p + "self_attn.k_proj.weight"] = rand_w(rng, (c["n_head_kv"] * hd, E))
        w[p + "self_attn.v_proj.weight"] = rand_w(rng, (c["n_head_kv"] * hd, E))
        if c.get("qkv_bias"):
            w[p + "self_attn.q_proj.bias"] = rand_w(rng, (c["n_head"] * hd,))
            w[p + "self_attn.k_proj.bias"] = rand_w(rng, (c["n_head_kv"] * hd,))
            w[p + "self_attn.v_proj.bias"] = rand_w(rng, (c["n_head_kv"] * hd,))
        w[p + "self_attn.o_proj.weight"] = rand_w(rng, (E, c["n_head"] * hd))
        if c["qk_norm"]:
            w[p + "self_attn.q_norm.weight"] = rand_w(rng, (hd,), 0.5, 1.5)
            w[p + "self_attn.k_norm.weight"] = rand_w(rng, (hd,), 0.5, 1.5)
        w[p + "post_attention_layernorm.weight"] = rand_w(rng, (E,), 0.5, 1.5)
        w[p + "mlp.gate_proj.weight"] = rand_w(rng, (F, E))
        w[p + "mlp.up_proj.weight"] = rand_w(rng, (F, E))
        w[p + "mlp.down_proj.weight"] = rand_w(rng, (E, F))
    if not c["tied"]:
        w["lm_head.weight"] = rand_w(rng, (c["n_vocab"], E))
    return w


def gguf_name(hf):
    """HF tensor name → GGUF tensor name (llama.cpp's tensor map for these archs)."""
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    i, rest = parts[2], ".".join(parts[3:])
    m = {"input_layernorm.weight": "attn_norm", "self_attn.q_proj.weight": "attn_q",
         "self_attn.k_proj.weight": "attn_k", "self_attn.v_proj.weight": "attn_v",
         "self_attn.q_proj.bias": "attn_q", "self_attn.k_proj.bias": "attn_k", "self_attn.v_proj.bias": "attn_v",
         "self_attn.o_proj.weight": "attn_output", "self_attn.q_norm.weight": "attn_q_norm",
         "self_attn.k_norm.weight": "attn_k_norm", "post_attention_layernorm.weight": "ffn_norm",
         "mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up", "mlp.down_proj.weight": "ffn_down"}
    return f"blk.{i}.{m[rest]}.{rest.rsplit('.', 1)[1]}"


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute, verbatim in effect."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def to_gguf_layout(c, hf, w):
    if c["arch"] == "llama" and hf.endswith("q_proj.weight"):
        return permute(w, c["n_head"], c["n_head"])
    if c["arch"] == "llama" and hf.endswith("k_proj.weight"):
        return permute(w, c["n_head"], c["n_head_kv"])
    return w


def unpermute(w, n_head):
    hd = w.shape[0] // n_head
    return w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ------------------------------------------------------------------------------------------------
# tokenizers: real ones cut down to a few hundred entries (merge i creates token first_merge_id + i)

def qwen3_tokenizer(n_merges):
    tj = json.load(open(os.path.join(QWEN3_TOK, "tokenizer.json"), encoding="utf-8"))
    tc = json.load(open(os.path.join(QWEN3_TOK, "tokenizer_config.json"), encoding="utf-8"))
    vocab = {s: i for s, i in tj["model"]["vocab"].items() if i < 256 + n_merges}
    merges = tj["model"]["merges"][:n_merges]
    for m in merges:
        assert vocab["".join(m)] < 256 + n_merges
    keep = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    old_added = {a["content"]: a for a in tj["added_tokens"]}
    added, remap = [], {}
    for k, content in enumerate(keep):
        a = dict(old_added[content])
        remap[a["id"]] = 256 + n_merges + k
        a["id"] = 256 + n_merges + k
        added.append(a)
    tj = copy.deepcopy(tj)
    tj["model"]["vocab"] = vocab
    tj["model"]["merges"] = merges
    tj["added_tokens"] = added
    tc = copy.deepcopy(tc)
    tc["added_tokens_decoder"] = {str(remap[int(i)]): v for i, v in tc["added_tokens_decoder"].items()
                                  if int(i) in remap}
    tc.pop("additional_special_tokens", None)
    tc["model_max_length"] = 256
    return tj, tc


def smollm_tokenizer(smollm_path, n_merges):
    r = gguf.GGUFReader(smollm_path)
    f = r.fields["tokenizer.ggml.tokens"]
    toks = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    f = r.fields["tokenizer.ggml.merges"]
    merges = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    tmpl = bytes(r.fields["tokenizer.chat_template"].parts[-1]).decode("utf-8")
    first = toks.index("".join(merges[0].split(" ")))  # 252: 17 specials + 235 single characters
    n = first + n_merges
    toks, merges = toks[:n], merges[:n_merges]
    idx = {t: i for i, t in enumerate(toks)}
    for m in merges:
        assert idx["".join(m.split(" "))] < n
    added = [{"id": i, "content": toks[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(17)]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": True},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
          "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                             "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                    "ignore_merges": False, "vocab": idx, "merges": [m.split(" ") for m in merges]}}
    tc = {"add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
          "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "clean_up_tokenization_spaces": False,
          "model_max_length": 256, "tokenizer_class": "GPT2Tokenizer", "chat_template": tmpl,
          "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added}}
    return tj, tc


def gguf_vocab(tj, tc, n_vocab):
    """tokens / token types / merges as convert_hf_to_gguf's _set_vocab_gpt2 writes them."""
    rev = {i: s for s, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj["added_tokens"]}
    for i, a in added.items():
        rev[i] = a["content"]
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            t = rev[i]
            looks_special = t.startswith("<|") and t.endswith("|>")
            tokens.append(t)
            types.append(gguf.TokenType.CONTROL if added[i]["special"] or looks_special
                         else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"]]
    return tokens, types, merges


# ------------------------------------------------------------------------------------------------
# writers

def hf_config(c, tok_ids):
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[c["arch"]]
    cfg = {"architectures": [arch], "model_type": c["arch"], "hidden_size": c["n_embd"],
           "intermediate_size": c["n_ff"], "num_hidden_layers": c["n_layer"],
           "num_attention_heads": c["n_head"], "num_key_value_heads": c["n_head_kv"], "head_dim": c["head_dim"],
           "rms_norm_eps": c["eps"], "rope_theta": c["theta"], "max_position_embeddings": c["max_pos"],
           "vocab_size": c["n_vocab"], "tie_word_embeddings": c["tied"], "hidden_act": "silu",
           "attention_bias": False, "rope_scaling": None, "torch_dtype": "float32"}
    cfg.update(tok_ids)
    if c.get("rope_scaling"):
        cfg["rope_scaling"] = c["rope_scaling"]
    if c["arch"] == "llama":
        cfg["mlp_bias"] = False
    return cfg


def write_hf(d, c, w, tj, tc, tok_ids):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(hf_config(c, tok_ids), f, indent=2)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=2)
    save_file({k: np.ascontiguousarray(v) for k, v in w.items()}, os.path.join(d, "model.safetensors"))


def write_gguf(path, c, w, tj, tc, tok_ids, pre, mode, alignment=None):
    """mode: 'f32' | 'f16' | 'bf16' (matrices in that type, norms F32) | 'q' (QTYPES)."""
    a = c["arch"]
    wr = gguf.GGUFWriter(path, a)
    if alignment:
        wr.add_custom_alignment(alignment)
    wr.add_name(f"ragd tiny {a} fixture")
    wr.add_context_length(c["max_pos"])
    wr.add_embedding_length(c["n_embd"])
    wr.add_block_count(c["n_layer"])
    wr.add_feed_forward_length(c["n_ff"])
    wr.add_head_count(c["n_head"])
    wr.add_head_count_kv(c["n_head_kv"])
    wr.add_rope_freq_base(c["theta"])
    wr.add_layer_norm_rms_eps(c["eps"])
    wr.add_vocab_size(c["n_vocab"])
    wr.add_rope_dimension_count(c["head_dim"])
    if c["head_dim"] != c["n_embd"] // c["n_head"]:
        wr.add_key_length(c["head_dim"])
        wr.add_value_length(c["head_dim"])
    wr.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                      "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q": gguf.LlamaFileType.MOSTLY_Q4_1}[mode])
    tokens, types, merges = gguf_vocab(tj, tc, c["n_vocab"])
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre(pre)
    wr.add_token_list(tokens)
    wr.add_token_types(types)
    wr.add_token_merges(merges)
    if tok_ids.get("bos_token_id") is not None:
        wr.add_bos_token_id(tok_ids["bos_token_id"])
    wr.add_eos_token_id(tok_ids["eos_token_id"])
    wr.add_pad_token_id(tok_ids["pad_token_id"])
    wr.add_add_bos_token(False)
    wr.add_chat_template(tc["chat_template"])
    if mode == "q":
        wr.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for hf, x in w.items():
        name = gguf_name(hf)
        x = to_gguf_layout(c, hf, x)
        if x.ndim == 1 or mode == "f32":
            wr.add_tensor(name, np.ascontiguousarray(x, dtype=np.float32))
        elif mode == "f16":
            wr.add_tensor(name, x.astype(np.float16))
        elif mode == "bf16":
            wr.add_tensor(name, quantize(x, Q.BF16), raw_dtype=Q.BF16)
        else:
            qt = QTYPES[name.split(".")[-2]]
            wr.add_tensor(name, quantize(x, qt), raw_dtype=qt)
    if c.get("rope_scaling"):
        wr.add_tensor("rope_freqs.weight", llama3_rope_factors(c))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def llama3_rope_factors(c):
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors for rope_type llama3, same torch arithmetic."""
    import math
    import torch
    rs = c["rope_scaling"]
    base, dim = c["theta"], c["head_dim"]
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_context_len = 8192  # the converter reads hparams["original_max_position_embeddings"], default 8192
    low_wavelen, high_wavelen = old_context_len / low, old_context_len / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_context_len / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    r = torch.tensor(out, dtype=torch.float32).numpy()
    assert r.min() == 1 and r.max() == factor and ((r > 1) & (r < factor)).any(), r  # all three bands
    return r


def dequantized_twin(c, w):
    """The f32 values q.gguf holds, in HF layout: quantize the GGUF-layout weight, dequantize, un-permute."""
    out = {}
    for hf, x in w.items():
        name = gguf_name(hf)
        if x.ndim == 1:
            out[hf] = x
            continue
        g = to_gguf_layout(c, hf, x)
        qt = QTYPES[name.split(".")[-2]]
        d = dequantize(quantize(g, qt), qt).reshape(g.shape).astype(np.float32)
        if c["arch"] == "llama" and hf.endswith("q_proj.weight"):
            d = unpermute(d, c["n_head"])
        elif c["arch"] == "llama" and hf.endswith("k_proj.weight"):
            d = unpermute(d, c["n_head_kv"])
        # rows are quantized independently, so permuting commutes with (de)quantizing
        assert np.array_equal(d, dequantize(quantize(x, qt), qt).reshape(x.shape)), hf
        out[hf] = d
    return out


def write_seeds(d):
    """Small files for the fuzzer's seed corpus: every value type, nested arrays, one tensor per type."""
    os.makedirs(d, exist_ok=True)
    wr = gguf.GGUFWriter(os.path.join(d, "all_types.gguf"), "llama")
    wr.add_uint8("t.u8", 200)
    wr.add_int8("t.i8", -5)
    wr.add_uint16("t.u16", 65000)
    wr.add_int16("t.i16", -30000)
    wr.add_uint32("t.u32", 4000000000)
    wr.add_int32("t.i32", -2000000000)
    wr.add_float32("t.f32", 1e-5)
    wr.add_bool("t.bool", True)
    wr.add_uint64("t.u64", 1 << 40)
    wr.add_int64("t.i64", -(1 << 50))
    wr.add_float64("t.f64", 0.125)
    wr.add_string("t.str", "héllo")
    wr.add_array("t.arr_str", ["a b", "Ġt", ""])
    wr.add_array("t.arr_i32", [1, -2, 3])
    wr.add_array("t.nested", [[1, 2], ["x", "y"]])
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    wr.add_tensor("f32", x)
    wr.add_tensor("f16", x.astype(np.float16))
    for qt in (Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1):
        wr.add_tensor(qt.name.lower(), quantize(x, qt), raw_dtype=qt)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm", default=None, help="SmolLM2 GGUF (tokenizer source); default: the cached default model")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "gguf", "fixtures"))
    args = ap.parse_args()
    smollm = args.smollm or subprocess.check_output(["bash", os.path.join(ROOT, "scripts", "default-model.sh")],
                                                    text=True).strip()
    write_seeds(os.path.join(os.path.dirname(args.out), "seeds"))
    for name, c, seed in (("llama", LLAMA, 1234), ("llama3", LLAMA3, 999), ("qwen2", QWEN2, 4321),
                          ("qwen3", QWEN3, 5678)):
        d = os.path.join(args.out, name)
        w = make_weights(c, seed)
        # permutation round trip, as a check of this script
        if c["arch"] == "llama":
            q = w["model.layers.0.self_attn.q_proj.weight"]
            assert np.array_equal(unpermute(permute(q, c["n_head"], c["n_head"]), c["n_head"]), q)
        if c["arch"] == "llama":
            tj, tc = smollm_tokenizer(smollm, c["n_vocab"] - 252)
            ids, pre = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}, "smollm"
        else:
            tj, tc = qwen3_tokenizer(c["n_vocab"] - 256 - 16 - 5)  # 16 padding rows, 5 added tokens
            base = len(tj["model"]["vocab"])
            ids, pre = {"bos_token_id": None, "eos_token_id": base + 2, "pad_token_id": base}, "qwen2"
        write_hf(os.path.join(d, "hf"), c, w, tj, tc, ids)
        modes = ("f32", "f16", "bf16", "q") if name == "llama" else ("f32", "q")
        for mode in modes:
            write_gguf(os.path.join(d, f"{mode}.gguf"), c, w, tj, tc, ids, pre, mode,
                       alignment=64 if c["arch"] == "qwen3" and mode == "f32" else None)
        write_hf(os.path.join(d, "q_hf"), c, dequantized_twin(c, w), tj, tc, ids)
        # cross-check with the tokenizers library: the cut tokenizer must load and round-trip
        from tokenizers import Tokenizer
        t = Tokenizer.from_file(os.path.join(d, "hf", "tokenizer.json"))
        enc = t.encode("Hello world 123, the in on<|im_end|>")
        assert max(enc.ids) < c["n_vocab"], enc.ids
        print(f"{d}: {len(tj['model']['vocab'])} BPE tokens, {len(tj['model']['merges'])} merges, "
              f"ids {enc.ids}", file=sys.stderr)


if __name__ == "__main__":
    main()
