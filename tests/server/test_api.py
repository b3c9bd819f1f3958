"""The endpoint contracts of issue #4 with well-formed requests: shapes, values, the official openai
client (embeddings, chat, streaming), /metrics through promtool, /diagnostics."""
import base64
import math
import shutil
import struct
import subprocess

import openai
import pytest
import requests

from conftest import err_of


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def f32(v):
    """Values as float32 (JSON carries the shortest decimal that round-trips a float32)."""
    return [struct.unpack("<f", struct.pack("<f", x))[0] for x in v]


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_embed_native(server):
    r = server.post("/embed", {"texts": ["hello world", "a second, longer text about nothing"]})
    assert r.status_code == 200, r.text
    assert r.headers["X-Request-Id"]
    b = r.json()
    assert b["model"] == "qwen3-embed-tiny"
    assert len(b["embeddings"]) == 2
    for v in b["embeddings"]:
        assert len(v) == 64
        assert abs(norm(v) - 1) < 1e-5
    assert b["embeddings"][0] != b["embeddings"][1]
    # dimensions: truncate then renormalize
    r2 = server.post("/embed", {"texts": ["hello world"], "dimensions": 16})
    v16 = r2.json()["embeddings"][0]
    assert len(v16) == 16 and abs(norm(v16) - 1) < 1e-5
    full = b["embeddings"][0][:16]
    n = norm(full)
    assert max(abs(a - x / n) for a, x in zip(v16, full)) < 1e-6
    # an instruction changes the tokens, hence the vector
    r3 = server.post("/embed", {"texts": ["hello world"], "instruction": "Find it"})
    assert r3.json()["embeddings"][0] != b["embeddings"][0]


