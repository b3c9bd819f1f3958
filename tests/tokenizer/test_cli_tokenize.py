"""Black-box tests of `ragd tokenize` / `ragd detokenize` (the CLI contract in issue 2).

Needs RAGD_BIN (the ragd binary) and RAGD_SHARED (the shared/ folder with the Qwen3 tokenizer and the
public cases); run by CTest."""
import json
import os
import subprocess
import select

import pytest

BIN = os.environ.get("RAGD_BIN", "ragd")
SHARED = os.environ.get("RAGD_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
TOK_DIR = os.path.join(SHARED, "models", "qwen3-tokenizer")
TOK = os.path.join(TOK_DIR, "tokenizer.json")
SMOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "smol", "tokenizer.json")  # loads fast
_SMOL_JSON = json.load(open(SMOL, encoding="utf-8"))
SMOL_D = _SMOL_JSON["model"]["vocab"]["d"]  # the id of the token "d"
SMOL_SIZE = 1 + max(list(_SMOL_JSON["model"]["vocab"].values()) + [a["id"] for a in _SMOL_JSON["added_tokens"]])
CASES = [json.loads(l) for l in open(os.path.join(SHARED, "cases", "tokenizer", "qwen3_public.jsonl"), encoding="utf-8")]


def run(args, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    p = subprocess.run([BIN] + args, input=data, capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def lines(text):
    return [json.loads(l) for l in text.splitlines()]


def test_tokenize_public_cases_in_one_batch():
    inp = "".join(json.dumps({"text": c["text"]}) + "\n" for c in CASES * 5)
    rc, out, err = run(["tokenize", "--tokenizer", TOK], inp)
    assert rc == 0, err
    got = lines(out)
    assert len(got) == 2000
    assert [g["ids"] for g in got] == [c["ids"] for c in CASES * 5]


def test_detokenize_public_cases():
    inp = "".join(json.dumps({"ids": c["ids"]}) + "\n" for c in CASES)
    rc, out, err = run(["detokenize", "--model", TOK_DIR], inp)
    assert rc == 0, err
    assert [g["text"] for g in lines(out)] == [c["decoded"] for c in CASES]


def test_model_dir_and_special_tokens(tmp_path):
    d = json.load(open(TOK, encoding="utf-8"))
    d["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [151643],
                                                                            "tokens": ["<|endoftext|>"]}}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(d), encoding="utf-8")
    inp = '{"text": "test"}\n{"text": "test again"}\n'
    rc, out, err = run(["tokenize", "--model", str(tmp_path), "--add-special-tokens"], inp)
    assert rc == 0, err
    assert lines(out) == [{"ids": [1944, 151643]}, {"ids": [1944, 1549, 151643]}]
    rc, out, err = run(["tokenize", "--model", str(tmp_path)], inp)
    assert lines(out) == [{"ids": [1944]}, {"ids": [1944, 1549]}]


def test_skip_special_tokens():
    inp = '{"ids": [151644, 872, 198, 6023, 151645, 151667]}\n'
    rc, out, _ = run(["detokenize", "--tokenizer", TOK], inp)
    assert rc == 0 and lines(out) == [{"text": "<|im_start|>user\nhi<|im_end|><think>"}]
    rc, out, _ = run(["detokenize", "--tokenizer", TOK, "--skip-special-tokens"], inp)
    assert rc == 0 and lines(out) == [{"text": "user\nhi<think>"}]  # <think> is not special in Qwen3


@pytest.mark.parametrize("bad,what", [
    (b'{"text": "oops"', "invalid JSON"),
    (b'{"txt": "x"}', '"text"'),
    (b'{"text": 5}', '"text"'),
    (b'["text"]', '"text"'),
    (b'{"text": "caf\xc3"}', "UTF-8"),
    (b'{"text": "\\ud800"}', "invalid JSON"),
])
def test_tokenize_bad_line_3(bad, what):
    good = b'{"text": "a"}\n{"text": "b c"}\n'
    p = subprocess.run([BIN, "tokenize", "--tokenizer", SMOL], input=good + bad + b'\n{"text": "never"}\n',
                       capture_output=True, timeout=60)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "line 3" in err and what in err, err
    rc, want, _ = run(["tokenize", "--tokenizer", SMOL], good)
    assert rc == 0 and p.stdout.decode() == want and len(lines(want)) == 2


