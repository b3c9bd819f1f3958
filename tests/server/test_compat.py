"""Issue 19: the request shapes of the servers our users leave — NIM /v1/ranking and input_type, Cohere v2
/v2/rerank and /v2/embed, vLLM /score and /v1/score, KServe v2 health and model metadata — each checked
against ragd's own endpoints on the same inputs (same task underneath, so the same bits)."""
import base64
import math
import struct

DOCS = ["the cat sat on the mat", "stock prices fell sharply", "a kitten chased a mouse", "rain is expected"]
RETRIEVAL = "Given a web search query, retrieve relevant passages that answer the query"


def native_scores(server, query, docs):
    r = server.post("/rerank", {"query": query, "documents": docs})
    assert r.status_code == 200, r.text
    return r.json()["scores"]


def test_nim_ranking(server):
    p = native_scores(server, "cat", DOCS)
    r = server.post("/v1/ranking", {"model": "qwen3-rerank-tiny", "query": {"text": "cat"},
                                    "passages": [{"text": d} for d in DOCS], "truncate": "END"})
    assert r.status_code == 200, r.text
    rk = r.json()["rankings"]
    assert sorted(x["index"] for x in rk) == [0, 1, 2, 3]
    logits = [x["logit"] for x in rk]
    assert logits == sorted(logits, reverse=True)
    for x in rk:  # the logit is yes − no: p(yes) = sigmoid(logit)
        assert abs(1 / (1 + math.exp(-x["logit"])) - p[x["index"]]) < 1e-5, (x, p)
    assert server.post("/v1/ranking", {"query": {"text": "cat"}, "passages": [{"text": "a"}],
                                       "truncate": "START"}).status_code == 400
    e = server.post("/v1/ranking", {"query": "cat", "passages": [{"text": "a"}]})
    assert e.status_code == 400 and "query" in e.text
    assert server.post("/v1/ranking", {"query": {"text": "cat"}, "passages": [{"txt": "a"}]}).status_code == 400


def test_cohere_v2_rerank(server):
    p = native_scores(server, "cat", DOCS)
    r = server.post("/v2/rerank", {"model": "qwen3-rerank-tiny", "query": "cat", "documents": DOCS, "top_n": 3})
    assert r.status_code == 200, r.text
    b = r.json()
    assert len(b["results"]) == 3
    assert [x["relevance_score"] for x in b["results"]] == sorted(p, reverse=True)[:3]
    for x in b["results"]:
        assert x["relevance_score"] == p[x["index"]] and "document" not in x
    assert b["meta"]["api_version"]["version"] == "2" and b["id"]
    # Cohere cuts long documents (max_tokens_per_doc) instead of refusing them
    long_doc = "cats " * 2000
    r = server.post("/v2/rerank", {"query": "cat", "documents": [long_doc, "dog"], "max_tokens_per_doc": 16})
    assert r.status_code == 200, r.text


def test_vllm_score(server):
    p = native_scores(server, "cat", DOCS)
    for path in ("/score", "/v1/score"):
        r = server.post(path, {"model": "qwen3-rerank-tiny", "text_1": "cat", "text_2": DOCS})
        assert r.status_code == 200, r.text
        b = r.json()
        assert b["object"] == "list" and b["usage"]["prompt_tokens"] > 0
        assert [d["index"] for d in b["data"]] == [0, 1, 2, 3]  # input order, not sorted
        assert [d["score"] for d in b["data"]] == p
    # two lists pair up one to one
    q = ["cat", "money", "cat"]
    r = server.post("/score", {"text_1": q, "text_2": DOCS[:3]})
    assert r.status_code == 200, r.text
    got = [d["score"] for d in r.json()["data"]]
    assert got == [native_scores(server, qi, [di])[0] for qi, di in zip(q, DOCS[:3])]
    # one text_2
    one = server.post("/score", {"text_1": "cat", "text_2": DOCS[2]}).json()["data"]
    assert [d["score"] for d in one] == [p[2]]
    assert server.post("/score", {"text_1": ["a", "b"], "text_2": ["c"]}).status_code == 400
    assert server.post("/score", {"text_1": ["a"], "text_2": "c"}).status_code == 400
    assert server.post("/score", {"text_2": ["c"]}).status_code == 400
    e = server.post("/score", {"text_1": ["a", ""], "text_2": ["c", "d"]})
    assert e.status_code == 400 and "text_1[1]" in e.text


def packbits(v):
    out = []
    for j0 in range(0, len(v), 8):
        byte = 0
        for k in range(8):
            byte = byte << 1 | (1 if j0 + k < len(v) and v[j0 + k] > 0 else 0)
        out.append(byte)
    return out