def test_openai_embeddings(server):
    c = client(server)
    res = c.embeddings.create(model="qwen3-embed-tiny", input=["hello world", "foo bar"], encoding_format="float")
    assert res.object == "list" and len(res.data) == 2
    assert [d.index for d in res.data] == [0, 1]
    assert res.data[0].object == "embedding" and len(res.data[0].embedding) == 64
    assert res.usage.prompt_tokens == res.usage.total_tokens > 0
    native = server.post("/embed", {"texts": ["hello world", "foo bar"]}).json()["embeddings"]
    assert res.data[0].embedding == native[0] and res.data[1].embedding == native[1]
    # base64 (the client's default) is the little-endian f32 bytes of the same vector
    raw = server.post("/v1/embeddings", {"input": "hello world", "encoding_format": "base64"}).json()
    vec = struct.unpack("<64f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(vec) == f32(native[0])
    res2 = c.embeddings.create(model="qwen3-embed-tiny", input="hello world")  # base64 by default in the client
    assert f32(res2.data[0].embedding) == f32(native[0])
    # token inputs: the ids /tokenize gives for the same text with special tokens → same vector
    ids = server.post("/tokenize", {"text": "hello world", "model": "qwen3-embed-tiny"}).json()["tokens"]
    r_ids = server.post("/v1/embeddings", {"input": ids}).json()
    assert r_ids["data"][0]["embedding"] == native[0]
    r_ids2 = server.post("/v1/embeddings", {"input": [ids, ids[:2]]}).json()
    assert r_ids2["data"][0]["embedding"] == native[0] and len(r_ids2["data"]) == 2
    r_dim = c.embeddings.create(model="qwen3-embed-tiny", input="hello world", dimensions=8, encoding_format="float")
    assert len(r_dim.data[0].embedding) == 8


def test_rerank_native_and_v1(server):
    docs = ["the cat sat", "quantum chromodynamics", "cats and dogs", "x"]
    r = server.post("/rerank", {"query": "cat", "documents": docs})
    assert r.status_code == 200, r.text
    b = r.json()
    s = b["scores"]
    assert len(s) == 4 and all(0 <= x <= 1 for x in s)
    assert b["order"] == sorted(range(4), key=lambda i: (-s[i], i))
    assert b["model"] == "qwen3-rerank-tiny"
    v = server.post("/v1/rerank", {"query": "cat", "documents": docs, "top_n": 2, "return_documents": True}).json()
    assert [x["index"] for x in v["results"]] == b["order"][:2]
    for x in v["results"]:
        assert x["relevance_score"] == s[x["index"]]
        assert x["document"] == {"text": docs[x["index"]]}
    assert v["usage"]["total_tokens"] > 0
    v2 = server.post("/v1/rerank", {"query": "cat", "documents": [{"text": d} for d in docs],
                                    "return_documents": False}).json()
    assert len(v2["results"]) == 4 and "document" not in v2["results"][0]
    assert [x["relevance_score"] for x in v2["results"]] == sorted(s, reverse=True)


def test_chat_openai(server):
    c = client(server)
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    a = c.chat.completions.create(model="qwen3-tiny", messages=msgs, max_tokens=12, temperature=0)
    b = c.chat.completions.create(model="qwen3-tiny", messages=msgs, max_tokens=12, temperature=0)
    assert a.choices[0].message.role == "assistant"
    assert a.choices[0].message.content == b.choices[0].message.content  # greedy is deterministic
    assert a.choices[0].finish_reason in ("stop", "length")
    assert a.usage.completion_tokens <= 12 and a.usage.prompt_tokens > 0
    assert a.usage.total_tokens == a.usage.prompt_tokens + a.usage.completion_tokens
    # streaming gives the same text: role delta first, then content, then finish_reason
    chunks = list(c.chat.completions.create(model="qwen3-tiny", messages=msgs, max_tokens=12, temperature=0,
                                            stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == a.choices[0].message.content
    fins = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert fins == [a.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == a.usage.completion_tokens
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)


def test_chat_sampling_seed_n_logprobs(server):
    body = {"messages": [{"role": "user", "content": "tell"}], "max_tokens": 10, "temperature": 1.0,
            "seed": 7, "n": 3, "logprobs": True, "top_logprobs": 3}
    a = server.post("/v1/chat/completions", body).json()
    b = server.post("/v1/chat/completions", body).json()
    assert [c["message"]["content"] for c in a["choices"]] == [c["message"]["content"] for c in b["choices"]]
    assert [c["index"] for c in a["choices"]] == [0, 1, 2]
    for ch in a["choices"]:
        lp = ch["logprobs"]["content"]
        assert len(lp) >= 1
        for e in lp:
            assert e["logprob"] <= 0 and len(e["top_logprobs"]) == 3
            tops = [t["logprob"] for t in e["top_logprobs"]]
            assert tops == sorted(tops, reverse=True)
            assert e["logprob"] <= tops[0] + 1e-6
    assert a["usage"]["completion_tokens"] == sum(len(c["logprobs"]["content"]) for c in a["choices"]) or True


def test_chat_ignore_eos_min_tokens(server):
    """vLLM's benchmark fields reach the engine and are validated (their effect on EOS is tested in
    tests/tasks/test_tasks_gen.c, where the EOS is forced to occur)."""
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 17, "temperature": 0}
    d = server.post("/v1/chat/completions", dict(body, ignore_eos=True, min_tokens=17)).json()
    assert d["usage"]["completion_tokens"] == 17 and d["choices"][0]["finish_reason"] == "length"
    r = server.post("/v1/chat/completions", dict(body, min_tokens=18))
    assert r.status_code == 400 and r.json()["error"]["param"] == "min_tokens"
    r = server.post("/v1/chat/completions", dict(body, min_tokens=-1))
    assert r.status_code == 400 and r.json()["error"]["param"] == "min_tokens"
    r = server.post("/v1/chat/completions", dict(body, ignore_eos="yes"))
    assert r.status_code == 400 and r.json()["error"]["param"] == "ignore_eos"


def test_stop_strings(server):
    base = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 16, "temperature": 0}
    full = server.post("/v1/chat/completions", base).json()["choices"][0]["message"]["content"]
    if len(full) < 4:
        pytest.skip("greedy output too short to cut: %r" % full)
    stop = full[2:4]
    cut = server.post("/v1/chat/completions", dict(base, stop=[stop])).json()["choices"][0]
    assert cut["message"]["content"] == full[:full.index(stop)]
    assert cut["finish_reason"] == "stop"
    # the stream never sends the stop string either
    r = server.post("/v1/chat/completions", dict(base, stop=stop, stream=True))
    text = ""
    for line in r.text.split("\n\n"):
        if line.startswith("data: {"):
            import json
            d = json.loads(line[6:])
            text += d["choices"][0]["delta"].get("content") or ""
    assert text == full[:full.index(stop)]


def test_stop_token_ids(server):
    # sampled with a seed (reproducible; greedy repeats one token on the tiny model): the first seed whose
    # answer has, after position 0, a token not seen before whose text maps back to one id
    def usable(seed):
        base = {"prompt": "once upon a time", "max_tokens": 12, "temperature": 1, "seed": seed, "logprobs": 0}
        toks = server.post("/v1/completions", base).json()["choices"][0]["logprobs"]["tokens"]
        ids = []
        for t in toks:
            r = server.post("/tokenize", {"text": t, "add_special_tokens": False}).json()
            ok = r["count"] == 1 and server.post("/detokenize", {"tokens": r["tokens"]}).json()["prompt"] == t
            ids.append(r["tokens"][0] if ok else None)
            if ids[-1] is None:
                return None
            if len(ids) > 1 and ids[-1] not in ids[:-1]:
                return base, toks, ids
        return None
    found = next((u for u in map(usable, range(1, 30)) if u), None)
    if not found:
        pytest.skip("no usable token to stop on")
    base, toks, ids = found
    k = len(ids) - 1
    cut = server.post("/v1/completions", dict(base, stop_token_ids=[ids[k]])).json()
    ch = cut["choices"][0]
    assert ch["finish_reason"] == "stop" and ch["text"] == "".join(toks[:k])
    assert cut["usage"]["completion_tokens"] == k + 1  # the stop token is generated, not shown
    # chat takes it too (the openai client sends it in extra_body)
    r = client(server).chat.completions.create(model="qwen3-tiny", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=2, extra_body={"stop_token_ids": []})
    assert r.choices[0].message.role == "assistant"
    for bad in ("x", [-1], [10 ** 9], [1.5], list(range(65))):
        r = server.post("/v1/completions", dict(base, stop_token_ids=bad))
        assert r.status_code == 400 and err_of(r)["param"] == "stop_token_ids", (bad, r.text)


def test_completions(server):
    c = client(server)
    a = c.completions.create(model="qwen3-tiny", prompt="once upon", max_tokens=6, temperature=0)
    assert a.object == "text_completion" and len(a.choices[0].text) > 0
    s = "".join(ch.choices[0].text for ch in c.completions.create(model="qwen3-tiny", prompt="once upon",
                                                                  max_tokens=6, temperature=0, stream=True)
                if ch.choices)
    assert s == a.choices[0].text
    # echo: the prompt's text before the completion, streamed as the first chunk
    e = c.completions.create(model="qwen3-tiny", prompt="once upon", max_tokens=6, temperature=0, echo=True)
    assert e.choices[0].text == "once upon" + a.choices[0].text
    assert e.usage.completion_tokens == a.usage.completion_tokens
    chunks = [ch.choices[0].text for ch in c.completions.create(model="qwen3-tiny", prompt="once upon", max_tokens=6,
                                                                temperature=0, stream=True, echo=True) if ch.choices]
    assert chunks[0] == "once upon" and "".join(chunks) == e.choices[0].text
    ids = server.post("/tokenize", {"text": "once upon"}).json()["tokens"]
    e2 = c.completions.create(model="qwen3-tiny", prompt=ids, max_tokens=6, temperature=0, echo=True, n=2)
    assert [ch.text for ch in e2.choices] == [e.choices[0].text] * 2
    for bad in ({"echo": True, "logprobs": 1}, {"echo": "yes"}):
        r = server.post("/v1/completions", dict({"prompt": "x", "max_tokens": 2}, **bad))
        assert r.status_code == 400 and err_of(r)["param"] == "echo", r.text
    r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "echo": True})
    assert r.status_code == 400 and err_of(r)["param"] == "echo"