@pytest.mark.parametrize("bad,what", [
    ('{"ids": [1, %d]}' % SMOL_SIZE, "outside the vocabulary"),
    ('{"ids": [-1]}', "outside the vocabulary"),
    ('{"ids": [1.5]}', "not an integer"),
    ('{"ids": "1"}', '"ids"'),
    ('{"ids": [1]', "invalid JSON"),
])
def test_detokenize_bad_line_3(bad, what):
    inp = '{"ids": [%d]}\n{"ids": []}\n' % SMOL_D + bad + '\n{"ids": [1]}\n'
    rc, out, err = run(["detokenize", "--tokenizer", SMOL], inp)
    assert rc == 1 and "line 3" in err and what in err, err
    assert lines(out) == [{"text": "d"}, {"text": ""}]


def test_usage_and_unsupported():
    assert run(["tokenize", "--help"], "")[0] == 0
    TOK = SMOL
    assert "--add-special-tokens" in run(["tokenize", "--help"], "")[1]
    assert "--skip-special-tokens" in run(["detokenize", "--help"], "")[1]
    rc, _, err = run(["tokenize"], "")
    assert rc == 2 and "--tokenizer" in err
    rc, _, err = run(["tokenize", "--tokenizer", TOK, "--bogus"], "")
    assert rc == 2
    rc, _, err = run(["tokenize", "--model", "/nonexistent/model.gguf"], "")
    assert rc == 1 and "/nonexistent/model.gguf" in err
    rc, _, err = run(["tokenize", "--tokenizer", "/nonexistent/tokenizer.json"], "")
    assert rc == 1 and "/nonexistent/tokenizer.json" in err


def test_interactive_answers_without_eof():
    p = subprocess.Popen([BIN, "tokenize", "--tokenizer", TOK], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for text, ids in [("Hello world", [9707, 1879]), (" Hello world", [21927, 1879])]:
            p.stdin.write((json.dumps({"text": text}) + "\n").encode())
            p.stdin.flush()
            r, _, _ = select.select([p.stdout], [], [], 30)
            assert r, "no answer before EOF"
            assert json.loads(p.stdout.readline()) == {"ids": ids}
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    assert p.returncode == 0


def test_crlf_and_nul():
    rc, out, err = run(["tokenize", "--tokenizer", SMOL], '{"text": "a\\u0000b"}\r\n')
    assert rc == 0, err
    rc2, out2, _ = run(["detokenize", "--tokenizer", SMOL], json.dumps(lines(out)[0]) + "\n")
    assert lines(out2) == [{"text": "a\u0000b"}]


GGUF_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gguf", "fixtures")


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_gguf_model_matches_its_hf_folder(arch):
    """--model FILE.gguf uses the embedded tokenizer; it must agree with the HF folder it came from."""
    gguf, hf = os.path.join(GGUF_FIXTURES, arch, "f32.gguf"), os.path.join(GGUF_FIXTURES, arch, "hf")
    if not (os.path.exists(gguf) and os.path.exists(os.path.join(hf, "tokenizer.json"))):
        pytest.skip("gguf fixtures not present")
    inp = "".join(json.dumps({"text": c["text"]}) + "\n" for c in CASES)
    rc, out_g, err = run(["tokenize", "--model", gguf], inp)
    assert rc == 0, err
    rc, out_h, err = run(["tokenize", "--model", hf], inp)
    assert rc == 0, err
    assert out_g == out_h and len(lines(out_g)) == len(CASES)
    rc, dec, err = run(["detokenize", "--model", gguf], out_g)
    assert rc == 0, err
    rc, dec_h, err = run(["detokenize", "--model", hf], out_g)
    assert dec == dec_h


def test_model_folder_with_only_vocab_txt():
    """A BERT folder without tokenizer.json (bge-small-en-v1.5 ships vocab.txt) is converted as
    transformers' BertTokenizerFast does (references: tests/tokenizer/cases/wp_bge_small.jsonl)."""
    d = os.path.join(SHARED, "models", "bge-small-en-v1.5")
    rc, out, err = run(["tokenize", "--model", d, "--add-special-tokens"], '{"text": "Hello, World!"}\n')
    assert rc == 0, err
    assert lines(out) == [{"ids": [101, 7592, 1010, 2088, 999, 102]}]
    rc, out, err = run(["detokenize", "--model", d], '{"ids": [101, 7592, 1010, 2088, 999, 102]}\n')
    assert rc == 0, err
    assert lines(out)[0]["text"] == "[CLS] hello, world! [SEP]"
