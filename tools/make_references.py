#!/usr/bin/env python3
"""make_references.py — reference outputs of Hugging Face transformers (fp32, eager attention, CPU) for
ragd's tiny test models, written to fixtures/refs/<model>.json and committed (CI has no torch).

Per model:
  embed     ~12 texts (an instruction-prefixed query, a tiny one, a ~300-token one ...): token ids (from the
            `tokenizers` library with the tokenizer.json's post-processor, as HF applies it), the pooled
            hidden state after the final norm (model's pooling: sentence-transformers files, else last
            token), L2-normalized; Matryoshka dims (truncate, then renormalize).
  rerank    Qwen3-Reranker scoring of a query against 6 docs: prefix/body/suffix tokenized separately,
            score = sigmoid(logit(yes) - logit(no)) at the last position (qwen3 models only).
  generate  greedy continuation of raw prompts (no special tokens) and of a chat-rendered prompt: 32 new
            tokens by argmax over all logits, EOS not special-cased (ragd's --ignore-eos); per step the gap
            between the best and second-best logit (a near tie would make the comparison meaningless);
            logits of the first step.
  chat      apply_chat_template renderings (Qwen3: enable_thinking true/false and assistant turns with
            reasoning; SmolLM2: with and without system; Llama 3.1: with and without system) and their ids.

Usage: python3 tools/make_references.py [--models DIR] [--out fixtures/refs] [--only NAME]
"""
import argparse
import json
import os

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

QWEN3_EMBED_TASK = "Given a web search query, retrieve relevant passages that answer the query"
RERANK_PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
                 "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

LONG_TEXT = " ".join([
    "Retrieval augmented generation combines a search step with a language model.",
    "First, every document is split into passages and each passage is embedded into a vector.",
    "At query time the question is embedded with an instruction, the nearest passages are found,",
    "a reranker scores each candidate against the query, and the best ones are given to the generator.",
    "The quick brown fox jumps over the lazy dog; the lazy dog does not care at all.",
    "Numbers like 3.14159, 2024 and 42 are split into single digits by the tokenizer.",
    "Émile a mangé une crème brûlée à Paris. 日本語のテキストも少し含める。",
    "Rotary position embeddings rotate query and key vectors by position dependent angles,",
    "and attention weights are computed with a softmax over scaled dot products.",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who told stories.",
    "The weather today is sunny with a light breeze from the west, perfect for a long walk.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
])

EMBED_TEXTS = [
    ("What is the capital of France?", QWEN3_EMBED_TASK),
    ("What is the capital of France?", None),
    ("Paris is the capital and largest city of France.", None),
    ("The mitochondria is the powerhouse of the cell; it produces ATP.", None),
    ("Photosynthesis converts light energy into chemical energy.", None),
    ("explain photosynthesis", "Given a question, retrieve passages that answer it"),
    ("a", None),
    ("Hello world! Hello, world. hello World?", None),
    ("Émile a mangé une crème brûlée. 日本語 🙂 → ∑", None),
    ("   leading spaces, trailing spaces   \n\n\ttabs", None),
    ("yes no yes no", None),
    (LONG_TEXT, None),
]
EMBED_DIMS = [16, 32]

RERANK_QUERY = "What is the capital of France?"
RERANK_DOCS = [
    "Paris is the capital and largest city of France.",
    "The mitochondria is the powerhouse of the cell.",
    "France is a country in Western Europe; its capital is Paris.",
    "yes",
    "The quick brown fox jumps over the lazy dog.",
    "Berlin is the capital of Germany.",
]
RERANK_INSTRUCTIONS = [None, "Judge whether the document mentions a city"]

RAW_PROMPTS = ["Once upon a time", "The capital of France is", "def add(a, b):\n"]
CHAT_PROMPT = [{"role": "user", "content": "Tell me a short story about a robot who learns to paint."}]
N_NEW = 32

