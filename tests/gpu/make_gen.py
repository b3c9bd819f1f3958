# make_gen.py — on the GPU machine: small random-weight Qwen3 and Llama (head_dim 64, GQA, tied
# embeddings: the SmolLM2 layout) models as Hugging Face directories, plus transformers greedy
# generation references for test_gen.c, and a Qwen3-0.6B-shape model for the decode benchmark with
# transformers' generate timed at batch 1 and 32 (same prompts ragd's benchmark uses: lengths only).
# Usage: python3 make_gen.py WORK_DIR   → WORK_DIR/{qwen3,llama,q06b}/ (model) and …/refs/
#   refs: prompts.i32 (n, then len + ids per prompt), gen_bf16.i32 [n, NGEN] (transformers bf16 greedy),
#   logits_f32.f32 [n, NLOG, V] (transformers fp32 logits at the last prompt token and the next
#   NLOG-1 positions, teacher-forced on the bf16 greedy tokens), logits_bf16.f32 likewise in bf16.
import os, sys, struct, time
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

work = sys.argv[1]
NGEN, NLOG, NPROMPT = 40, 4, 12
DEV = "cuda"


def save(model, d):
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True, max_shard_size="20GB")


def build(kind, cfg, seed):
    torch.manual_seed(seed)
    with torch.device(DEV):
        model = (Qwen3ForCausalLM if kind == "qwen3" else LlamaForCausalLM)(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.generation_config.eos_token_id = None  # exactly max_new_tokens, no EOS suppression either
    return model.to(torch.bfloat16).eval()


def refs(model, d, V, seed):
    rd = os.path.join(d, "refs")
    os.makedirs(rd, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    prompts = []
    for i in range(NPROMPT):
        n = int(torch.randint(3, 60, (1,), generator=g))
        prompts.append(torch.randint(0, V, (n,), generator=g).tolist())
    with open(os.path.join(rd, "prompts.i32"), "wb") as f:
        f.write(struct.pack("<i", len(prompts)))
        for p in prompts:
            f.write(struct.pack("<i", len(p)) + np.asarray(p, np.int32).tobytes())
    gen = []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p], device=DEV)
            out = model.generate(ids, max_new_tokens=NGEN, do_sample=False,
                                 pad_token_id=0, attention_mask=torch.ones_like(ids))
            gen.append(out[0, len(p):].tolist())
    np.asarray(gen, np.int32).tofile(os.path.join(rd, "gen_bf16.i32"))
    for tag, dt in (("bf16", torch.bfloat16), ("f32", torch.float32)):
        m = model.to(dt)
        lg = []
        with torch.no_grad():
            for p, gtok in zip(prompts, gen):
                ids = torch.tensor([p + gtok[:NLOG - 1]], device=DEV)
                lo = m(input_ids=ids).logits[0, len(p) - 1:len(p) - 1 + NLOG].float().cpu().numpy()
                lg.append(lo)
        np.stack(lg).astype(np.float32).tofile(os.path.join(rd, f"logits_{tag}.f32"))
    model.to(torch.bfloat16)


t0 = time.time()
qcfg = Qwen3Config(vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                   num_attention_heads=8, num_key_value_heads=4, head_dim=128, max_position_embeddings=4096,
                   rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)
lcfg = LlamaConfig(vocab_size=8192, hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
                   num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
                   rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True)
for kind, cfg, seed in (("qwen3", qcfg, 1), ("llama", lcfg, 2)):
    m = build(kind, cfg, seed)
    d = os.path.join(work, kind)
    save(m, d)
    refs(m, d, cfg.vocab_size, seed)
    print(f"{kind}: saved with refs in {time.time() - t0:.1f} s", flush=True)
    del m

# Qwen3-0.6B shape, decode benchmark (transformers generate, bf16, SDPA, greedy, static lengths)
bcfg = Qwen3Config(vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                   num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                   rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)
m = build("qwen3", bcfg, 3)
save(m, os.path.join(work, "q06b"))
PL, NEW = 128, 128
if os.environ.get("RAGD_SKIP_HF_BENCH"):
    print(f"make_gen done in {time.time() - t0:.1f} s (transformers generate timing skipped)")
    sys.exit(0)
with torch.no_grad():
    for bs in (1, 32):
        ids = torch.randint(0, 151643, (bs, PL), device=DEV)
        kw = dict(do_sample=False, pad_token_id=0, attention_mask=torch.ones_like(ids))
        m.generate(ids, max_new_tokens=8, **kw)  # warm-up
        torch.cuda.synchronize()
        ts = time.time()
        out = m.generate(ids, max_new_tokens=NEW, **kw)
        torch.cuda.synchronize()
        dt = time.time() - ts
        assert out.shape[1] == PL + NEW, out.shape
        print(f"hf_decode bs {bs}: prompt {PL}, {NEW} new tokens in {dt:.3f} s: {bs * NEW / dt:.1f} tok/s "
              f"(prefill included)", flush=True)
print(f"make_gen done in {time.time() - t0:.1f} s", flush=True)
