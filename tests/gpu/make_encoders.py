# make_encoders.py — on the GPU machine: random-weight encoder / cross-encoder models at the shapes RAG
# stacks serve, saved as Hugging Face directories (bf16 safetensors), for encoder_check.py (ragd vs
# transformers) and bench/gpu_encoder_bench.py (ragd vs sentence-transformers):
#   bge-base      BertModel 12 x 768 (bge-base-en-v1.5's config), CLS pooling + Normalize (its modules.json)
#   bge-m3        XLMRobertaModel 24 x 1024, 8194 positions (bge-m3's config), CLS + Normalize
#   bge-rr-m3     XLMRobertaForSequenceClassification, the same shape, 1 label (bge-reranker-v2-m3)
#   nv-embed-1b   LlamaBidirectionalModel 16 x 2048, heads 32/8 x 64 (llama-nemotron-embed-1b-v2), mean + Normalize
#   nv-rerank-1b  LlamaBidirectionalForSequenceClassification, the same, pooling avg, temperature 0.2
# Tokenizers: BERT's real WordPiece vocabulary (bge-base's vocab.txt, as a tokenizer.json through
# BertTokenizerFast); XLM-R: a Unigram tokenizer trained here with the real RoBERTa post-processor (the
# checkpoints' sentencepiece model is not on this machine; the embedding keeps the real 250,002 rows);
# the NVIDIA models: the Qwen3 tokenizer (Llama 3's is not here), so their embedding has Qwen's 151,936
# rows instead of 128,256 — every other dimension is the real one.
# Weights: N(0, 1/fan_in) matrices (attention neither uniform nor one-hot), LayerNorm/RMSNorm weights 1 +
# 0.2 N, biases 0.1 N, embeddings 0.5 N, rounded to bf16 (the reference runs the same values in fp32).
# Usage: python3 make_encoders.py WORK BERT_VOCAB_TXT QWEN_TOKENIZER_DIR [names...]
import json, os, random, shutil, sys, time

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (BertConfig, BertModel, LlamaConfig, LlamaForSequenceClassification,
                          LlamaModel, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForSequenceClassification,
                          XLMRobertaModel)

work, bert_vocab, qwen_tok = sys.argv[1:4]
only = set(sys.argv[4:])
os.makedirs(work, exist_ok=True)
rnd = random.Random(7)
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her all she there would their we him been has when who will more no if out so said what up "
         "retrieval embedding reranker GPU kernel attention document query passage answer evidence model cache "
         "café naïve Zürich 東京 данные 123 4567 3.14 -- ( ) , . ! ? : ;").split()


def text(lo, hi):
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(lo, hi)))


def randomize(model, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g) if ("LayerNorm.weight" in name or "norm.weight" in name) \
                    else 0.1 * torch.randn(p.shape, generator=g)
            elif "embed" in name:
                v = 0.5 * torch.randn(p.shape, generator=g)
            else:
                v = torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5
            p.copy_(v.to(p.dtype).bfloat16().float())


def st_files(d, dim, mode):
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
              open(os.path.join(d, "modules.json"), "w"), indent=2)
    modes = ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"]
    json.dump({"word_embedding_dimension": dim, **{"pooling_mode_" + m: m == mode for m in modes}},
              open(os.path.join(d, "1_Pooling", "config.json"), "w"), indent=2)


def bert_tokenizer(d):
    from tokenizers.implementations import BertWordPieceTokenizer
    tok = BertWordPieceTokenizer(bert_vocab, lowercase=True)._tokenizer
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                            cls_token="[CLS]", mask_token="[MASK]", model_max_length=512).save_pretrained(d)


def xlmr_tokenizer(d):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    corpus = [text(5, 60) for _ in range(4000)]
    tok.train_from_iterator(corpus, trainers.UnigramTrainer(vocab_size=2000, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                                            unk_token="<unk>"))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.decoder = __import__("tokenizers").decoders.Metaspace()
    f = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                pad_token="<pad>", cls_token="<s>", sep_token="</s>", model_max_length=8192)
    f.save_pretrained(d)


def qwen_tokenizer(d):
    for f in os.listdir(qwen_tok):
        shutil.copy(os.path.join(qwen_tok, f), d)


def save(model, d, arch=None, extra=None):
    shutil.rmtree(d, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True, max_shard_size="20GB")
    if arch or extra:
        p = os.path.join(d, "config.json")
        c = json.load(open(p))
        if arch:
            c["architectures"] = [arch]
        c.update(extra or {})
        json.dump(c, open(p, "w"), indent=2)


def make(name):
    t0 = time.time()
    d = os.path.join(work, name)
    torch.manual_seed(0)
    with torch.device("cuda"):
        if name == "bge-base":
            m = BertModel(BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                     intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2,
                                     layer_norm_eps=1e-12, pad_token_id=0), add_pooling_layer=False)
        elif name in ("bge-m3", "bge-rr-m3"):
            cfg = XLMRobertaConfig(vocab_size=250002, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                   intermediate_size=4096, max_position_embeddings=8194, type_vocab_size=1,
                                   layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                   num_labels=1)
            m = XLMRobertaModel(cfg, add_pooling_layer=False) if name == "bge-m3" else XLMRobertaForSequenceClassification(cfg)
        else:
            cfg = LlamaConfig(vocab_size=151936, hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                              num_key_value_heads=8, head_dim=64, intermediate_size=8192, max_position_embeddings=131072,
                              rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, num_labels=1,
                              rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                              pad_token_id=151643, bos_token_id=151643, eos_token_id=151643)
            m = LlamaModel(cfg) if name == "nv-embed-1b" else LlamaForSequenceClassification(cfg)
    randomize(m, {"bge-base": 1, "bge-m3": 2, "bge-rr-m3": 3, "nv-embed-1b": 4, "nv-rerank-1b": 5}[name])
    if name == "bge-base":
        save(m, d)
        bert_tokenizer(d)
        st_files(d, 768, "cls_token")
    elif name == "bge-m3":
        save(m, d)
        xlmr_tokenizer(d)
        st_files(d, 1024, "cls_token")
    elif name == "bge-rr-m3":
        save(m, d)
        xlmr_tokenizer(d)
    elif name == "nv-embed-1b":
        save(m, d, "LlamaBidirectionalModel", {"model_type": "llama_bidirec", "pooling": "avg"})
        qwen_tokenizer(d)
        st_files(d, 2048, "mean_tokens")
    else:
        save(m, d, "LlamaBidirectionalForSequenceClassification",
             {"model_type": "llama_bidirec", "pooling": "avg", "temperature": 0.2})
        qwen_tokenizer(d)
    print(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e6:.0f}M parameters, saved in {time.time() - t0:.1f} s",
          flush=True)


for n in ("bge-base", "bge-m3", "bge-rr-m3", "nv-embed-1b", "nv-rerank-1b"):
    if not only or n in only:
        make(n)
