#!/usr/bin/env python3
"""make_tiny_models.py — writes ragd's tiny random-weight test models to fixtures/models/<name>/.

Deterministic: tokenizers are trained by the HF `tokenizers` BPE trainer on a fixed corpus written
below; weights come from numpy PCG64 generators with fixed seeds; safetensors are written with the
`safetensors` package (sorted keys). Running it twice gives byte-identical files.

Models (each < 1 MB):
  qwen3-tiny         Qwen3ForCausalLM, head_dim 32 != hidden/heads (64/4), GQA 4/2, tied, bf16,
                     vocab rows padded beyond the tokenizer (like the real 151936 vs 151669)
  qwen3-embed-tiny   Qwen3-Embedding layout: no `model.` prefix, no lm_head, TemplateProcessing appends
                     <|endoftext|>, sentence-transformers files (lasttoken pooling + Normalize, query
                     prompt), f16
  qwen3-rerank-tiny  Qwen3-Reranker layout: Qwen3ForCausalLM, tied, "yes"/"no" single tokens, f32
  smollm-tiny        LlamaForCausalLM like SmolLM2: rope_theta 100000, tied, GPT-2 style tokenizer with
                     specials at ids 0..2, ChatML template with the default system prompt, f32
  llama3-tiny        LlamaForCausalLM with llama3 rope_scaling, untied lm_head, Llama 3.1 tokenizer
                     specials and chat template, f16
  qwen2-tiny         Qwen2ForCausalLM with q/k/v biases, untied, bf16

Usage: python3 tools/make_tiny_models.py [--out fixtures/models]
"""
import argparse
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")

# --------------------------------------------------------------------------------------------------
# training corpus (fixed text; repeated lines give the trainer stable counts)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A retrieval system embeds every passage and every query into the same vector space.",
    "Given a web search query, retrieve relevant passages that answer the query",
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided.",
    "Note that the answer can only be \"yes\" or \"no\".",
    "yes\nno\nyes\nno\nYes\nNo\nyes no yes no",
    "<Instruct>: <Query>: <Document>: Instruct: Query: system user assistant",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024",
    "What is the capital of France? Paris is the capital and largest city of France.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The mitochondria is the powerhouse of the cell; it produces ATP.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    "for (int i = 0; i < n; i++) { sum += x[i] * y[i]; }",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 3.14159",
    "Émile a mangé une crème brûlée à Paris. Größe, Straße, naïve café.",
    "日本語のテキストも少し含める。中文也有一点。",
    "Emoji and symbols: 🙂 → ∑ ≠ ≤ ≥ © ™ … — “quotes” ‘single’",
    "Large language models generate text one token at a time, conditioned on the prefix.",
    "Rotary position embeddings rotate query and key vectors by position dependent angles.",
    "Attention weights are computed with a softmax over scaled dot products.",
    "Tell me a short story about a robot who learns to paint.",
    "Once upon a time, in a small village by the sea, there lived an old fisherman.",
    "The weather today is sunny with a light breeze from the west.",
    "Summarize the following paragraph in one sentence.",
    "Hello world! Hello, world. hello World?",
    "   leading spaces, trailing spaces   \n\n\ttabs\tand newlines\r\n",
]


def corpus_lines():
    for rep in range(6):
        for line in CORPUS:
            yield line


def byte_level_bpe(split_regex, vocab_size, specials_first):
    """A byte-level BPE tokenizer trained on CORPUS. specials_first: names trained in at ids 0.."""
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False, ignore_merges=False))
    if split_regex is not None:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
    else:  # SmolLM2 / GPT-2 style: individual digits, then the GPT-2 regex inside ByteLevel
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[AddedToken(s, special=True, normalized=False)
                                                  for s in specials_first])
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return tok


def add_qwen_specials(tok):
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False)
                            for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]])
    tok.add_tokens([AddedToken(s, special=False, normalized=False) for s in ["<think>", "</think>"]])


def check_single(tok, words):
    for w in words:
        ids = tok.encode(w, add_special_tokens=False).ids
        assert len(ids) == 1, f"'{w}' is not a single token: {ids}"


def qwen_tokenizer():
    tok = byte_level_bpe(QWEN_SPLIT, 1000, [])
    add_qwen_specials(tok)
    check_single(tok, ["yes", "no", "<|endoftext|>", "<think>"])
    return tok


