# make_model.py — on the GPU machine: a random-weight Qwen3 model at the Qwen3-0.6B shape, saved as a
# Hugging Face directory (bf16 safetensors + the real Qwen3 tokenizer), plus transformers references
# for test_model.c (bf16 and fp32, each text alone, SDPA) and the benchmark length lists.
# Usage: python3 make_model.py MODEL_DIR REFS_DIR TOKENIZER_DIR [--layers N]
import os, sys, shutil, random, struct, time
import numpy as np
import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

model_dir, refs_dir, tok_dir = sys.argv[1:4]
n_layers = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else 28
os.makedirs(model_dir, exist_ok=True)
os.makedirs(refs_dir, exist_ok=True)
t0 = time.time()
cfg = Qwen3Config(vocab_size=151669, hidden_size=1024, intermediate_size=3072, num_hidden_layers=n_layers,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                  rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)
torch.manual_seed(0)
DEV = os.environ.get("RAGD_MM_DEVICE", "cuda")
with torch.device(DEV):
    model = Qwen3ForCausalLM(cfg)
with torch.no_grad():  # norm weights away from 1 so that the test sees them applied
    for name, p in model.named_parameters():
        if "norm" in name:
            p.copy_(1.0 + 0.2 * torch.randn_like(p))
model = model.to(torch.bfloat16).eval()
model.save_pretrained(model_dir, safe_serialization=True, max_shard_size="20GB")
for f in os.listdir(tok_dir):
    shutil.copy(os.path.join(tok_dir, f), model_dir)
print(f"model saved in {time.time() - t0:.1f} s: {sorted(os.listdir(model_dir))}", flush=True)

tok = AutoTokenizer.from_pretrained(tok_dir)
rnd = random.Random(42)
words = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her all she there would their we him been has when who will more no if out so said what up "
         "its about into than them can only other new some could time these two may then do first any my now such "
         "like our over man me even most made after also did many before must through back years where much your way "
         "well down should because each just those people how too little state good very make world still own see "
         "men work long get here between both life being under never day same another know while last might us great "
         "old year off come since against go came right used take three retrieval embedding GPU kernel attention "
         "café naïve Zürich 東京 данные 123 4567 3.14 -- ( ) , . ! ? : ;").split()

def text(lo, hi):
    return " ".join(rnd.choice(words) for _ in range(rnd.randint(lo, hi)))

def write_ids(name, seqs):
    with open(os.path.join(refs_dir, name), "wb") as f:
        f.write(struct.pack("<i", len(seqs)))
        for s in seqs:
            f.write(struct.pack("<i", len(s)))
            f.write(np.asarray(s, dtype=np.int32).tobytes())

def write_f32(name, arr):
    np.asarray(arr, dtype=np.float32).tofile(os.path.join(refs_dir, name))

texts = [text(3, 120) for _ in range(200)]
emb = [tok(t, add_special_tokens=False)["input_ids"] + [151643] for t in texts]
open(os.path.join(refs_dir, "texts.txt"), "w", encoding="utf-8").write("\n".join(texts) + "\n")
write_ids("embed_ids.i32", emb)
prefix = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
          "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
instr = "Given a web search query, retrieve relevant passages that answer the query"
p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
s_ids = tok(suffix, add_special_tokens=False)["input_ids"]
rr = []
for _ in range(32):
    body = f"<Instruct>: {instr}\n<Query>: {text(2, 12)}\n<Document>: {text(5, 150)}"
    rr.append(p_ids + tok(body, add_special_tokens=False)["input_ids"] + s_ids)
write_ids("rerank_ids.i32", rr)

def refs(tag):
    last, mean, logit = [], [], []
    with torch.no_grad():
        for s in emb:
            h = model.model(input_ids=torch.tensor([s], device=DEV)).last_hidden_state[0]
            last.append(h[-1].float().cpu().numpy())
            mean.append(h.float().mean(0).cpu().numpy())
        for s in rr:
            lg = model(input_ids=torch.tensor([s], device=DEV)).logits[0, -1]
            logit.append([lg[9693].float().item(), lg[2152].float().item()])
    write_f32(f"embed_last_{tag}.f32", np.stack(last))
    write_f32(f"embed_mean_{tag}.f32", np.stack(mean))
    write_f32(f"rerank_{tag}.f32", np.asarray(logit))

refs("bf16")
model = model.float()
refs("f32")
# benchmark lengths: the long mix is exactly hf_baseline.py's (torch seed 1); short mix seed 2
g = torch.Generator().manual_seed(1)
lens = torch.randint(64, 513, (256,), generator=g).tolist()
open(os.path.join(refs_dir, "lens_long.txt"), "w").write(" ".join(map(str, lens)))
g = torch.Generator().manual_seed(2)
open(os.path.join(refs_dir, "lens_short.txt"), "w").write(
    " ".join(map(str, torch.randint(16, 65, (4096,), generator=g).tolist())))
print(f"references written in {time.time() - t0:.1f} s; embed tokens {sum(map(len, emb))}, "
      f"rerank tokens {sum(map(len, rr))}", flush=True)