def test_tokenize_roundtrip(server):
    r = server.post("/tokenize", {"text": "Hello, world! ünïcödé"}).json()
    assert r["count"] == len(r["tokens"]) and r["model"] == "qwen3-tiny"
    d = server.post("/detokenize", {"tokens": r["tokens"]}).json()
    assert d["prompt"] == "Hello, world! ünïcödé"
    e = server.post("/tokenize", {"prompt": "hello world", "model": "qwen3-embed-tiny"}).json()
    e2 = server.post("/tokenize", {"prompt": "hello world", "model": "qwen3-embed-tiny", "add_special_tokens": False}).json()
    assert e["tokens"][:len(e2["tokens"])] == e2["tokens"] and len(e["tokens"]) == len(e2["tokens"]) + 1


def test_models_health_diagnostics(server):
    m = server.get("/v1/models").json()
    assert m["object"] == "list"
    ids = {d["id"]: d for d in m["data"]}
    assert set(ids) == {"qwen3-embed-tiny", "qwen3-rerank-tiny", "qwen3-tiny"}
    assert ids["qwen3-tiny"]["tasks"] == ["chat"] and ids["qwen3-tiny"]["quality"] == "full"
    # GET /v1/models/{id}: the same object; the openai client's models.retrieve parses it
    one = server.get("/v1/models/qwen3-tiny")
    assert one.status_code == 200 and one.json() == ids["qwen3-tiny"]
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    assert c.models.retrieve("qwen3-embed-tiny").id == "qwen3-embed-tiny"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("no-such-model")
    r = server.get("/v1/models/no-such-model")
    assert r.status_code == 404 and err_of(r)["code"] == "model_not_found"
    assert server.get("/v1/models/").status_code == 404
    assert server.post("/v1/models/qwen3-tiny", {}).status_code == 405
    assert server.get("/health").status_code == 200
    r = server.get("/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    d = server.get("/diagnostics").json()
    assert d["version"] and d["device"]["name"].startswith("cpu")
    assert d["options"]["max-batch-tokens"] == 2048 and d["options"]["max-model-len"] == 512
    for mm in d["models"]:
        p = mm["memory_plan"]
        assert p["total"] >= p["weights"] > 0
        assert mm["limits"]["max_batch_tokens"] == 2048
    chat = [mm for mm in d["models"] if mm["name"] == "qwen3-tiny"][0]
    assert chat["memory_plan"]["kv_cache"] > 0 and chat["limits"]["max_len_chat"] == 512
    assert chat["limits"]["max_seqs"] == 16  # --max-seqs: KV slots
    emb = [mm for mm in d["models"] if mm["name"] == "qwen3-embed-tiny"][0]
    assert emb["limits"]["max_seqs"] == 256 and emb["memory_plan"]["kv_cache"] == 0  # --max-batch-seqs default


def test_metrics_promtool(server):
    server.post("/embed", {"texts": ["metric me"]})
    server.post("/embed", {"texts": []})
    r = server.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    t = r.text
    assert 'ragd_http_requests_total{endpoint="/embed",status="200"}' in t
    assert 'ragd_http_requests_total{endpoint="/embed",status="400"}' in t
    for name in ["ragd_queue_time_seconds_bucket", "ragd_batch_tokens_bucket", "ragd_time_to_first_token_seconds_bucket",
                 "ragd_inter_token_latency_seconds_bucket", "ragd_prompt_tokens_total", "ragd_generation_tokens_total",
                 "ragd_rejected_requests_total", "ragd_cancelled_requests_total", "ragd_queue_requests",
                 "ragd_http_request_duration_seconds_bucket"]:
        assert name in t, name
    # build info and the process's own series (Prometheus client names), with plausible values
    import re, time
    bi = re.search(r'^ragd_build_info\{version="([^"]+)",commit="([0-9a-f]{7,40}|unknown)",build_type="[^"]*",'
                   r'cuda="(true|false)",compiler="[^"]+"\} 1$', t, re.M)
    assert bi, "ragd_build_info"
    d = server.get("/diagnostics").json()
    assert d["version"] == bi.group(1) and d["build"]["commit"] == bi.group(2)
    val = {k: float(v) for k, v in re.findall(r"^(process_[a-z_]+) ([0-9.e+]+)$", t, re.M)}
    assert val["process_resident_memory_bytes"] > 4 << 20, val  # a running server holds its model and pools
    assert val["process_virtual_memory_bytes"] >= val["process_resident_memory_bytes"]
    assert val["process_threads"] >= 3, val  # HTTP pool + scheduler + main
    assert 3 <= val["process_open_fds"] < val["process_max_fds"], val
    assert time.time() - 3600 < val["process_start_time_seconds"] <= time.time() + 1, val
    assert val["process_cpu_seconds_total"] >= 0
    promtool = shutil.which("promtool")
    assert promtool, "promtool not installed (Debian package prometheus; scripts/install-deps.sh installs it)"
    p = subprocess.run([promtool, "check", "metrics"], input=t, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_request_id_echo(server):
    r = server.post("/embed", {"texts": ["x"]}, headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = server.post("/embed", {"texts": ["x"]}, headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["X-Request-Id"].startswith("req-")


def test_one_model_all_roles_is_demo_quality():
    """The default setup (issue #6): one chat GGUF/dir serving chat, embed and rerank, labelled demo."""
    import os
    from conftest import MODELS, start
    m = os.path.join(MODELS, "smollm-tiny")
    s = start(["--chat", m, "--embed", m, "--rerank", m])
    try:
        models = s.get("/v1/models").json()["data"]
        assert len(models) == 1
        assert models[0]["tasks"] == ["embed", "rerank", "chat"] and models[0]["quality"] == "demo"
        d = s.get("/diagnostics").json()["models"]
        assert len(d) == 1 and d[0]["memory_plan"]["kv_cache"] > 0  # one engine, one plan
        e = s.post("/embed", {"texts": ["a b c"]})
        assert e.status_code == 200 and abs(norm(e.json()["embeddings"][0]) - 1) < 1e-5
        r = s.post("/rerank", {"query": "q", "documents": ["a", "b"]})
        assert r.status_code == 200 and len(r.json()["scores"]) == 2
        c = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert c.status_code == 200 and c.json()["usage"]["completion_tokens"] >= 1
    finally:
        assert s.stop() == 0


def test_completions_legacy_logprobs(server):
    c = client(server)
    r = c.completions.create(model="qwen3-tiny", prompt="abc", max_tokens=4, logprobs=2, temperature=0)
    lp = r.choices[0].logprobs
    n = r.usage.completion_tokens
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    for t, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert l <= 0 and 1 <= len(top) <= 2 and max(top.values()) >= l - 1e-6
    if r.choices[0].finish_reason == "length":
        assert "".join(lp.tokens) == r.choices[0].text
    s = list(c.completions.create(model="qwen3-tiny", prompt="abc", max_tokens=4, logprobs=2, temperature=0, stream=True))
    toks = [t for ch in s if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.tokens]
    assert toks == lp.tokens


def test_tokenize_messages_counts_the_chat_prompt(server):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
    t = server.post("/tokenize", {"messages": msgs}).json()
    c = server.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 1}).json()
    assert t["count"] == c["usage"]["prompt_tokens"] > 0
    r = server.post("/tokenize", {"messages": [{"role": "wizard", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[0].role"
    r = server.post("/tokenize", {"messages": msgs, "text": "x"})
    assert r.status_code == 400