def added_tokens_decoder(tok):
    out = {}
    for i, t in sorted(tok.get_added_tokens_decoder().items()):
        out[str(i)] = {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                       "single_word": t.single_word, "special": t.special}
    return out


QWEN3_TEMPLATE = json.load(open(os.path.join(ROOT, "..", "shared", "models", "qwen3-tokenizer",
                                             "tokenizer_config.json")))["chat_template"] \
    if os.path.exists(os.path.join(ROOT, "..", "shared", "models", "qwen3-tokenizer", "tokenizer_config.json")) else None

SMOL_TEMPLATE = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                 "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                 "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")

# Llama 3.1 Instruct's template (tools branches included; we render only the tool-less path).
LLAMA31_TEMPLATE = open(os.path.join(HERE, "llama31_chat_template.jinja")).read()


def qwen_tokenizer_config(tok, template, model_max_length=131072):
    return {
        "add_bos_token": False, "add_prefix_space": False,
        "added_tokens_decoder": added_tokens_decoder(tok),
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None, "chat_template": template, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": model_max_length,
        "pad_token": "<|endoftext|>", "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


# --------------------------------------------------------------------------------------------------
# weights

class Weights:
    def __init__(self, seed, dtype):
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.dtype = dtype
        self.t = {}

    def _cast(self, a):
        a = a.astype(np.float32)
        if self.dtype == "f32":
            return a
        if self.dtype == "f16":
            return a.astype(np.float16)
        # bf16: round to nearest even, stored as uint16 then viewed by safetensors as BF16
        u = a.view(np.uint32).astype(np.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return u.astype(np.uint16)

    def normal(self, name, shape, std):
        self.t[name] = self._cast(self.rng.standard_normal(shape) * std)

    def norm(self, name, n):
        self.t[name] = self._cast(1.0 + 0.2 * self.rng.standard_normal(n))


def save_weights(w, path):
    if w.dtype == "bf16":
        # safetensors.numpy has no bfloat16: write the header ourselves (same layout as safetensors)
        header, off, blobs = {}, 0, []
        for k in sorted(w.t):
            a = np.ascontiguousarray(w.t[k])
            b = a.tobytes()
            header[k] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
            off += len(b)
            blobs.append(b)
        header["__metadata__"] = {"format": "pt"}
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(path, "wb") as f:
            f.write(len(h).to_bytes(8, "little"))
            f.write(h)
            for b in blobs:
                f.write(b)
    else:
        save_file({k: np.ascontiguousarray(v) for k, v in sorted(w.t.items())}, path, metadata={"format": "pt"})


def decoder_weights(seed, dtype, cfg, prefix="model.", lm_head=False, qk_norm=False, qkv_bias=False):
    w = Weights(seed, dtype)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", H // nh)
    w.normal(prefix + "embed_tokens.weight", (V, H), 0.5)
    for i in range(cfg["num_hidden_layers"]):
        p = f"{prefix}layers.{i}."
        w.norm(p + "input_layernorm.weight", H)
        w.normal(p + "self_attn.q_proj.weight", (nh * hd, H), H ** -0.5)
        w.normal(p + "self_attn.k_proj.weight", (nkv * hd, H), H ** -0.5)
        w.normal(p + "self_attn.v_proj.weight", (nkv * hd, H), H ** -0.5)
        if qkv_bias:
            w.normal(p + "self_attn.q_proj.bias", (nh * hd,), 0.3)
            w.normal(p + "self_attn.k_proj.bias", (nkv * hd,), 0.3)
            w.normal(p + "self_attn.v_proj.bias", (nkv * hd,), 0.3)
        if qk_norm:
            w.norm(p + "self_attn.q_norm.weight", hd)
            w.norm(p + "self_attn.k_norm.weight", hd)
        w.normal(p + "self_attn.o_proj.weight", (H, nh * hd), (nh * hd) ** -0.5)
        w.norm(p + "post_attention_layernorm.weight", H)
        w.normal(p + "mlp.gate_proj.weight", (I, H), H ** -0.5)
        w.normal(p + "mlp.up_proj.weight", (I, H), H ** -0.5)
        w.normal(p + "mlp.down_proj.weight", (H, I), I ** -0.5)
    w.norm(prefix + "norm.weight", H)
    if lm_head:
        w.normal("lm_head.weight", (V, H), 0.5)
    return w


TORCH_DTYPE = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def qwen3_config(V, dtype, tie, layers=3):
    return {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": None, "eos_token_id": None,
        "head_dim": 32, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
        "intermediate_size": 128, "max_position_embeddings": 4096, "max_window_layers": layers,
        "num_attention_heads": 4, "num_hidden_layers": layers, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
        "rope_scaling": None, "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": tie,
        "torch_dtype": TORCH_DTYPE[dtype], "use_cache": True, "use_sliding_window": False, "vocab_size": V,
    }


def make_qwen3(out, tok):
    name, dtype = "qwen3-tiny", "bf16"
    d = os.path.join(out, name)
    os.makedirs(d)
    V = 1024  # padded beyond the tokenizer's size, like the real checkpoints
    cfg = qwen3_config(V, dtype, True)
    cfg["bos_token_id"] = tok.token_to_id("<|endoftext|>")
    cfg["eos_token_id"] = tok.token_to_id("<|im_end|>")
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "generation_config.json"), {
        "bos_token_id": tok.token_to_id("<|endoftext|>"),
        "eos_token_id": [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")],
        "pad_token_id": tok.token_to_id("<|endoftext|>"), "do_sample": True, "temperature": 0.6, "top_k": 20,
        "top_p": 0.95})
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), qwen_tokenizer_config(tok, QWEN3_TEMPLATE))
    save_weights(decoder_weights(101, dtype, cfg, qk_norm=True), os.path.join(d, "model.safetensors"))