def test_cohere_v2_embed(server):
    texts = ["hello world", "what is a cat?"]
    ref = server.post("/embed", {"texts": texts}).json()["embeddings"]
    refq = server.post("/embed", {"texts": texts, "instruction": RETRIEVAL}).json()["embeddings"]
    r = server.post("/v2/embed", {"model": "qwen3-embed-tiny", "texts": texts, "input_type": "search_document",
                                  "embedding_types": ["float", "base64", "binary", "ubinary"]})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["response_type"] == "embeddings_by_type" and b["meta"]["billed_units"]["input_tokens"] > 0
    e = b["embeddings"]
    assert e["float"] == ref
    for i, s in enumerate(e["base64"]):
        raw = base64.b64decode(s)
        assert list(struct.unpack("<%df" % (len(raw) // 4), raw)) == [struct.unpack("<f", struct.pack("<f", x))[0] for x in ref[i]]
    for i, v in enumerate(ref):
        assert e["ubinary"][i] == packbits(v)
        assert e["binary"][i] == [x - 128 for x in packbits(v)]
    q = server.post("/v2/embed", {"texts": texts, "input_type": "search_query"}).json()["embeddings"]["float"]
    assert q == refq and q != ref
    bad = server.post("/v2/embed", {"texts": texts, "embedding_types": ["int8"]})
    assert bad.status_code == 400 and "calibrated" in bad.text
    assert server.post("/v2/embed", {"texts": texts, "input_type": "image"}).status_code == 400
    assert server.post("/v2/embed", {"texts": texts, "truncate": "START"}).status_code == 400


def test_nim_input_type(server):
    texts = ["hello world"]
    refq = server.post("/embed", {"texts": texts, "instruction": RETRIEVAL}).json()["embeddings"][0]
    ref = server.post("/embed", {"texts": texts}).json()["embeddings"][0]
    q = server.post("/v1/embeddings", {"input": texts, "input_type": "query"}).json()["data"][0]["embedding"]
    d = server.post("/v1/embeddings", {"input": texts, "input_type": "passage"}).json()["data"][0]["embedding"]
    assert q == refq and d == ref
    assert server.post("/v1/embeddings", {"input": texts, "input_type": "doc"}).status_code == 400


def test_kserve_v2(server):
    r = server.get("/v2/health/live")
    assert r.status_code == 200 and r.json() == {"live": True}
    r = server.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    m = server.get("/v2/models/qwen3-embed-tiny")
    assert m.status_code == 200, m.text
    b = m.json()
    assert b["name"] == "qwen3-embed-tiny" and b["versions"] == ["1"] and b["tasks"] == ["embed"]
    assert b["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert b["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 64]}]
    rr = server.get("/v2/models/qwen3-rerank-tiny/versions/1").json()
    assert [x["name"] for x in rr["inputs"]] == ["query", "documents"] and rr["outputs"][0]["name"] == "scores"
    for path in ("/v2/models/qwen3-rerank-tiny/ready", "/v2/models/qwen3-rerank-tiny/versions/1/ready"):
        x = server.get(path)
        assert x.status_code == 200 and x.json()["ready"] is True
    u = server.get("/v2/models/nope")
    assert u.status_code == 404 and "qwen3-embed-tiny" in u.json()["error"]
    assert server.get("/v2/models/qwen3-embed-tiny/versions/2").status_code == 404


def test_compat_endpoints_in_metrics(server):
    server.post("/v1/ranking", {"query": {"text": "cat"}, "passages": [{"text": "a"}]})
    text = server.get("/metrics").text
    for ep in ("/v1/ranking", "/v2/rerank", "/v2/embed", "/score", "/v2/models"):
        assert 'endpoint="%s"' % ep in text, ep


def test_kserve_v2_infer(server):
    texts = ["hello world", "what is a cat?"]
    ref = server.post("/embed", {"texts": texts}).json()["embeddings"]
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": texts}]}
    for path in ("/v2/models/qwen3-embed-tiny/infer", "/v2/models/qwen3-embed-tiny/versions/1/infer"):
        r = server.post(path, body)
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["name"] == "embedding" and out["datatype"] == "FP32" and out["shape"] == [2, 64]
        assert out["data"] == ref[0] + ref[1]
    p = native_scores(server, "cat", DOCS)
    r = server.post("/v2/models/qwen3-rerank-tiny/infer", {"inputs": [
        {"name": "query", "shape": [1], "datatype": "BYTES", "data": ["cat"]},
        {"name": "documents", "shape": [4], "datatype": "BYTES", "data": DOCS}]})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["model_name"] == "qwen3-rerank-tiny" and b["outputs"][0]["shape"] == [4]
    assert b["outputs"][0]["data"] == p
    assert server.post("/v2/models/qwen3-embed-tiny/infer", {"inputs": []}).status_code == 400
    bad = server.post("/v2/models/qwen3-embed-tiny/infer",
                      {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
    assert bad.status_code == 400 and "BYTES" in bad.text
    wrong = server.post("/v2/models/qwen3-rerank-tiny/infer", body)  # text into the reranker
    assert wrong.status_code == 400 and "query" in wrong.text
    assert server.post("/v2/models/qwen3-tiny/infer", body).status_code == 400  # the chat model
    u = server.post("/v2/models/nope/infer", body)
    assert u.status_code == 404 and isinstance(u.json()["error"], str)
