#!/usr/bin/env python3
"""make_encoder_fixtures.py — tiny random-weight BERT / XLM-RoBERTa / bidirectional-Llama models and transformers' fp32 outputs
for tests/engine/test_encoders.c. Run by hand (CI needs no torch: the outputs are committed):

    pip install torch transformers safetensors
    python3 tests/engine/make_encoder_fixtures.py        # writes tests/engine/encoders/
    python3 tests/engine/make_encoder_fixtures.py --real # only the real-tokenizer ones (RAGD_SHARED=../shared)

For each model: encoders/<name>/ (config.json, model.safetensors fp32 as save_pretrained writes it, and a
placeholder tokenizer — tests/model/data/tiny_tokenizer plus [CLS] [SEP] <s> </s> as ids 283..286 and the
family's post-processor (BertProcessing / RobertaProcessing), because
the loader requires a tokenizer.json while the test feeds token ids directly; the server test uses it to
exercise the rerank pair path) and encoders/<name>.json: per input the ids, the token type
ids, the last hidden states [n, hidden], the cls / mean / max pooled vectors (sentence-transformers'
formulas over an all-ones mask; for the bidirectional Llama after its final norm) and, for ...ForSequenceClassification, the logits. Models run in eval
mode, eager attention, one sequence at a time (no padding), float32.
"""
import copy
import json
import os
import shutil

import torch
from transformers import (BertConfig, BertForSequenceClassification, BertModel, LlamaConfig,
                          LlamaForSequenceClassification, LlamaModel, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification, XLMRobertaModel)

TEMPERATURE = 0.2  # llama-nemotron-rerank-1b-v2's config.json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "encoders")
TOK = os.path.join(HERE, "..", "model", "data", "tiny_tokenizer")
VOCAB = 300  # >= the placeholder tokenizer's 283 ids

# the family's post-processor on the placeholder tokenizer (the server test's pairs go through it)
BERT_POST = {"type": "BertProcessing", "sep": ["[SEP]", 284], "cls": ["[CLS]", 283]}
ROBERTA_POST = {"type": "RobertaProcessing", "sep": ["</s>", 286], "cls": ["<s>", 285], "trim_offsets": True,
                "add_prefix_space": False}
POST = {"bert": BERT_POST, "bert_cls": BERT_POST, "xlmr": ROBERTA_POST, "xlmr_cls": ROBERTA_POST}