def make_qwen3_embed(out, tok_base):
    name, dtype = "qwen3-embed-tiny", "f16"
    d = os.path.join(out, name)
    os.makedirs(d)
    tok = Tokenizer.from_str(tok_base.to_str())
    eot = tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        processors.TemplateProcessing(single="$A:0 <|endoftext|>:0", pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
                                      special_tokens=[("<|endoftext|>", eot)]),
    ])
    V = tok.get_vocab_size(with_added_tokens=True)  # exactly the tokenizer's size (like 151669)
    cfg = qwen3_config(V, dtype, True, layers=2)
    cfg["bos_token_id"] = eot
    cfg["eos_token_id"] = eot
    write_json(os.path.join(d, "config.json"), cfg)
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), qwen_tokenizer_config(tok, QWEN3_TEMPLATE))
    w = decoder_weights(202, dtype, cfg, prefix="", qk_norm=True)
    save_weights(w, os.path.join(d, "model.safetensors"))
    write_json(os.path.join(d, "modules.json"), [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    os.makedirs(os.path.join(d, "1_Pooling"))
    write_json(os.path.join(d, "1_Pooling", "config.json"), {
        "word_embedding_dimension": 64, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True, "include_prompt": True})
    os.makedirs(os.path.join(d, "2_Normalize"))
    write_json(os.path.join(d, "config_sentence_transformers.json"), {
        "prompts": {"query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
                    "document": ""},
        "default_prompt_name": None, "similarity_fn_name": "cosine"})


def make_qwen3_rerank(out, tok):
    name, dtype = "qwen3-rerank-tiny", "f32"
    d = os.path.join(out, name)
    os.makedirs(d)
    V = tok.get_vocab_size(with_added_tokens=True)
    cfg = qwen3_config(V, dtype, True, layers=2)
    cfg["bos_token_id"] = tok.token_to_id("<|endoftext|>")
    cfg["eos_token_id"] = tok.token_to_id("<|im_end|>")
    write_json(os.path.join(d, "config.json"), cfg)
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), qwen_tokenizer_config(tok, QWEN3_TEMPLATE))
    save_weights(decoder_weights(303, dtype, cfg, qk_norm=True), os.path.join(d, "model.safetensors"))


def llama_config(V, dtype, tie, bos, eos, extra):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": bos, "eos_token_id": eos, "head_dim": 16, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 160, "max_position_embeddings": 2048,
        "mlp_bias": False, "num_attention_heads": 4, "num_hidden_layers": 3, "num_key_value_heads": 2,
        "pretraining_tp": 1, "rms_norm_eps": 1e-5, "rope_scaling": None, "rope_theta": 100000.0,
        "tie_word_embeddings": tie, "torch_dtype": TORCH_DTYPE[dtype], "use_cache": True, "vocab_size": V}
    cfg.update(extra)
    return cfg


