#!/usr/bin/env python3
"""tok_make_refs.py — regenerates the tokenizer test fixtures and their Hugging Face references.

Needs the Python `tokenizers` package (CI does not have it: the outputs are committed).

Writes, under tests/tokenizer/:
  fixtures/smol/tokenizer.json    GPT-2/SmolLM-style byte-level BPE trained here (Digits + ByteLevel regex)
  fixtures/llama3/tokenizer.json  Llama-3-style (Split Llama-3 regex + ByteLevel, ignore_merges, BOS template)
  fixtures/misc/tokenizer.json    character BPE: NFD/StripAccents/Lowercase/Replace, Split behaviours, Digits,
                                  ##-prefix and </w>-suffix, [UNK] with fuse_unk, BertProcessing, no decoder
  cases/<fixture>.jsonl           one JSON object per case:
     {"text", "ids", "ids_special", "decoded", "decoded_skip"}            small texts
     {"gen", "n_ids", "hash", "roundtrip"}                                 big generated texts (1 MB)
     {"decode_ids", "decoded", "decoded_skip"}                             decode-only (random ids)
  fixture names: qwen3 (shared/models/qwen3-tokenizer), qwen3emb (the same with Qwen3-Embedding's
  TemplateProcessing post-processor, built at test time by tests/tokenizer/test_tok_cases.c exactly as
  qwen3emb_tokenizer() does here), smol, llama3, misc.

"hash" is FNV-1a 64 over the ids as little-endian int32, in hex; "gen" texts are rebuilt by the C test
with the same generator (gen_text below). Run: python3 tools/tok_make_refs.py [--shared ../shared]
"""
import argparse
import json
import os
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "tokenizer")

QWEN3_EMB_POST = {
    "type": "TemplateProcessing",
    "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
             {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 1}}],
    "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [151643], "tokens": ["<|endoftext|>"]}},
}


