# gpu_hf_bench.py — transformers SDPA on the SAME random model directory and the SAME length mixes
# as gpu_bench (left-padded batches, last-token pooling + normalize, as hf_baseline.py does).
# Usage: python3 gpu_hf_bench.py MODEL_DIR REFS_DIR
import sys, time
import torch
from transformers import Qwen3ForCausalLM

model_dir, refs = sys.argv[1:3]
model = Qwen3ForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()

def bench(fn, iters=3, warm=1):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        t0 = time.time(); fn(); torch.cuda.synchronize(); ts.append(time.time() - t0)
    return sorted(ts)[len(ts) // 2]

def mix(name, lens, bs, sort):
    g = torch.Generator().manual_seed(3)
    order = sorted(range(len(lens)), key=lambda i: lens[i]) if sort else list(range(len(lens)))
    batches = []
    for i in range(0, len(order), bs):
        L = [lens[j] for j in order[i:i + bs]]
        S = max(L)
        ids = torch.randint(0, 151643, (len(L), S), generator=g)
        mask = torch.zeros(len(L), S, dtype=torch.long)
        for k, l in enumerate(L):
            mask[k, S - l:] = 1
        batches.append((ids.cuda(), mask.cuda()))
    def run():
        with torch.no_grad():
            for ids, mask in batches:
                h = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
                torch.nn.functional.normalize(h[:, -1].float(), dim=-1)
    t = bench(run)
    print(f"transformers sdpa {name} batch {bs}{' length-sorted' if sort else ''}: {int(sum(lens) / t)} tokens/s", flush=True)

ll = list(map(int, open(f"{refs}/lens_long.txt").read().split()))
ls = list(map(int, open(f"{refs}/lens_short.txt").read().split()))
mix("long mix", ll, 32, False)
mix("long mix", ll, 32, True)
mix("short mix", ls, 128, False)
mix("short mix", ls, 128, True)
