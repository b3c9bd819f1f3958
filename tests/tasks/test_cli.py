"""test_cli.py — the CLI contract of `ragd embed`, `ragd rerank`, `ragd generate`, `ragd inspect` against the
committed transformers references (fixtures/refs), plus its failure behaviour: a bad line stops the job
with a non-zero exit and a message naming the line, and stdout never holds a partial or placeholder line."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

SRC = os.environ.get("RAGD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("RAGD_BIN", os.path.join(SRC, "build", "ragd"))
MODELS = os.path.join(SRC, "fixtures", "models")
TOL = 1e-4


def ref(name):
    with open(os.path.join(SRC, "fixtures", "refs", name + ".json")) as f:
        return json.load(f)


def run(args, stdin=""):
    p = subprocess.run([BIN] + args, input=stdin.encode(), capture_output=True, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lines(texts):
    return "".join(json.dumps({"text": t}) + "\n" for t in texts)


def maxerr(a, b):
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


def test_embed_matches_reference_and_order():
    r = ref("qwen3-embed-tiny")["embed"]["items"]
    plain = [it for it in r if it["instruction"] is None]
    rc, out, err = run(["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny")], lines([it["text"] for it in plain]))
    assert rc == 0, err
    got = [json.loads(l)["embedding"] for l in out.splitlines()]
    assert len(got) == len(plain)
    e = max(maxerr(g, it["embedding"]) for g, it in zip(got, plain))
    print("cli embed max abs err", e)
    assert e <= TOL
    # small chunks (several engine calls) give bit-identical output
    rc2, out2, _ = run(["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny"), "--max-batch-tokens", "400",
                        "--threads", "1"], lines([it["text"] for it in plain]))
    assert rc2 == 0 and out2 == out


def test_embed_instruction_and_dimensions():
    r = ref("qwen3-embed-tiny")["embed"]["items"]
    it = next(i for i in r if i["instruction"] == "Given a web search query, retrieve relevant passages that answer the query")
    rc, out, err = run(["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny"), "--instruction", it["instruction"],
                        "--dimensions", "16"], lines([it["text"]]))
    assert rc == 0, err
    v = json.loads(out)["embedding"]
    assert len(v) == 16 and maxerr(v, it["dims"]["16"]) <= TOL


def test_rerank_matches_reference():
    rr = ref("qwen3-rerank-tiny")["rerank"]
    for case in rr["cases"]:
        args = ["rerank", "--model", os.path.join(MODELS, "qwen3-rerank-tiny"), "--query", rr["query"]]
        if case["instruction"]:
            args += ["--instruction", case["instruction"]]
        rc, out, err = run(args, lines([it["doc"] for it in case["items"]]))
        assert rc == 0, err
        got = [json.loads(l)["score"] for l in out.splitlines()]
        assert maxerr(got, [it["score"] for it in case["items"]]) <= TOL


@pytest.mark.parametrize("model", ["qwen3-tiny", "smollm-tiny", "llama3-tiny", "qwen2-tiny"])
def test_generate_greedy_json(model):
    for g in ref(model)["generate"]:
        args = ["generate", "--model", os.path.join(MODELS, model), "--max-tokens", "32", "--ignore-eos", "--json"]
        if g["chat"]:
            args += ["--prompt", g["messages"][0]["content"], "--chat", "--no-think"]
        else:
            args += ["--prompt", g["prompt"]]
        rc, out, err = run(args)
        assert rc == 0, err
        j = json.loads(out)
        assert j["ids"] == g["ids"]
        assert j["text"] == g["text_skip_special"]


def test_generate_stream_equals_json_and_seed():
    m = os.path.join(MODELS, "qwen3-tiny")
    base = ["generate", "--model", m, "--prompt", "Once upon a time", "--max-tokens", "20", "--ignore-eos"]
    rc, js, _ = run(base + ["--json"])
    rc2, txt, _ = run(base)
    assert rc == 0 and rc2 == 0 and txt == json.loads(js)["text"] + "\n"
    s = base + ["--temperature", "1", "--seed", "5", "--json"]
    a, b = run(s)[1], run(s)[1]
    c = run(base + ["--temperature", "1", "--seed", "6", "--json"])[1]
    assert a == b and a != c
    k1 = run(base + ["--temperature", "1", "--top-k", "1", "--seed", "3", "--json"])[1]
    assert json.loads(k1)["ids"] == json.loads(js)["ids"]


def test_generate_stop_string():
    m = os.path.join(MODELS, "qwen3-tiny")
    base = ["generate", "--model", m, "--prompt", "Once upon a time", "--max-tokens", "24", "--ignore-eos", "--json"]
    full = json.loads(run(base)[1])["text"]
    stop = full[len(full) // 2: len(full) // 2 + 3]
    rc, out, err = run(base + ["--stop", stop])
    assert rc == 0, err
    assert json.loads(out)["text"] == full[:full.index(stop)]


def test_bad_json_line_stops_without_partial_output():
    texts = lines(["one", "two"]) + "{not json\n" + lines(["four"])
    rc, out, err = run(["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny")], texts)
    assert rc != 0
    assert "line 3" in err
    for l in out.splitlines():  # only complete vectors, none for line 3 or later
        assert len(json.loads(l)["embedding"]) == 64
    assert len(out.splitlines()) <= 2
    assert out == "" or out.endswith("\n")


def test_missing_text_and_too_long_name_the_line():
    rc, out, err = run(["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny")], lines(["a"]) + '{"txt": "b"}\n')
    assert rc == 1 and "line 2" in err and out == ""
    long = "word " * 400
    rc, out, err = run(["rerank", "--model", os.path.join(MODELS, "qwen3-rerank-tiny"), "--query", "q",
                        "--max-batch-tokens", "200"], lines(["short", long]))
    assert rc == 1 and "line 2" in err and out == ""


def test_usage_errors():
    m = os.path.join(MODELS, "qwen3-embed-tiny")
    assert run(["embed"])[0] == 2
    assert run(["embed", "--model", m, "--dimensions", "0"])[0] == 2
    assert run(["embed", "--model", m, "--bogus"])[0] == 2
    assert run(["generate", "--model", m])[0] == 2
    assert run(["generate", "--model", m, "--prompt", "x", "--top-p", "0"])[0] == 2
    rc, _, err = run(["embed", "--model", m, "--dimensions", "65"], lines(["x"]))
    assert rc == 1 and "dimensions" in err
    rc, _, err = run(["embed", "--model", "/nonexistent/model"], lines(["x"]))
    assert rc == 1 and "nonexistent" in err
    rc, out, err = run(["embed", "--model", m], "")
    assert rc == 0 and out == ""


def test_cuda_request_fails_loudly():
    rc, out, err = run(["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny"), "--device", "cuda"], lines(["x"]))
    if rc == 0:
        pytest.skip("this build and machine have a working CUDA backend")
    assert out == "" and "cuda" in err.lower()


def test_any_chat_template_renders_and_a_broken_one_is_refused():
    """Templates are interpreted (issue 17): a template ragd never saw works; a broken one is a clear error."""
    with tempfile.TemporaryDirectory() as d:
        m = os.path.join(d, "m")
        shutil.copytree(os.path.join(MODELS, "qwen3-tiny"), m)
        p = os.path.join(m, "tokenizer_config.json")
        cfg = json.load(open(p))
        cfg["chat_template"] = "{% for m in messages %}[{{ m.content }}]{% endfor %}"
        json.dump(cfg, open(p, "w"))
        rc, out, err = run(["generate", "--model", m, "--prompt", "hi", "--chat", "--max-tokens", "4"])
        assert rc == 0, err
        cfg["chat_template"] = "{% for m in messages %}[{{ m.content }}]"
        json.dump(cfg, open(p, "w"))
        rc, out, err = run(["generate", "--model", m, "--prompt", "hi", "--chat", "--max-tokens", "4"])
        assert rc == 1 and "chat template" in err and "endfor" in err
        rc, out, err = run(["generate", "--model", m, "--prompt", "hi", "--max-tokens", "4"])
        assert rc == 0, err


def test_inspect():
    rc, out, err = run(["inspect", "--model", os.path.join(MODELS, "qwen3-tiny"), "--max-ctx", "256", "--max-seqs", "2"])
    assert rc == 0, err
    assert "qwen3" in out and "parameters" in out and "BF16" in out and "KV cache" in out
    # KV = 2 (k,v) x 3 layers x 2 seqs x 256 ctx x (2 kv heads x 32) x 4 bytes = 0.75 MiB
    assert "KV cache 0.75 MiB" in out


def test_inspect_and_help_errors():
    rc, out, err = run(["inspect", "--model", "/nonexistent/model"])
    assert rc == 1 and "nonexistent" in err and out == ""
    assert run(["inspect"])[0] == 2
    assert run(["inspect", "--model", os.path.join(MODELS, "qwen3-tiny"), "--max-ctx", "0"])[0] == 2
    rc, out, _ = run(["embed", "--help"])
    assert rc == 0 and "--dimensions" in out
    rc, out, _ = run(["generate", "--help"])
    assert rc == 0 and "--json" in out


ENC = os.path.join(SRC, "tests", "engine", "encoders")


def test_encoders_on_the_cli():
    """issue 12: a BERT embedder, BERT / XLM-R cross-encoders and inspect of an encoder (no KV plan)"""
    rc, out, err = run(["embed", "--model", os.path.join(ENC, "xlmr")], '{"text": "hello world"}\n')
    assert rc == 0, err
    v = json.loads(out)["embedding"]
    assert len(v) == 32 and abs(sum(x * x for x in v) - 1) < 1e-5
    for m in ("bert_cls", "xlmr_cls"):
        rc, out, err = run(["rerank", "--model", os.path.join(ENC, m), "--query", "hello"],
                           '{"text": "hello world"}\n{"text": "foo bar"}\n')
        assert rc == 0, err
        scores = [json.loads(l)["score"] for l in out.splitlines()]
        assert len(scores) == 2 and all(0 < s < 1 for s in scores)
    # NVIDIA's bidirectional-Llama reranker: "question:{q} \n \n passage:{d}" in one text, its pooled score
    rc, out, err = run(["rerank", "--model", os.path.join(ENC, "llama_rerank"), "--query", "q"],
                       '{"text": "x"}\n{"text": "hello world"}\n{"text": "x"}\n')
    assert rc == 0, err
    scores = [json.loads(l)["score"] for l in out.splitlines()]
    assert len(scores) == 3 and all(0 < s < 1 for s in scores) and scores[0] == scores[2] != scores[1], scores
    rc, out, err = run(["inspect", "--model", os.path.join(ENC, "bert_cls")])
    assert rc == 0, err
    assert "post-LayerNorm, bidirectional attention" in out and "classifier     1 label(s)" in out
    assert "KV cache" in out and "generation, KV cache" not in out
