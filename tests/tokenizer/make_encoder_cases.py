#!/usr/bin/env python3
"""make_encoder_cases.py — fixtures and Hugging Face references for the encoder tokenizers (WordPiece and
Unigram): what embedding models and cross-encoders use.

Needs `tokenizers` (0.23.3), `sentencepiece` (to train a real SentencePiece model, whose nmt_nfkc
precompiled charsmap the Unigram fixtures carry) and `transformers` (to convert the vocab.txt-only BERT
folders exactly as BertTokenizerFast does). CI has none of them: the outputs are committed.

Writes under tests/tokenizer/:
  fixtures/wp_misc/tokenizer.json   WordPiece trained here: BertNormalizer(strip_accents=true, lowercase=false,
                                    no Chinese handling), WhitespaceSplit, max_input_chars_per_word 12,
                                    BertProcessing, WordPiece decoder without cleanup
  fixtures/wp_minilm2/tokenizer.json all-MiniLM-L6-v2's vocabulary with clean_text/handle_chinese_chars off,
                                    strip_accents false, the Whitespace pre-tokenizer, RobertaProcessing
  fixtures/uni_spm/tokenizer.json   XLM-R layout: a SentencePiece Unigram trained here (nmt_nfkc), normalizer
                                    Precompiled + Replace(" {2,}" → " "), Metaspace (always, split),
                                    <s> A </s></s> B </s>, Metaspace decoder
  fixtures/uni_bf/tokenizer.json    Unigram trained by tokenizers with byte_fallback, NFKC + Strip(right) +
                                    Replace, Metaspace (first, split), <mask> lstrip, pair type ids 0/1
  fixtures/uni_nosplit/tokenizer.json the uni_spm model with Lowercase, Metaspace (never, no split), RobertaProcessing
  fixtures/uni_xlmr/tokenizer.json  uni_spm with an older nmt_nfkc charsmap build than sentencepiece 0.2.3 writes
                                    (the one older models such as XLM-R were trained with, we believe): regenerated only when
                                    --xlmr-charsmap names a Precompiled JSON holding it (spm_precompiled's
                                    test.json, Apache-2.0)
  fixtures/bpe_meta/tokenizer.json  a character BPE trained here behind Metaspace (always, split) with <unk> +
                                    fuse_unk and the Metaspace decoder (a SentencePiece-style BPE)
  cases/<name>.jsonl with, per text: ids, ids_special, type_ids_special, decoded / decoded_skip (of ids),
  decoded_special / decoded_special_skip (of ids_special); pair rows {"pair": [a, b|null], "add_special",
  "trunc": null|{strategy, max_length, direction}, "ids", "type_ids"} or {"error": ...}; 1 MB inputs
  (count + FNV hash); random-id decodes. Names: wp_minilm, wp_bge_small, wp_bge_base, wp_msmarco (the
  real models in shared/models), wp_misc, wp_minilm2, uni_spm, uni_bf, uni_nosplit, uni_xlmr, bpe_meta.

Run: python3 tests/tokenizer/make_encoder_cases.py [--shared ../shared] [--only NAME ...]   (~1 min)
"""
import argparse
import io
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from tok_make_refs import BIG, WORDS, fnv_ids, gen_text, hard_texts, write_decode_cases  # noqa: E402


