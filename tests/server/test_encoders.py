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