def fnv_ids(ids):
    h = 0xCBF29CE484222325
    for x in ids:
        x &= 0xFFFFFFFF
        for b in range(4):
            h ^= (x >> (8 * b)) & 0xFF
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def lcg(x):
    return (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF


def write_decode_cases(f, tok, seed, n_vocab):
    """60 random id sequences (1-7 ids, a seeded LCG) with HF's decode, with and without special tokens."""
    x = seed
    for k in range(60):
        ids = []
        for _ in range(1 + k % 7):
            x = lcg(x)
            ids.append((x >> 33) % n_vocab)
        f.write(json.dumps({"decode_ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                            "decoded_skip": tok.decode(ids, skip_special_tokens=True)}, ensure_ascii=False) + "\n")


def gen_text(g):
    """Deterministic big texts; tests/tokenizer/test_tok_cases.c implements the same."""
    if g["kind"] == "repeat":
        return g["unit"] * g["count"]
    if g["kind"] == "words":
        x, words, parts = g["seed"], g["words"], []
        for _ in range(g["count"]):
            x = lcg(x)
            parts.append(words[(x >> 33) % len(words)])
        return g["sep"].join(parts)
    raise ValueError(g)


WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "embedding", "rerank", "CUDA", "kernel",
         "Hello,", "world!", "I'm", "we'll", "42", "3.14", "日本語", "Привет", "مرحبا", "नमस्ते", "café", "naïve",
         "👍🏽", "<|im_end|>", "\n", "\t", "  ", "x_y", "(a+b)*c", "don't", "DON'T", "über", "2026-11-22"]

BIG = [
    {"kind": "repeat", "unit": "a", "count": 1000000},
    {"kind": "repeat", "unit": " ", "count": 1000000},
    {"kind": "repeat", "unit": "\n", "count": 1000000},
    {"kind": "repeat", "unit": " \n", "count": 500000},
    {"kind": "repeat", "unit": "abcdefghij", "count": 100000},
    {"kind": "repeat", "unit": "1234567890", "count": 100000},
    {"kind": "repeat", "unit": "!", "count": 1000000},
    {"kind": "repeat", "unit": "日本語", "count": 111111},
    {"kind": "repeat", "unit": "é", "count": 500000},
    {"kind": "repeat", "unit": "e\u0301", "count": 333333},
    {"kind": "words", "words": WORDS, "count": 150000, "seed": 12345, "sep": " "},
    {"kind": "words", "words": WORDS, "count": 150000, "seed": 777, "sep": ""},
]


def hard_texts():
    t = []
    # whitespace runs
    t += [" ", "  ", "   x", " " * 50 + "x", "x" + " " * 50, "x" + " " * 50 + "y", "\n" * 20, "\n\n\nx", "x\n\n\n",
          "\t\t\t", "\t \t x", " \n \n ", "a\r\n\r\nb", "a\r\rb", "a \r\n b", "\u3000\u3000x", "x \u00a0 y",
          "a\u0085\u0085b", "!\u0085!", "a\u2028b\u2029c", "\u200b\u200bq", "x\x0by\x0cz", " \t\n\r\x0b\x0c",
          "line1\n  line2\n\tline3", "   \n   \n", "end with space ", "end with newline\n", "\n", "\r\n"]
    # scripts
    t += ["日本語のテキストです。カタカナとひらがな。", "中文分词测试，标点符号！“引号”", "한국어 문장입니다. 띄어쓰기",
          "مرحبا بالعالم، كيف حالك؟", "नमस्ते दुनिया। हिन्दी पाठ", "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง",
          "Привет, мир! Ёжик в тумане", "Γειά σου Κόσμε, ΑΒΓ αβγ", "שלום עולם", "Tiếng Việt có dấu",
          "mixed日本語andEnglish123中文", "ქართული ენა", "Ελληνικά/русский/日本"]
    # emoji
    t += ["👨‍👩‍👧‍👦", "🇺🇸🇯🇵🇩🇪", "👍🏽👍🏿", "❤️ love", "🏳️‍🌈 flag", "a😀b", "😀😀😀", "🤖 robot\u200d🧠",
          "keycap 1️⃣ #️⃣", "\U0001F600" * 10]
    # combining / NFC-sensitive
    t += ["e\u0301", "cafe\u0301 nai\u0308ve", "\u212b\u2126", "\u1e9b\u0323", "\u1100\u1161\u11a8", "ﬁ ligature ﬂ",
          "Ⅻ ① ㈱", "a\u0300\u0301\u0302\u0303", "\u0301start", "Å vs A\u030a", "\u0958\u0959", "x\u0345y",
          "\u00c5ngstr\u00f6m \u03a9 \u2248 \u2211 \u221e"]
    # special-token strings
    t += ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|im_start|><|im_end|>", "<|im_start",
          "|im_end|>", "<|endoftext|><|endoftext|>", "<<|im_start|>>", "<think>\nreason\n</think>\n\nanswer",
          " <|im_end|> ", "abc<|im_end|>def", "<|im_end|", "<|im_end|>>", "<|endoftext|>", "<tool_call>{}</tool_call>",
          "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "<|IM_START|>", "<|im_start|> <|im_start|>  x",
          "<tool> x", "x <tool> y", "[MASK]  z", "a [MASK] b", "word words sword word", "<s>hi</s>",
          "<|begin_of_text|>x", "hello world héllo wörld HÉLLO WÖRLD"]
    # contractions and case
    t += ["DON'T SHOUT, I'LL LISTEN", "WE'VE SHE'S THEY'RE I'D I'M", "'S 's 'Ss 'sup", "x'ſup", "rock'n'roll",
          "it’s curly’s", "'", "''", "'''s", "O'Neil's", "l'été", "can't won't shan't", "'LL'VE'RE"]
    # digits
    t += ["1234567890", "3.14159", "1,000,000", "٣٤٥ ۱۲۳", "²³ ½ ¼", "Ⅻ", "0x1F 0b1010 1e-9", "v1.2.3-rc4",
          "2026-11-22T10:54:43Z", "+1 (555) 123-4567", "١٢٣abc٤٥٦", "12345678901234567890"]
    # code
    t += ["def f(x):\n    return x**2  # square\n", "int main(void){return 0;}",
          "if (a && b || !c) { x->y = z[0]; }", "<div class=\"a\">&amp;</div>", "SELECT * FROM t WHERE a='b';",
          "\\n\\t\\\\", "{\"json\": [1, 2, {\"k\": null}]}", "x = [i**2 for i in range(10)]",
          "#include <stdio.h>\n\nint x;\n", "fn main() -> Result<(), Box<dyn Error>> {}", "$ ls -la | grep '^d'",
          "    indented\n        more\n", "a_b-c.d/e\\f", "--flag=value --other", "@decorator\nclass A: pass"]
    # controls, BOM, marks
    t += ["\x00", "a\x00b", "\x01\x02\x03", "\x7f", "\ufeffBOM", "soft\u00adhyphen", "rtl\u200fmark\u200e",
          "\ufffd replacement", "tab\tseparated\tvalues", "\U0010ffff", "\ue000 private"]
    # Unicode versions: marks HF's normalizer does not know (Unicode 14), a composition it lacks (U+11938),
    # letters/numbers only Oniguruma's Unicode 16 has, lowercase and compat mappings newer than HF's tables
    t += ["a\u0345\u1ac1b", "\u08d0\u0301x", "e\u0301\u1ac3\u0300", "\U00011935\U00011930 \U00011938",
          "\u1c89\u1c8a \ua7cb\ua7cc", "\U000105c0\U000105c1x", "\U00010d40\U00010d41 x \U000116d0",
          "\u1c89 \ua7cb \U00010d50 \u0130", "\ua7f2\ua7f3 \ua7f4", "\U0001e4ec\U0001e4ed a\u0301\u1df6"]
    t += ["", "a", "Hello world", " Hello world", "test", " again"]
    return t


def qwen3emb_tokenizer(shared):
    d = json.load(open(os.path.join(shared, "models/qwen3-tokenizer/tokenizer.json"), encoding="utf-8"))
    d["post_processor"] = QWEN3_EMB_POST
    return Tokenizer.from_str(json.dumps(d))


def training_corpus(shared):
    rows = [json.loads(l) for l in open(os.path.join(shared, "cases/tokenizer/qwen3_public.jsonl"), encoding="utf-8")]
    texts = [r["text"] for r in rows] * 3 + hard_texts()
    texts.append(gen_text({"kind": "words", "words": WORDS, "count": 20000, "seed": 99, "sep": " "}))
    return texts


def train_smol(shared):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(shared), trainer)
    tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True, special=True, normalized=False)])
    tok.add_tokens([AddedToken("<tool>", lstrip=True, special=False, normalized=False),
                    AddedToken("word", single_word=True, special=False, normalized=False),
                    AddedToken("héllo", special=False, normalized=False)])
    return tok


