"""Issue 12: encoders served on the CPU — a BERT / XLM-R embedder on /embed and /v1/embeddings, a
cross-encoder (Bert/XLMRobertaForSequenceClassification, one label) on /rerank, /v1/rerank and NIM's
/v1/ranking, and /v1/models saying which score a reranker gives. The numbers themselves are checked
against transformers in tests/engine/test_encoders.c; here: the wiring, sigmoid(logit) = score, unit
vectors, and that a document's score does not depend on the request around it (batch invariance)."""
import json
import math
import os
import shutil
import subprocess

from conftest import BIN, SRC, start

ENC = os.path.join(SRC, "tests", "engine", "encoders")


def _run(embed, rerank):
    s = start(["--embed", os.path.join(ENC, embed), "--rerank", os.path.join(ENC, rerank)])
    try:
        models = {m["id"]: m for m in s.get("/v1/models").json()["data"]}
        assert models[embed]["tasks"] == ["embed"] and models[embed]["pooling"] in ("mean", "cls"), models
        assert models[rerank]["rerank_score"] == "sigmoid(logit)", models
        assert models[rerank]["rerank_logit"] == "classifier logit", models

        r = s.post("/v1/embeddings", {"input": ["hello world", "a b c"], "model": embed})
        assert r.status_code == 200, r.text
        vecs = [d["embedding"] for d in r.json()["data"]]
        assert len(vecs) == 2 and all(len(v) == 32 for v in vecs)
        assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5 for v in vecs)
        one = s.post("/embed", {"texts": ["a b c"], "model": embed}).json()
        assert one["embeddings"][0] == vecs[1]  # alone = in a batch, bit for bit

        docs = ["hello world", "foo bar baz", "a much longer document " * 10]
        r = s.post("/rerank", {"query": "hello", "documents": docs})
        assert r.status_code == 200, r.text
        scores = r.json()["scores"]
        assert len(scores) == 3 and all(0 < x < 1 for x in scores)
        nim = s.post("/v1/ranking", {"query": {"text": "hello"}, "passages": [{"text": d} for d in docs]})
        assert nim.status_code == 200, nim.text
        for rk in nim.json()["rankings"]:
            assert abs(1 / (1 + math.exp(-rk["logit"])) - scores[rk["index"]]) < 1e-6
        alone = s.post("/rerank", {"query": "hello", "documents": [docs[1]]}).json()["scores"][0]
        assert alone == scores[1]
        v1 = s.post("/v1/rerank", {"query": "hello", "documents": docs, "top_n": 2})
        assert v1.status_code == 200 and len(v1.json()["results"]) == 2, v1.text
    finally:
        assert s.stop() == 0


def test_bert_embedder_and_cross_encoder():
    _run("bert", "bert_cls")


def test_xlmr_embedder_and_cross_encoder():
    _run("xlmr", "xlmr_cls")