COMMON = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def randomize(model, gen):
    """Weights far from the init defaults so that every op matters (attention not uniform, LN not identity)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "norm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def inputs(gen, n_types, pad_id):
    """(ids, type_ids) cases: lengths 1..13, a pair with types 0 / 1 where the model has two types, and for
    RoBERTa a pad id inside the sequence (positions skip it)."""
    cases = []
    for n in (1, 2, 5, 8, 9, 13):
        ids = torch.randint(3, VOCAB, (n,), generator=gen).tolist()
        cases.append((ids, None))
    a = torch.randint(3, VOCAB, (4,), generator=gen).tolist()
    b = torch.randint(3, VOCAB, (6,), generator=gen).tolist()
    if n_types > 1:
        cases.append((a + b, [0] * 4 + [1] * 6))
    else:
        cases.append((a + [pad_id] + b, None))
    return cases


def run(model, ids, types, classify):
    x = torch.tensor([ids])
    full = torch.zeros(1, 1, len(ids), len(ids))  # NVIDIA's LlamaBidirectional*: the causal mask replaced by none
    if isinstance(model, LlamaModel):
        with torch.no_grad():
            return model(input_ids=x, attention_mask=full).last_hidden_state[0], None
    if isinstance(model, LlamaForSequenceClassification):  # pool "avg", then score(pooled) / temperature
        with torch.no_grad():
            h = model.model(input_ids=x, attention_mask=full).last_hidden_state[0]
            return h, model.score(h.sum(0) / h.shape[0]) / TEMPERATURE
    kw = {"token_type_ids": torch.tensor([types])} if types is not None else {}
    with torch.no_grad():
        if classify:
            out = model(input_ids=x, output_hidden_states=True, **kw)
            return out.hidden_states[-1][0], out.logits[0]
        return model(input_ids=x, **kw).last_hidden_state[0], None


def f(t):
    return [float("%.8g" % v) for v in t.reshape(-1).tolist()]  # 8 digits: far below the 1e-4 tolerance


def make(name, cls, cfg, seed, st_pooling=None, bf16=False):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = cls(cfg).eval()
    randomize(model, gen)
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    if bf16:  # bf16-representable weights stored as bf16 (half the bytes); the reference still runs in fp32
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.bfloat16().float())
        # a copy: .to() would also round the fp32 buffers (RoPE inv_freq) the reference runs with
        copy.deepcopy(model).to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    else:
        model.save_pretrained(d, safe_serialization=True)
    shutil.copy(os.path.join(TOK, "tokenizer_config.json"), os.path.join(d, "tokenizer_config.json"))
    with open(os.path.join(TOK, "tokenizer.json")) as fh:  # + the pair templates' special tokens (283..286)
        tok = json.load(fh)
    for i, t in enumerate(("[CLS]", "[SEP]", "<s>", "</s>")):
        tok["added_tokens"].append({"id": 283 + i, "content": t, "single_word": False, "lstrip": False,
                                    "rstrip": False, "normalized": False, "special": True})
    tok["post_processor"] = POST.get(name)
    with open(os.path.join(d, "tokenizer.json"), "w") as fh:
        json.dump(tok, fh, ensure_ascii=False)
    if st_pooling:
        os.makedirs(os.path.join(d, "1_Pooling"))
        with open(os.path.join(d, "modules.json"), "w") as fh:
            json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                       {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                       {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                      fh, indent=2)
        modes = ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"]
        with open(os.path.join(d, "1_Pooling", "config.json"), "w") as fh:
            json.dump({"word_embedding_dimension": cfg.hidden_size,
                       **{"pooling_mode_" + m: m == st_pooling for m in modes}}, fh, indent=2)
    classify = hasattr(model, "classifier") or hasattr(model, "score")
    cases = []
    for ids, types in inputs(gen, getattr(cfg, "type_vocab_size", 1), cfg.pad_token_id or 1):
        h, logits = run(model, ids, types, classify)
        c = {"ids": ids, "type_ids": types, "hidden": f(h), "cls": f(h[0]), "mean": f(h.sum(0) / h.shape[0]),
             "max": f(h.max(0).values), "last": f(h[-1])}
        if logits is not None:
            c["logits"] = f(logits)
        cases.append(c)
    if isinstance(model, (LlamaModel, LlamaForSequenceClassification)):  # as NVIDIA's retrievers' config.json
        with open(os.path.join(d, "config.json")) as fh:
            conf = json.load(fh)
        conf.update(architectures=["LlamaBidirectionalModel"], model_type="llama_bidirec", pooling="avg")
        if isinstance(model, LlamaForSequenceClassification):
            conf.update(architectures=["LlamaBidirectionalForSequenceClassification"], temperature=TEMPERATURE)
        with open(os.path.join(d, "config.json"), "w") as fh:
            json.dump(conf, fh, indent=2)
    with open(os.path.join(OUT, name + ".json"), "w") as fh:
        json.dump({"model": name, "transformers": __import__("transformers").__version__, "torch": torch.__version__,
                   "hidden_size": cfg.hidden_size, "cases": cases}, fh)
    print(name, sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d) if os.path.isfile(os.path.join(d, x))),
          "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    make("bert", BertModel, BertConfig(**COMMON, max_position_embeddings=64, type_vocab_size=2), 1, "mean_tokens")
    make("bert_cls", BertForSequenceClassification,
         BertConfig(**COMMON, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu_new", num_labels=1), 2)
    make("xlmr", XLMRobertaModel, XLMRobertaConfig(**COMMON, max_position_embeddings=66, type_vocab_size=1,
                                                  pad_token_id=1, bos_token_id=0, eos_token_id=2), 3, "cls_token")
    make("xlmr_cls", XLMRobertaForSequenceClassification,
         XLMRobertaConfig(**COMMON, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                          eos_token_id=2, num_labels=1), 4)


    llama = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=64, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=500000.0,
                 rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 16}, bos_token_id=0, eos_token_id=2)
    make("llama_bidir", LlamaModel, LlamaConfig(**llama), 5, bf16=True)
    make("llama_rerank", LlamaForSequenceClassification, LlamaConfig(**llama, num_labels=1, pad_token_id=2), 6,
         bf16=True)

    make_real()


# ---------------------------------------------------------------------------------------------------------
# Real tokenizers (issue 12 "whole path"): tiny random BERT weights over the real 30522-id vocabularies of
# ../shared/models, the model's own tokenizer files copied in, and transformers' fp32 outputs for real texts
# through the real HF tokenizer — tests/server/test_encoders.py checks text → ids → pooled vector / score.

SHARED = os.environ.get("RAGD_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))
REAL = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512,
            type_vocab_size=2, pad_token_id=0)

WORDS = ("retrieval augmented generation ranks passages by relevance before the language model writes an answer "
         "using the retrieved context while embeddings map each sentence to a vector whose cosine similarity "
         "measures meaning").split()


def real_texts():
    """Real sentences: plain, cased, accents, CJK, emoji, punctuation, digits, code, controls, a 99-char word,
    and long texts (> 512 tokens) that only fit truncated."""
    t = ["Hello world!", "What is the capital of France?", "Paris is the capital and largest city of France.",
         "The quick brown fox jumps over the lazy dog.", "HOW DO I RESET MY PASSWORD?",
         "Café déjà vu: naïve coöperation at the Zürich Hauptbahnhof.", "北京是中国的首都。", "東京タワーは333メートルです。",
         "서울은 한국의 수도입니다.", "Emoji test 🙂🚀 and a flag 🇫🇷.", "C'est l'été, n'est-ce pas?",
         "def f(x): return x ** 2  # squares", "Prices rose 3.5% to $1,234.56 in Q3 2024.",
         "tabs\tand\nnewlines\r\nand  double  spaces", "unaffable antidisestablishmentarianism",
         "a" * 99, "Straße, ﬁne ligatures, ½ and ²", "Ελληνικά και русский текст", "[CLS] literal [SEP] tokens [MASK]",
         "¿Dónde está la biblioteca?", "x", "The Eiffel Tower was completed in 1889 for the World's Fair.",
         "Machine learning models need data; data needs cleaning.", "   leading and trailing spaces   "]
    t.append(" ".join(WORDS[i % len(WORDS)] for i in range(700)))               # ~700 tokens
    t.append(" ".join(WORDS[(7 * i) % len(WORDS)] + "," for i in range(400)))    # punctuation doubles it
    return t


def real_pairs():
    docs = real_texts()
    qs = ["what is the capital of france", "How tall is the Eiffel Tower?", "password reset", "北京",
          " ".join(WORDS[(3 * i) % len(WORDS)] for i in range(300))]  # a long query: longest_first cuts both
    return [(q, d) for q in qs for d in docs[:8] + docs[-3:]]


def make_real_one(name, src, cls, seed, files, pooling=None):
    from transformers import AutoTokenizer
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cfg = BertConfig(**REAL, **({"num_labels": 1} if cls is BertForSequenceClassification else {}))
    cfg._attn_implementation = "eager"
    model = cls(cfg).eval()
    randomize(model, gen)
    with torch.no_grad():  # bf16-representable weights stored as bf16: the 30522 × 32 table stays ~2 MB
        for p in model.parameters():
            p.copy_(p.bfloat16().float())
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    copy.deepcopy(model).to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    srcdir = os.path.join(SHARED, "models", src)
    for fn in files:
        shutil.copy(os.path.join(srcdir, fn), os.path.join(d, fn))
    if pooling:
        os.makedirs(os.path.join(d, "1_Pooling"))
        with open(os.path.join(d, "modules.json"), "w") as fh:  # as the models' hub repos have it
            json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                       {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                       {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                      fh, indent=2)
        modes = ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"]
        with open(os.path.join(d, "1_Pooling", "config.json"), "w") as fh:
            json.dump({"word_embedding_dimension": cfg.hidden_size,
                       **{"pooling_mode_" + m: m == pooling for m in modes}}, fh, indent=2)
    tok = AutoTokenizer.from_pretrained(srcdir)  # the real tokenizer, from the shared folder
    cases = []
    with torch.no_grad():
        if pooling:
            for text in real_texts():
                enc = tok(text, truncation=True)  # sentence-transformers: truncation to max_seq_length 512
                h = model(input_ids=torch.tensor([enc["input_ids"]]),
                          token_type_ids=torch.tensor([enc["token_type_ids"]])).last_hidden_state[0]
                v = h[0] if pooling == "cls_token" else h.mean(0)
                v = torch.nn.functional.normalize(v, p=2, dim=0)
                full = len(tok(text)["input_ids"])
                c = {"text": text, "ids": enc["input_ids"], "n_untruncated": full, "embedding": f(v)}
                if full > tok.model_max_length:  # TEI's truncation_direction "Left"
                    tok.truncation_side = "left"
                    encl = tok(text, truncation=True)
                    tok.truncation_side = "right"
                    hl = model(input_ids=torch.tensor([encl["input_ids"]])).last_hidden_state[0]
                    vl = torch.nn.functional.normalize(hl[0] if pooling == "cls_token" else hl.mean(0), p=2, dim=0)
                    c.update(ids_left=encl["input_ids"], embedding_left=f(vl))
                cases.append(c)
        else:
            for q, doc in real_pairs():
                enc = tok(q, doc, truncation=True)
                out = model(input_ids=torch.tensor([enc["input_ids"]]),
                            token_type_ids=torch.tensor([enc["token_type_ids"]])).logits[0]
                full = len(tok(q, doc)["input_ids"])
                cases.append({"query": q, "document": doc, "ids": enc["input_ids"],
                              "type_ids": enc["token_type_ids"], "n_untruncated": full, "logit": f(out)[0]})
    with open(os.path.join(OUT, name + ".json"), "w") as fh:
        json.dump({"model": name, "tokenizer_from": src, "transformers": __import__("transformers").__version__,
                   "torch": torch.__version__, "pooling": pooling, "cases": cases}, fh, ensure_ascii=False)
    print(name, sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d) if os.path.isfile(os.path.join(d, x))),
          "bytes")


def make_real():
    make_real_one("minilm_real", "all-MiniLM-L6-v2", BertModel, 11,
                  ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"], "mean_tokens")
    make_real_one("bge_small_real", "bge-small-en-v1.5", BertModel, 12,
                  ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"], "cls_token")
    make_real_one("msmarco_real", "ms-marco-MiniLM-L-6-v2", BertForSequenceClassification, 13,
                  ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"])


if __name__ == "__main__":
    import sys
    make_real() if sys.argv[1:] == ["--real"] else main()