QWEN3_CHATS = [
    ([{"role": "user", "content": "Hello!"}], [True, False]),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}], [True, False]),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nThe user greets.\n</think>\n\nHello! How can I help?"},
      {"role": "user", "content": "Tell me a joke."}], [True, False]),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."},
      {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "<think>\nok\n</think>\n\nGoodbye!"}], [True]),
    ([{"role": "system", "content": "S1"}, {"role": "user", "content": "U1"}, {"role": "system", "content": "S2"},
      {"role": "user", "content": "U2 /no_think"}], [True, False]),
]
SMOL_CHATS = [
    ([{"role": "user", "content": "Hello!"}], [None]),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}], [None]),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."},
      {"role": "user", "content": "Tell me a joke."}], [None]),
]
LLAMA_CHATS = [
    ([{"role": "user", "content": "Hello!"}], [None]),
    ([{"role": "system", "content": "  You are terse.  "}, {"role": "user", "content": " What is 2+2? \n"}], [None]),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."},
      {"role": "user", "content": "Tell me a joke."}], [None]),
]

MODELS = {
    # name: (kind, family, chats)
    "qwen3-tiny": ("causal", "qwen3", QWEN3_CHATS),
    "qwen3-embed-tiny": ("embed", "qwen3", []),
    "qwen3-rerank-tiny": ("causal", "qwen3", QWEN3_CHATS[:1]),
    "smollm-tiny": ("causal", "smol", SMOL_CHATS),
    "llama3-tiny": ("causal", "llama3", LLAMA_CHATS),
    "qwen2-tiny": ("causal", "qwen3", QWEN3_CHATS[:1]),
}


def f32list(a):
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def l2norm(v):
    v = v.astype(np.float64)
    return (v / max(np.linalg.norm(v), 1e-12)).astype(np.float32)


def st_pooling(d):
    p = os.path.join(d, "1_Pooling", "config.json")
    if not os.path.exists(p):
        return "last"
    c = json.load(open(p))
    if c.get("pooling_mode_lasttoken"):
        return "last"
    if c.get("pooling_mode_mean_tokens"):
        return "mean"
    if c.get("pooling_mode_cls_token"):
        return "cls"
    raise SystemExit(f"{p}: unsupported pooling")


@torch.no_grad()
def hidden_states(model, ids):
    base = model.model if hasattr(model, "model") and hasattr(model, "lm_head") else model
    out = base(input_ids=torch.tensor([ids]), use_cache=False)
    return out.last_hidden_state[0].float().numpy()  # [T, H] after the final norm


@torch.no_grad()
def last_logits(model, ids):
    out = model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0, -1].float().numpy()


def embed_refs(model, tok, d, dims_list):
    pooling = st_pooling(d)
    items = []
    for text, instr in EMBED_TEXTS:
        full = f"Instruct: {instr}\nQuery:{text}" if instr else text
        ids = tok.encode(full, add_special_tokens=True).ids
        h = hidden_states(model, ids)
        pooled = {"last": h[-1], "mean": h.mean(0), "cls": h[0]}[pooling]
        emb = l2norm(pooled)
        dims = {}
        for k in dims_list:
            dims[str(k)] = f32list(l2norm(pooled[:k]))
        items.append({"text": text, "instruction": instr, "ids": ids, "embedding": f32list(emb), "dims": dims})
    return {"pooling": pooling, "normalize": True, "items": items}


def rerank_refs(model, tok):
    yes, no = tok.token_to_id("yes"), tok.token_to_id("no")
    pre = tok.encode(RERANK_PREFIX, add_special_tokens=False).ids
    suf = tok.encode(RERANK_SUFFIX, add_special_tokens=False).ids
    out = {"yes_id": yes, "no_id": no, "query": RERANK_QUERY, "cases": []}
    for instr in RERANK_INSTRUCTIONS:
        items = []
        for doc in RERANK_DOCS:
            body = f"<Instruct>: {instr or QWEN3_EMBED_TASK}\n<Query>: {RERANK_QUERY}\n<Document>: {doc}"
            ids = pre + tok.encode(body, add_special_tokens=False).ids + suf
            lg = last_logits(model, ids)
            ly, ln = float(lg[yes]), float(lg[no])
            score = float(torch.softmax(torch.tensor([ln, ly], dtype=torch.float32), 0)[1])
            items.append({"doc": doc, "ids": ids, "logit_yes": ly, "logit_no": ln, "score": score})
        out["cases"].append({"instruction": instr, "items": items})
    return out