def test_classifier_shape_checked_against_config(tmp_path):
    """config.json says 2 labels, the weights have 1: the start is refused naming the tensor and both shapes
    (the family descriptor's shape [LABELS, E])"""
    d = tmp_path / "two_labels"
    shutil.copytree(os.path.join(ENC, "bert_cls"), d)
    conf = json.loads((d / "config.json").read_text())
    conf["id2label"] = {"0": "A", "1": "B"}
    (d / "config.json").write_text(json.dumps(conf))
    p = subprocess.run([BIN, "serve", "--rerank", str(d), "--port", "0"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "tensor 'classifier.weight': expected shape [2, 32], found [1, 32]" in p.stderr, p.stderr[-2000:]


# ---------------------------------------------------------------------------------------------------------
# The whole path with REAL tokenizers (tests/engine/make_encoder_fixtures.py --real): all-MiniLM-L6-v2's
# tokenizer.json, bge-small-en-v1.5's and ms-marco-MiniLM-L-6-v2's vocab.txt folders, tiny random BERT
# weights over their 30522 ids; references from transformers fp32 through the real HF tokenizer
# (truncation=True) with sentence-transformers pooling + Normalize, and the cross-encoder's logit.

import pytest

TOL = 1e-4


def _ref(name):
    with open(os.path.join(ENC, name + ".json")) as fh:
        return json.load(fh)


def _maxdiff(a, b):
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def real():
    s = start(["--embed", os.path.join(ENC, "minilm_real"), "--rerank", os.path.join(ENC, "msmarco_real")])
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def real_bge():
    s = start(["--embed", os.path.join(ENC, "bge_small_real")])
    yield s
    assert s.stop() == 0


def _check_embedder(s, name, pooling):
    ref = _ref(name)
    cases = ref["cases"]
    assert any(c["n_untruncated"] > 512 for c in cases)  # the truncation path is exercised
    texts = [c["text"] for c in cases]
    models = {m["id"]: m for m in s.get("/v1/models").json()["data"]}
    assert models[name]["pooling"] == pooling
    # ids: the real tokenizer with its post-processor, exactly as HF
    for c in cases:
        if c["n_untruncated"] <= 512:
            r = s.post("/tokenize", {"text": c["text"], "model": name})
            assert r.status_code == 200 and r.json()["tokens"] == c["ids"], (c["text"], r.text)
    # ragd's seed shape, truncate: the tokenizer cuts the ids, then [SEP] — HF's truncation=True
    seed = s.post("/embed", {"texts": texts, "truncate": True})
    assert seed.status_code == 200, seed.text
    assert set(seed.json()) == {"embeddings", "model", "usage"}
    worst = max(_maxdiff(v, c["embedding"]) for v, c in zip(seed.json()["embeddings"], cases))
    assert worst <= TOL, worst
    # TEI's shape: a bare array of arrays, the same numbers
    tei = s.post("/embed", {"inputs": texts, "truncate": True})
    assert tei.status_code == 200, tei.text
    assert isinstance(tei.json(), list) and tei.json() == seed.json()["embeddings"]
    one = s.post("/embed", {"inputs": texts[1]})
    assert one.status_code == 200 and one.json() == [seed.json()["embeddings"][1]]
    # normalize false: the pooled vector itself (same direction as the reference)
    raw = s.post("/embed", {"inputs": [texts[2]], "normalize": False}).json()[0]
    n = math.sqrt(sum(x * x for x in raw))
    assert abs(n - 1) > 1e-3 and _maxdiff([x / n for x in raw], cases[2]["embedding"]) <= TOL
    # truncation_direction Left: HF's truncation_side="left"
    longs = [c for c in cases if "embedding_left" in c]
    left = s.post("/embed", {"inputs": [c["text"] for c in longs], "truncate": True, "truncation_direction": "Left"})
    assert left.status_code == 200, left.text
    assert max(_maxdiff(v, c["embedding_left"]) for v, c in zip(left.json(), longs)) <= TOL
    # TEI without truncate: a text over the limit is 413 (TEI's Validation code), ragd's error body
    r = s.post("/embed", {"inputs": [texts[0], longs[0]["text"]]})
    assert r.status_code == 413 and r.json()["error"]["code"] == "context_length_exceeded", r.text
    print("%s: %d texts, max abs error %.3g vs transformers" % (name, len(cases), worst))
    return worst


def test_real_tokenizer_embedder_minilm(real):
    _check_embedder(real, "minilm_real", "mean")


def test_real_tokenizer_embedder_bge_vocab_txt(real_bge):
    _check_embedder(real_bge, "bge_small_real", "cls")


def test_real_tokenizer_cross_encoder(real):
    ref = _ref("msmarco_real")
    cases = ref["cases"]
    assert any(c["n_untruncated"] > 512 for c in cases) and any(1 in c["type_ids"] for c in cases)
    by_q = {}
    for i, c in enumerate(cases):
        by_q.setdefault(c["query"], []).append(i)
    worst = 0.0
    for q, idx in by_q.items():
        docs = [cases[i]["document"] for i in idx]
        logits = [cases[i]["logit"] for i in idx]
        # NIM's raw logits
        nim = s_post(real, "/v1/ranking", {"query": {"text": q}, "passages": [{"text": d} for d in docs]})
        got = {rk["index"]: rk["logit"] for rk in nim["rankings"]}
        worst = max(worst, max(abs(got[k] - logits[k]) for k in range(len(docs))))
        # ragd's seed shape (unchanged): scores = sigmoid(logit), the pair truncated longest_first by default
        seed = s_post(real, "/rerank", {"query": q, "documents": docs})
        assert set(seed) == {"scores", "order", "model", "usage"}
        sig = [1 / (1 + math.exp(-x)) for x in logits]
        assert _maxdiff(seed["scores"], sig) <= TOL
        # TEI's shape: [{"index", "score"}] by descending score; raw_scores; return_text
        tei = s_post(real, "/rerank", {"query": q, "texts": docs, "truncate": True})
        assert [e["index"] for e in tei] == seed["order"] and all(set(e) == {"index", "score"} for e in tei)
        assert max(abs(e["score"] - sig[e["index"]]) for e in tei) <= TOL
        rawr = s_post(real, "/rerank", {"query": q, "texts": docs, "truncate": True, "raw_scores": True,
                                        "return_text": True})
        assert max(abs(e["score"] - logits[e["index"]]) for e in rawr) <= TOL
        assert all(e["text"] == docs[e["index"]] for e in rawr)
        assert [e["score"] for e in rawr] == sorted((e["score"] for e in rawr), reverse=True)
    assert worst <= TOL, worst
    # TEI without truncate: a pair over 512 tokens is 413
    long_pair = next(c for c in cases if c["n_untruncated"] > 512)
    r = real.post("/rerank", {"query": long_pair["query"], "texts": [long_pair["document"]]})
    assert r.status_code == 413 and r.json()["error"]["code"] == "context_length_exceeded", r.text
    print("msmarco_real: %d pairs, max abs logit error %.3g vs transformers" % (len(cases), worst))


def s_post(s, path, body):
    r = s.post(path, body)
    assert r.status_code == 200, r.text
    return r.json()


def test_tei_info(real):
    info = real.get("/info")
    assert info.status_code == 200, info.text
    i = info.json()
    assert i["model_id"] == "minilm_real" and i["model_type"] == {"embedding": {"pooling": "mean"}}
    assert i["model_dtype"] == "float32" and i["max_input_length"] == 512
    for k in ("max_batch_tokens", "max_client_batch_size", "tokenization_workers"):
        assert isinstance(i[k], int) and i[k] > 0, (k, i)
    assert isinstance(i["version"], str) and i["version"]
    s = start(["--rerank", os.path.join(ENC, "msmarco_real")])
    try:
        i = s.get("/info").json()
        assert i["model_id"] == "msmarco_real" and "reranker" in i["model_type"], i
        assert i["model_type"]["reranker"]["id2label"] == {"0": "LABEL_0"}
    finally:
        assert s.stop() == 0


def test_tei_errors(real):
    def err(r, status, param=None):
        assert r.status_code == status, r.text
        e = r.json()["error"]
        assert set(e) == {"message", "type", "param", "code"}, e
        if param:
            assert e["param"] == param, e
        return e
    e = err(real.post("/embed", {"inputs": ["a"], "texts": ["a"]}), 400, "inputs")
    assert "'inputs'" in e["message"] and "'texts'" in e["message"]
    e = err(real.post("/rerank", {"query": "q", "texts": ["a"], "documents": ["a"]}), 400, "texts")
    assert "'texts'" in e["message"] and "'documents'" in e["message"]
    err(real.post("/embed", {"inputs": ["a"], "bogus": 1}), 422, "bogus")
    err(real.post("/embed", {"inputs": 5}), 422, "inputs")
    err(real.post("/embed", {"inputs": ["a", 3]}), 422, "inputs")
    err(real.post("/embed", {"inputs": ["a"], "normalize": "yes"}), 422, "normalize")
    err(real.post("/embed", {"inputs": ["a"], "truncation_direction": "Up"}), 422, "truncation_direction")
    err(real.post("/embed", {"inputs": ["a"], "prompt_name": "query"}), 422, "prompt_name")
    err(real.post("/embed", {"inputs": []}), 400, "inputs")
    err(real.post("/embed", {"inputs": ""}), 400, "inputs")
    err(real.post("/embed", {"inputs": ["x"] * 4097}), 413, "inputs")
    err(real.post("/rerank", {"query": "q", "texts": ["x"] * 4097}), 413, "texts")
    err(real.post("/rerank", {"query": "q", "texts": []}), 400, "texts")
    err(real.post("/rerank", {"query": "q", "texts": ["a"], "raw_scores": 1}), 422, "raw_scores")
    err(real.post("/rerank", {"texts": ["a"]}), 422, "query")
    # the seed contracts keep ragd's codes
    err(real.post("/embed", {"texts": ["a"], "bogus": 1}), 400, "bogus")
    err(real.post("/rerank", {"query": "q", "documents": ["a"], "bogus": 1}), 400, "bogus")
