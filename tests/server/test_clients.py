"""Issue 19 with the official clients from PyPI (scripts/install-deps.sh installs them): the Cohere Python SDK
(`cohere.ClientV2`: rerank, embed) against /v2/rerank and /v2/embed, and Triton's `tritonclient[http]` against
the KServe v2 routes (health, metadata, infer). Each parses ragd's replies into its own types, and the values
are checked against ragd's native endpoints on the same inputs (the same task underneath: the same bits)."""
import base64
import struct

import cohere
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

DOCS = ["the cat sat on the mat", "stock prices fell sharply", "a kitten chased a mouse", "rain is expected"]
EMBED_NAME, RERANK_NAME = "qwen3-embed-tiny", "qwen3-rerank-tiny"


@pytest.fixture()
def co(server):
    return cohere.ClientV2(api_key="unused", base_url=server.url)


@pytest.fixture()
def tc(server):
    return triton.InferenceServerClient(server.url.replace("http://", ""))


def native_scores(server, query, docs):
    r = server.post("/rerank", {"query": query, "documents": docs})
    assert r.status_code == 200, r.text
    return r.json()["scores"]


def native_embed(server, texts):
    r = server.post("/v1/embeddings", {"input": texts, "encoding_format": "float"})
    assert r.status_code == 200, r.text
    return [d["embedding"] for d in r.json()["data"]]


def test_cohere_rerank(server, co):
    want = native_scores(server, "cat", DOCS)
    r = co.rerank(model=RERANK_NAME, query="cat", documents=DOCS, top_n=3)
    assert isinstance(r, cohere.V2RerankResponse)
    order = sorted(range(len(DOCS)), key=lambda i: -want[i])[:3]
    assert [x.index for x in r.results] == order, (r.results, want)
    for x in r.results:
        assert abs(x.relevance_score - want[x.index]) < 1e-6, (x, want)
    assert r.meta.api_version.version == "2" and r.meta.billed_units.search_units == 1


def test_cohere_embed(server, co):
    texts = ["hello world", "a second text"]
    # search_document is the plain text for Qwen3-Embedding (instructions go on queries only)
    want = native_embed(server, texts)
    e = co.embed(model=EMBED_NAME, texts=texts, input_type="search_document",
                 embedding_types=["float", "base64", "binary", "ubinary"])
    assert isinstance(e, cohere.EmbedByTypeResponse)
    E = e.embeddings
    assert len(E.float_) == 2 and all(abs(a - b) < 1e-6 for v, w in zip(E.float_, want) for a, b in zip(v, w))
    for b64, w in zip(E.base64, want):  # little-endian float32
        raw = base64.b64decode(b64)
        assert list(struct.unpack("<%df" % (len(raw) // 4), raw)) == pytest.approx(w, abs=1e-6)
    for v, ub, b in zip(want, E.ubinary, E.binary):  # one bit per dimension (> 0), packed MSB first
        bits = np.packbits(np.array(v) > 0)
        assert ub == bits.tolist() and b == (bits.astype(np.int16) - 128).tolist(), (ub, b)
    assert e.meta.billed_units.input_tokens > 0
    # the query side gets the model's query instruction: another vector
    q = co.embed(model=EMBED_NAME, texts=texts[:1], input_type="search_query", embedding_types=["float"])
    assert q.embeddings.float_[0] != E.float_[0]


def test_cohere_errors(co):
    with pytest.raises(cohere.errors.BadRequestError) as ei:
        co.embed(model=EMBED_NAME, texts=["x"], input_type="image", embedding_types=["float"])
    assert ei.value.status_code == 400 and ei.value.body["error"]["param"] == "input_type"
    with pytest.raises(cohere.errors.BadRequestError) as ei:
        co.embed(model=EMBED_NAME, texts=["x"], input_type="search_query", embedding_types=["int8"])
    assert ei.value.body["error"]["param"] == "embedding_types"
    with pytest.raises(cohere.errors.BadRequestError) as ei:
        co.rerank(model=RERANK_NAME, query="x", documents=["a"], top_n=0)
    assert ei.value.body["error"]["param"] == "top_n"
    with pytest.raises(cohere.errors.NotFoundError) as ei:
        co.rerank(model="no-such-model", query="x", documents=["a"])
    assert RERANK_NAME in ei.value.body["error"]["message"]


def test_triton_health_and_metadata(tc):
    assert tc.is_server_live() and tc.is_server_ready()
    assert tc.is_model_ready(EMBED_NAME) and tc.is_model_ready(RERANK_NAME) and not tc.is_model_ready("nope")
    md = tc.get_model_metadata(EMBED_NAME)
    assert md["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}], md
    assert md["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, 64]}], md
    md = tc.get_model_metadata(RERANK_NAME)
    assert [i["name"] for i in md["inputs"]] == ["query", "documents"] and md["outputs"][0]["name"] == "scores"
    with pytest.raises(InferenceServerException) as ei:
        tc.get_model_metadata("nope")
    assert ei.value.status() == "404" and EMBED_NAME in ei.value.message()


def bytes_input(name, values):
    x = triton.InferInput(name, [len(values)], "BYTES")
    x.set_data_from_numpy(np.array([v.encode() for v in values], dtype=object), binary_data=False)
    return x


def test_triton_infer(server, tc):
    texts = ["hello world", "a second text"]
    res = tc.infer(EMBED_NAME, [bytes_input("text", texts)])
    got = res.as_numpy("embedding")
    assert got.shape == (2, 64) and got.dtype == np.float32
    assert np.abs(got - np.array(native_embed(server, texts), dtype=np.float32)).max() < 1e-6
    res = tc.infer(RERANK_NAME, [bytes_input("query", ["cat"]), bytes_input("documents", DOCS)],
                   outputs=[triton.InferRequestedOutput("scores", binary_data=False)])
    assert res.as_numpy("scores").tolist() == pytest.approx(native_scores(server, "cat", DOCS), abs=1e-6)
    # wrong input name, and the binary tensor extension: 400s that say what to send
    with pytest.raises(InferenceServerException) as ei:
        tc.infer(EMBED_NAME, [bytes_input("txt", ["x"])])
    assert ei.value.status() == "400" and "'text'" in str(ei.value.message())
    binary = triton.InferInput("text", [1], "BYTES")
    binary.set_data_from_numpy(np.array([b"x"], dtype=object), binary_data=True)
    with pytest.raises(InferenceServerException) as ei:
        tc.infer(EMBED_NAME, [binary])
    assert ei.value.status() == "400" and "binary_data=False" in str(ei.value.message()), ei.value.message()