def encoder_hard_texts():
    t = []
    # long words around max_input_chars_per_word (100) and the fixture's 12
    t += ["a" * 99, "a" * 100, "a" * 101, "b" * 150 + " ok", "supercalifragilisticexpialidocious" * 3,
          "x" * 11, "x" * 12, "x" * 13, "é" * 100, "é" * 101, "日" * 120, "longword" * 13 + "!"]
    # accents, case, strip_accents
    t += ["Héllo Wörld ÇA VA", "ÀÉÎÕÜ àéîõü", "Ångström Ωmega ǅ ǈ", "İstanbul ıi", "ß ẞ ﬀ", "ſ ﬅ",
          "naïve café résumé", "e\u0301\u0302 o\u0308\u0304", "Ǆ Ǉ Ǌ ǲ", "ΆΈΉΊΌΎΏ ΐ ΰ", "Ⓐⓑ ⅷ ℌ ℍ"]
    # CJK blocks (handle_chinese_chars ranges and neighbours)
    t += ["中文字符", "\u4e00\u9fff\u3400\u4dbf", "\U00020000\U0002a6df\U0002a700\U0002b73f", "\U0002b740\U0002b820",
          "\U0002b920\U0002ceaf\U0002ceb0", "\uf900\ufaff\U0002f800\U0002fa1f", "ひらがなカタカナ", "한글テスト中文",
          "\u3000全角スペース\uff01\uff1f", "漢字kanji混合123", "\U00031350\U0003134a"]
    # controls, format characters, whitespace kinds
    t += ["a\x00b\x01c\x1fd", "\x7f\x80\x9f", "zero\u200bwidth\u200cjoin\u200dx", "\u2060\ufeff\u00ad", "a\u180eb",
          "a\u2028b\u2029c", "a\u00a0b\u1680c\u2000d\u200ae\u202ff\u205fg\u3000h", "a\u0085b", "a\x1cb\x1dc\x1ed\x1fe",
          "\t\n\r\x0b\x0c mixed \t\t\n\n", "   leading", "trailing   ", "a  \t  b", "\ue000\uf8ff\U000f0000",
          "\U000e0001\U000e0020tag", "\ud7ff\ufffd\uffff"]
    # emoji, new and old
    t += ["🥰🫠🪿", "😀 😃 😄", "👩🏽‍💻 x", "🇫🇷🇩🇪", "1️⃣ ©️ ®️", "🧑‍🤝‍🧑", "☕ ♥ ✨", "🫶🏻 heart hands"]
    # punctuation the BERT pre-tokenizer isolates
    t += ["Hello, world! How's it going?", "a.b,c;d:e", "(parens) [brackets] {braces}", "«quotes» „low“ ‘single’",
          "em—dash en–dash ‐hyphen", "¿Qué? ¡Sí!", "$100 €50 £30 ¥20", "50% off!!!", "#hashtag @user ^caret ~tilde",
          "a`b|c\\d", "…ellipsis·middle dot", "⁂ ※ ‰ ′ ″", "\u055a\u058a\u05be\u0609\u060c", "〔〕【】「」『』",
          "+-*/=<>", "don't can't I'm we'll they're", " . , ! ? ' "]
    # the special-token strings of BERT / XLM-R
    t += ["[CLS] hi [SEP]", "[cls] lower", "[UNK][PAD][MASK]", "a[MASK]b", "<s>x</s>", "<s> x </s>", "<mask>",
          "a <mask> b", "x<mask>y", "<pad><unk>", "▁already▁meta", "▁", "▁▁ ▁", " ▁x"]
    # byte fallback material (characters a small Unigram has not seen)
    t += ["\U0001f9ff amulet", "ꙮ multiocular o", "𓀀 hieroglyph", "Ꭰꭰ cherokee", "ᚠᛇᚻ runes", "\u0f00\u0f01"]
    return t


def random_texts(n, seed):
    rng = random.Random(seed)
    blocks = [(0x20, 0x7e), (0x0, 0x1f), (0x80, 0x24f), (0x300, 0x36f), (0x370, 0x52f), (0x590, 0x6ff),
              (0x900, 0xdff), (0x1100, 0x11ff), (0x2000, 0x206f), (0x2070, 0x2bff), (0x3000, 0x30ff),
              (0x3400, 0x4dbf), (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0xe000, 0xe0ff), (0xf900, 0xfaff),
              (0xfb00, 0xfdff), (0xfe00, 0xffff), (0x10000, 0x1ffff), (0x1f300, 0x1faff), (0x20000, 0x2ffff),
              (0xe0000, 0xe01ef)]
    out = []
    for _ in range(n):
        k = rng.randint(1, 24)
        s = []
        for _ in range(k):
            a, b = rng.choice(blocks)
            c = rng.randint(a, b)
            if 0xD800 <= c <= 0xDFFF:
                c = 0x41
            s.append(chr(c))
            if rng.random() < 0.2:
                s.append(" ")
        out.append("".join(s))
    return out


def corpus(shared):
    rows = [json.loads(l) for l in open(os.path.join(shared, "cases/tokenizer/qwen3_public.jsonl"), encoding="utf-8")]
    return [r["text"] for r in rows] + hard_texts() + encoder_hard_texts() + random_texts(150, 7)


TRUNCS = [None, ("longest_first", 16, "right"), ("longest_first", 32, "right"), ("longest_first", 7, "right"),
          ("longest_first", 24, "left"), ("longest_first", 512, "right"), ("only_first", 20, "right"),
          ("only_second", 20, "right"), ("only_first", 12, "left"), ("longest_first", 9, "right")]


def enc(tok, a, b, add_special, trunc):
    if trunc:
        tok.enable_truncation(trunc[1], stride=0, strategy=trunc[0], direction=trunc[2])
    else:
        tok.no_truncation()
    try:
        e = tok.encode(a, b, add_special_tokens=add_special) if b is not None else tok.encode(a, add_special_tokens=add_special)
        return {"ids": e.ids, "type_ids": e.type_ids}
    except Exception as ex:  # HF refuses the truncation
        return {"error": str(ex)}
    finally:
        tok.no_truncation()