def train_llama3(shared):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                             behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(shared), trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok


def train_misc(shared):
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>",
                               fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                           normalizers.Replace("``", '"')])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\s+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[\p{P}\p{S}]"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"'"), behavior="merged_with_next"),
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[aeiou]+"), behavior="contiguous", invert=True),
    ])
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, show_progress=False, limit_alphabet=120,
                                  special_tokens=["[UNK]", "[CLS]", "[SEP]"], continuing_subword_prefix="##",
                                  end_of_word_suffix="</w>")
    # jansson (ragd's JSON parser) cannot hold NUL in object keys, so keep "\x00" out of this vocabulary
    tok.train_from_iterator([t.replace("\x00", "") for t in training_corpus(shared)], trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    tok.add_tokens([AddedToken("héllo wörld", normalized=True, special=False),
                    AddedToken("<s>", normalized=False, special=True, lstrip=True, rstrip=True)])
    return tok


def write_cases(tok, name, big=True, seed=1):
    path = os.path.join(OUT, "cases", name + ".jsonl")
    n_vocab = tok.get_vocab_size(with_added_tokens=True)
    with open(path, "w", encoding="utf-8") as f:
        for text in hard_texts():
            ids = tok.encode(text, add_special_tokens=False).ids
            row = {"text": text, "ids": ids,
                   "ids_special": tok.encode(text, add_special_tokens=True).ids,
                   "decoded": tok.decode(ids, skip_special_tokens=False),
                   "decoded_skip": tok.decode(ids, skip_special_tokens=True)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if big:
            for g in BIG:
                text = gen_text(g)
                ids = tok.encode(text, add_special_tokens=False).ids
                dec = tok.decode(ids)
                f.write(json.dumps({"gen": g, "n_ids": len(ids), "hash": fnv_ids(ids), "roundtrip": dec == text},
                                   ensure_ascii=False) + "\n")
        write_decode_cases(f, tok, seed, n_vocab)
    print("wrote", path, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    args = ap.parse_args()
    os.makedirs(os.path.join(OUT, "cases"), exist_ok=True)
    qwen = Tokenizer.from_file(os.path.join(args.shared, "models/qwen3-tokenizer/tokenizer.json"))
    write_cases(qwen, "qwen3")
    write_cases(qwen3emb_tokenizer(args.shared), "qwen3emb", big=False, seed=2)
    for name, fn in [("smol", train_smol), ("llama3", train_llama3), ("misc", train_misc)]:
        tok = fn(args.shared)
        d = os.path.join(OUT, "fixtures", name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))  # references from the saved file
        write_cases(tok, name, big=(name != "misc"), seed=3)


if __name__ == "__main__":
    main()