@torch.no_grad()
def greedy(model, ids, n_new):
    ids = list(ids)
    gen, margins, first = [], [], None
    past = None
    cur = torch.tensor([ids])
    for step in range(n_new):
        out = model(input_ids=cur, past_key_values=past, use_cache=True)
        past = out.past_key_values
        lg = out.logits[0, -1].float()
        if first is None:
            first = lg.numpy().copy()
        top2 = torch.topk(lg, 2)
        margins.append(float(top2.values[0] - top2.values[1]))
        nxt = int(torch.argmax(lg))
        gen.append(nxt)
        cur = torch.tensor([[nxt]])
    # cross-check the cached loop against a full recompute (HF's own consistency)
    full = model(input_ids=torch.tensor([ids + gen[:-1]]), use_cache=False).logits[0].float()
    recompute = [int(x) for x in torch.argmax(full[len(ids) - 1:], dim=-1)]
    assert recompute == gen, "cached and uncached greedy disagree"
    return gen, margins, first


def generate_refs(model, tok, hf_tok, family):
    out = []
    prompts = [(p, False, tok.encode(p, add_special_tokens=False).ids) for p in RAW_PROMPTS]
    kw = {"enable_thinking": False} if family == "qwen3" else {}
    chat_text = hf_tok.apply_chat_template(CHAT_PROMPT, tokenize=False, add_generation_prompt=True, **kw)
    prompts.append((chat_text, True, tok.encode(chat_text, add_special_tokens=False).ids))
    for text, chat, ids in prompts:
        gen, margins, first = greedy(model, ids, N_NEW)
        out.append({"prompt": text, "chat": chat, "messages": CHAT_PROMPT if chat else None,
                    "enable_thinking": False if (chat and family == "qwen3") else None,
                    "prompt_ids": ids, "ids": gen,
                    "text": tok.decode(gen, skip_special_tokens=False),
                    "text_skip_special": tok.decode(gen, skip_special_tokens=True),
                    "min_margin": min(margins), "first_logits": f32list(first)})
    return out


def chat_refs(hf_tok, tok, chats):
    out = []
    for msgs, thinks in chats:
        for th in thinks:
            kw = {} if th is None else {"enable_thinking": th}
            text = hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kw)
            out.append({"messages": msgs, "enable_thinking": th, "add_generation_prompt": True, "text": text,
                        "ids": tok.encode(text, add_special_tokens=False).ids})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(ROOT, "fixtures", "models"))
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "refs"))
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    for name, (kind, family, chats) in MODELS.items():
        if args.only and name != args.only:
            continue
        d = os.path.join(args.models, name)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        hf_tok = AutoTokenizer.from_pretrained(d)
        cls = AutoModel if kind == "embed" else AutoModelForCausalLM
        model = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        ref = {"model": name, "generator": "tools/make_references.py", "torch": torch.__version__,
               "transformers": __import__("transformers").__version__}
        ref["embed"] = embed_refs(model, tok, d, EMBED_DIMS)
        if family == "qwen3" and kind == "causal" and tok.token_to_id("yes") is not None:
            ref["rerank"] = rerank_refs(model, tok)
        if kind == "causal":
            ref["generate"] = generate_refs(model, tok, hf_tok, family)
        ref["chat"] = chat_refs(hf_tok, tok, chats)
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(ref, f, ensure_ascii=False)
            f.write("\n")
        margins = [g["min_margin"] for g in ref.get("generate", [])]
        print(f"{name}: embed {len(ref['embed']['items'])} texts (long: {len(ref['embed']['items'][-1]['ids'])} "
              f"tokens), gen min margin {min(margins) if margins else '-'}")


if __name__ == "__main__":
    main()