def write_cases(tok, name, texts, big=False, seed=1):
    tok.no_truncation()
    tok.no_padding()
    path = os.path.join(HERE, "cases", name + ".jsonl")
    n_vocab = tok.get_vocab_size(with_added_tokens=True)
    n_pairs = 0
    with open(path, "w", encoding="utf-8") as f:
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            es = tok.encode(text, add_special_tokens=True)
            row = {"text": text, "ids": ids, "ids_special": es.ids, "type_ids_special": es.type_ids,
                   "decoded": tok.decode(ids, skip_special_tokens=False),
                   "decoded_skip": tok.decode(ids, skip_special_tokens=True),
                   "decoded_special": tok.decode(es.ids, skip_special_tokens=False),
                   "decoded_special_skip": tok.decode(es.ids, skip_special_tokens=True)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        rng = random.Random(seed)
        for i in range(300):
            a = texts[rng.randrange(len(texts))]
            b = None if i % 10 == 9 else texts[rng.randrange(len(texts))]
            trunc = TRUNCS[i % len(TRUNCS)]
            add = i % 3 != 2
            row = {"pair": [a, b], "add_special": add,
                   "trunc": {"strategy": trunc[0], "max_length": trunc[1], "direction": trunc[2]} if trunc else None}
            row.update(enc(tok, a, b, add, trunc))
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n_pairs += 1
        if big:
            for g in BIG:
                text = gen_text(g)
                ids = tok.encode(text, add_special_tokens=False).ids
                f.write(json.dumps({"gen": g, "n_ids": len(ids), "hash": fnv_ids(ids), "roundtrip": False},
                                   ensure_ascii=False) + "\n")
        write_decode_cases(f, tok, seed, n_vocab)
    print("wrote %s: %d texts, %d pairs" % (path, len(texts), n_pairs), file=sys.stderr)


def save_fixture(tok, name):
    d = os.path.join(HERE, "fixtures", name)
    os.makedirs(d, exist_ok=True)
    tok.no_truncation()
    tok.no_padding()
    tok.save(os.path.join(d, "tokenizer.json"))
    return Tokenizer.from_file(os.path.join(d, "tokenizer.json"))


# ------------------------------------------------------------------------------------------------
# SentencePiece model → pieces and charsmap (protobuf wire format read by hand: no protobuf package)

def pb_fields(buf):
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        fno, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield fno, wt, v


def varint(buf, i):
    r, s = 0, 0
    while True:
        b = buf[i]
        i += 1
        r |= (b & 0x7F) << s
        s += 7
        if not b & 0x80:
            return r, i


def spm_model(texts):
    import struct

    import sentencepiece as spm
    bio = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts * 2), model_writer=bio, vocab_size=1250, hard_vocab_limit=False,
                                   model_type="unigram", normalization_rule_name="nmt_nfkc",
                                   character_coverage=0.98, minloglevel=2, unk_id=3, bos_id=0, eos_id=2, pad_id=1,
                                   bos_piece="<s>", eos_piece="</s>", pad_piece="<pad>", unk_piece="<unk>")
    pieces, charsmap = [], None
    for fno, wt, v in pb_fields(bio.getvalue()):
        if fno == 1:
            p = dict((f, x) for f, _, x in pb_fields(v))
            pieces.append((p[1].decode("utf-8"), struct.unpack("<f", p[2])[0] if 2 in p else 0.0, p.get(3, 1)))
        elif fno == 3:
            for f, _, x in pb_fields(v):
                if f == 2:
                    charsmap = x
    return pieces, charsmap


def xlmr_like(pieces, charsmap, lowercase=False, split=True, scheme="always", roberta=False):
    import base64
    vocab = [(p, s if t == 1 else 0.0) for p, s, t in pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    d = json.loads(tok.to_str())
    norms = [{"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()},
             {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]
    if lowercase:
        norms.append({"type": "Lowercase"})
    d["normalizer"] = {"type": "Sequence", "normalizers": norms}
    d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
    d["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
    if roberta:
        d["post_processor"] = {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                               "trim_offsets": True, "add_prefix_space": True}
    else:
        d["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                               "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}
    tok = Tokenizer.from_str(json.dumps(d))
    tok.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>"])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    return tok


def train_uni_bf(texts):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Strip(left=False, right=True),
                                           normalizers.Replace(Regex(" {2,}"), "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(prepend_scheme="first", split=True)
    tr = trainers.UnigramTrainer(vocab_size=1400, unk_token="<unk>", special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                 show_progress=False, initial_alphabet=[])
    tok.train_from_iterator(texts, tr)
    d = json.loads(tok.to_str())
    have = {p for p, _ in d["model"]["vocab"]}
    low = min(s for _, s in d["model"]["vocab"]) - 1.0
    for b in range(256):
        p = "<0x%02X>" % b
        if p not in have:
            d["model"]["vocab"].append([p, low])
    d["model"]["byte_fallback"] = True
    d["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "</s>", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                           "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}
    tok = Tokenizer.from_str(json.dumps(d))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False, special=True)])
    return tok


def train_wp_misc(texts):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=12))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=True,
                                                lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tr = trainers.WordPieceTrainer(vocab_size=1250, hard_vocab_limit=False, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                   show_progress=False)
    tok.train_from_iterator(texts, tr)
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return tok