def make_smollm(out):
    name, dtype = "smollm-tiny", "f32"
    d = os.path.join(out, name)
    os.makedirs(d)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>"]
    tok = byte_level_bpe(None, 900, specials)
    V = tok.get_vocab_size(with_added_tokens=True)
    cfg = llama_config(V, dtype, True, 1, 2, {"pad_token_id": 2})
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "generation_config.json"), {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2})
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "add_prefix_space": False, "added_tokens_decoder": added_tokens_decoder(tok),
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": "<|im_start|>",
        "chat_template": SMOL_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
        "model_max_length": 8192, "pad_token": "<|im_end|>", "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>", "vocab_size": V})
    save_weights(decoder_weights(404, dtype, cfg), os.path.join(d, "model.safetensors"))


def make_llama3(out):
    name, dtype = "llama3-tiny", "f16"
    d = os.path.join(out, name)
    os.makedirs(d)
    tok = byte_level_bpe(LLAMA3_SPLIT, 900, [])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
                "<|eot_id|>", "<|python_tag|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    V = tok.get_vocab_size(with_added_tokens=True)
    eos = [tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eom_id|>"), tok.token_to_id("<|eot_id|>")]
    cfg = llama_config(V, dtype, False, bos, eos, {
        "rope_theta": 500000.0, "max_position_embeddings": 4096,
        "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 256, "rope_type": "llama3"}})
    write_json(os.path.join(d, "config.json"), cfg)
    write_json(os.path.join(d, "generation_config.json"), {"bos_token_id": bos, "eos_token_id": eos,
                                                           "do_sample": True, "temperature": 0.6, "top_p": 0.9})
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "added_tokens_decoder": added_tokens_decoder(tok), "bos_token": "<|begin_of_text|>",
        "chat_template": LLAMA31_TEMPLATE, "clean_up_tokenization_spaces": True, "eos_token": "<|eot_id|>",
        "model_input_names": ["input_ids", "attention_mask"], "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast"})
    save_weights(decoder_weights(505, dtype, cfg, lm_head=True), os.path.join(d, "model.safetensors"))


def make_qwen2(out, tok):
    name, dtype = "qwen2-tiny", "bf16"
    d = os.path.join(out, name)
    os.makedirs(d)
    V = tok.get_vocab_size(with_added_tokens=True)
    cfg = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
        "bos_token_id": tok.token_to_id("<|endoftext|>"), "eos_token_id": tok.token_to_id("<|im_end|>"),
        "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
        "max_position_embeddings": 4096, "max_window_layers": 2, "num_attention_heads": 4, "num_hidden_layers": 2,
        "num_key_value_heads": 1, "rms_norm_eps": 1e-6, "rope_scaling": None, "rope_theta": 1000000.0,
        "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": TORCH_DTYPE[dtype], "use_cache": True,
        "use_sliding_window": False, "vocab_size": V}
    write_json(os.path.join(d, "config.json"), cfg)
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), qwen_tokenizer_config(tok, QWEN3_TEMPLATE))
    save_weights(decoder_weights(606, dtype, cfg, lm_head=True, qkv_bias=True), os.path.join(d, "model.safetensors"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "models"))
    args = ap.parse_args()
    assert QWEN3_TEMPLATE, "needs ../shared/models/qwen3-tokenizer/tokenizer_config.json for the Qwen3 template"
    for n in ["qwen3-tiny", "qwen3-embed-tiny", "qwen3-rerank-tiny", "smollm-tiny", "llama3-tiny", "qwen2-tiny"]:
        shutil.rmtree(os.path.join(args.out, n), ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    qtok = qwen_tokenizer()
    make_qwen3(args.out, qtok)
    make_qwen3_embed(args.out, qtok)
    make_qwen3_rerank(args.out, qtok)
    make_smollm(args.out)
    make_llama3(args.out)
    make_qwen2(args.out, qtok)
    for n in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, n, "model.safetensors")
        if os.path.exists(p):
            print(f"{n}: {os.path.getsize(p)} bytes of weights")


if __name__ == "__main__":
    main()
