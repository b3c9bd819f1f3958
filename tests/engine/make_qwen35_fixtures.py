#!/usr/bin/env python3
"""make_qwen35_fixtures.py — a tiny random-weight Qwen3.5 text model (Qwen3_5ForCausalLM: 3 Gated DeltaNet
layers + 1 gated full-attention layer) and transformers' fp32 outputs for tests/engine/test_qwen35.c. Run by
hand (CI needs no torch: the outputs are committed):

    pip install torch transformers safetensors
    python3 tests/engine/make_qwen35_fixtures.py      # writes tests/engine/qwen35/, qwen35_vl/, qwen35.json

qwen35/ is what save_pretrained writes for Qwen3_5ForCausalLM (config model_type qwen3_5_text, tensors
model.layers.N..., tied lm_head absent) plus the placeholder tokenizer of tests/model/data/tiny_tokenizer (the
loader requires one; the test feeds ids). qwen35_vl/ holds the same fp32 weights laid out as a
Qwen3_5ForConditionalGeneration checkpoint: config model_type qwen3_5 with the text config nested under
"text_config" (full_attention_interval instead of layer_types), tensors under model.language_model., and an
unused vision tensor and MTP tensor that the loader must skip.

qwen35.json: per input the ids, the last hidden states after the final norm [n, hidden] and the last
position's logits [vocab] (eager attention, one sequence, no padding, no cache: transformers' chunked delta
rule — the lengths cross its 64-token chunk), and for 3 prompts the 16 greedy ids of generate() (use_cache:
chunked prefill, then the recurrent decode with the conv / recurrent state cache), with the smallest top-1 /
top-2 logit margin seen, so a reader can tell the ids are not a near tie.
"""
import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig

HERE = os.path.dirname(os.path.abspath(__file__))
TOK = os.path.join(HERE, "..", "model", "data", "tiny_tokenizer")
VOCAB = 300  # >= the placeholder tokenizer's 283 ids
N_GEN = 16

CFG = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=4, num_attention_heads=4,
           num_key_value_heads=2, head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-6,
           tie_word_embeddings=True, linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8,
           linear_num_key_heads=2, linear_num_value_heads=4,
           layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"],
           rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
           bos_token_id=None, eos_token_id=None, pad_token_id=None)


def randomize(model, gen):
    """Weights far from the init defaults so that every op matters: (1 + w) norms with w != 0, the gated norm's
    w != 1, a spread of decays (A_log, dt_bias), a real conv kernel, attention not uniform."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.empty(p.shape).uniform_(0.3, 3.0, generator=gen)))
            elif name.endswith("dt_bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "linear_attn.norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "norm" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif "conv1d" in name:
                p.copy_(0.4 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def f(t):
    return [float("%.8g" % v) for v in t.reshape(-1).tolist()]  # 8 digits: far below the 1e-4 tolerance


def copy_tokenizer(d):
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK, fn), os.path.join(d, fn))


def write_vl(src, dst):
    """The same weights as a Qwen3_5ForConditionalGeneration checkpoint (text part nested)."""
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    t = load_file(os.path.join(src, "model.safetensors"))
    out = {("model.language_model." + k[len("model."):]) if k.startswith("model.") else k: v for k, v in t.items()}
    out["model.visual.patch_embed.proj.weight"] = torch.zeros(2, 3)  # not read by the text model
    out["mtp.fc.weight"] = torch.zeros(2, 2)                          # the MTP head: ignored
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src, "config.json")) as fh:
        text = json.load(fh)
    text.pop("layer_types")
    text["full_attention_interval"] = 4
    text.pop("architectures", None)
    tie = text.pop("tie_word_embeddings")
    conf = {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
            "tie_word_embeddings": tie, "text_config": text, "vision_config": {"depth": 1}}
    with open(os.path.join(dst, "config.json"), "w") as fh:
        json.dump(conf, fh, indent=2)
    copy_tokenizer(dst)


def main():
    gen = torch.Generator().manual_seed(35)
    torch.manual_seed(35)
    cfg = Qwen3_5TextConfig(**CFG)
    cfg._attn_implementation = "eager"
    model = Qwen3_5ForCausalLM(cfg).eval()
    randomize(model, gen)
    d = os.path.join(HERE, "qwen35")
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True)
    copy_tokenizer(d)
    write_vl(d, os.path.join(HERE, "qwen35_vl"))

    cases = []
    for n in (1, 2, 5, 9, 17, 70):
        ids = torch.randint(3, VOCAB, (n,), generator=gen).tolist()
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids]), output_hidden_states=True, use_cache=False)
        cases.append({"ids": ids, "hidden": f(out.hidden_states[-1][0]), "logits": f(out.logits[0, -1])})
    gens = []
    for n in (3, 8, 20):
        ids = torch.randint(3, VOCAB, (n,), generator=gen).tolist()
        with torch.no_grad():
            g = model.generate(torch.tensor([ids]), max_new_tokens=N_GEN, min_new_tokens=N_GEN, do_sample=False,
                               output_scores=True, return_dict_in_generate=True, use_cache=True)
        margin = min(float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in g.scores)
        gens.append({"prompt_ids": ids, "ids": g.sequences[0, n:].tolist(), "min_margin": margin})
    with open(os.path.join(HERE, "qwen35.json"), "w") as fh:
        json.dump({"model": "qwen35", "transformers": __import__("transformers").__version__,
                   "torch": torch.__version__, "hidden_size": cfg.hidden_size, "vocab_size": VOCAB,
                   "cases": cases, "generate": gens}, fh)
    for name in ("qwen35", "qwen35_vl"):
        dd = os.path.join(HERE, name)
        print(name, sum(os.path.getsize(os.path.join(dd, x)) for x in os.listdir(dd)), "bytes")
    print("qwen35.json", os.path.getsize(os.path.join(HERE, "qwen35.json")), "bytes;",
          "greedy min margins", [round(g["min_margin"], 4) for g in gens])


if __name__ == "__main__":
    main()