def train_bpe_meta(texts):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(prepend_scheme="always", split=True)
    tr = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                             limit_alphabet=400)
    tok.train_from_iterator([t.replace("\x00", "") for t in texts], tr)  # jansson keys cannot hold NUL
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B:1 </s>:1",
                                                       special_tokens=[("<s>", 1), ("</s>", 2)])
    return tok


def minilm2(shared):
    d = json.load(open(os.path.join(shared, "models/all-MiniLM-L6-v2/tokenizer.json"), encoding="utf-8"))
    d["normalizer"] = {"type": "BertNormalizer", "clean_text": False, "handle_chinese_chars": False,
                       "strip_accents": False, "lowercase": True}
    d["pre_tokenizer"] = {"type": "Whitespace"}
    d["post_processor"] = {"type": "RobertaProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101],
                           "trim_offsets": True, "add_prefix_space": False}
    d["decoder"] = {"type": "WordPiece", "prefix": "##", "cleanup": False}
    d["truncation"] = None
    d["padding"] = None
    return Tokenizer.from_str(json.dumps(d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--only", nargs="*", default=None, help="regenerate only these case names")
    ap.add_argument("--xlmr-charsmap", default=None, help="a Precompiled normalizer JSON with the XLM-R charsmap")
    args = ap.parse_args()
    os.makedirs(os.path.join(HERE, "cases"), exist_ok=True)
    texts = corpus(args.shared)
    train = texts[:-150]  # not the random strings: those exercise unknown characters
    m = os.path.join(args.shared, "models")

    def want(name):
        return args.only is None or name in args.only

    if want("wp_minilm"):
        write_cases(Tokenizer.from_file(os.path.join(m, "all-MiniLM-L6-v2/tokenizer.json")), "wp_minilm", texts,
                    big=True)
    for name, d in [("wp_bge_small", "bge-small-en-v1.5"), ("wp_bge_base", "bge-base-en-v1.5"),
                    ("wp_msmarco", "ms-marco-MiniLM-L-6-v2")]:
        if want(name):
            from transformers import AutoTokenizer
            backend = AutoTokenizer.from_pretrained(os.path.join(m, d)).backend_tokenizer
            write_cases(Tokenizer.from_str(backend.to_str()), name, texts)
    if want("wp_misc"):
        write_cases(save_fixture(train_wp_misc(texts), "wp_misc"), "wp_misc", texts, seed=2)
    if want("wp_minilm2"):
        write_cases(save_fixture(minilm2(args.shared), "wp_minilm2"), "wp_minilm2", texts, seed=3)
    if want("uni_spm") or want("uni_nosplit") or (want("uni_xlmr") and args.xlmr_charsmap):
        pieces, charsmap = spm_model(train)
        if want("uni_xlmr") and args.xlmr_charsmap:
            import base64
            old = base64.b64decode(json.load(open(args.xlmr_charsmap))["precompiled_charsmap"])
            write_cases(save_fixture(xlmr_like(pieces, old), "uni_xlmr"), "uni_xlmr", texts, seed=8)
        if want("uni_spm"):
            write_cases(save_fixture(xlmr_like(pieces, charsmap), "uni_spm"), "uni_spm", texts, big=True, seed=4)
        if want("uni_nosplit"):
            write_cases(save_fixture(xlmr_like(pieces, charsmap, lowercase=True, split=False, scheme="never",
                                               roberta=True), "uni_nosplit"), "uni_nosplit", texts, seed=5)
    if want("uni_bf"):
        write_cases(save_fixture(train_uni_bf(train), "uni_bf"), "uni_bf", texts, big=True, seed=6)
    if want("bpe_meta"):
        write_cases(save_fixture(train_bpe_meta(train), "bpe_meta"), "bpe_meta", texts, seed=7)


if __name__ == "__main__":
    main()
