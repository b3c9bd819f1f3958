"""Served names and aliases (issue 19, as vLLM's --served-model-name): `--served-name NAME,ALIAS,...` for the chat
model, `--embed-served-name` and `--rerank-served-name` for the others (also RAGD_*_SERVED_NAME and config-file
keys) — requests may name a model by any of its names (every route's "model", /v1/models/{id}, KServe), responses
and /v1/models give the first; an unknown name is a 404 listing every model's names; an empty or repeated name,
or one name for two different models, refuses to start."""
import os
import shutil
import subprocess
import tempfile

from conftest import BIN, CHAT, EMBED, RERANK, err_of, start


def test_aliases():
    s = start(["--chat", CHAT, "--embed", EMBED, "--max-model-len", "256",
               "--served-name", "qwen-chat, org/alias-b ,alias-c"])
    try:
        for name in ("qwen-chat", "org/alias-b", "alias-c"):
            r = s.post("/v1/chat/completions", {"model": name, "messages": [{"role": "user", "content": "hi"}],
                                                "max_tokens": 3, "temperature": 0})
            assert r.status_code == 200, (name, r.text)
            assert r.json()["model"] == "qwen-chat"
            m = s.get("/v1/models/" + name)
            assert m.status_code == 200 and m.json()["id"] == "qwen-chat"
            assert s.get("/v2/models/" + name).status_code == 200
        models = s.get("/v1/models").json()["data"]
        chat = [m for m in models if m["id"] == "qwen-chat"]
        assert len(chat) == 1 and chat[0]["aliases"] == ["org/alias-b", "alias-c"]
        assert not any(m["id"] in ("org/alias-b", "alias-c") for m in models)  # one entry per model
        r = s.post("/v1/chat/completions", {"model": "alias-d", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 404 and err_of(r)["code"] == "model_not_found"
        assert "qwen-chat" in err_of(r)["message"]
        # the alias names the chat model only: the embedding model keeps its own name
        r = s.post("/v1/embeddings", {"model": "alias-c", "input": "x"})
        assert r.status_code == 404
    finally:
        assert s.stop() == 0


def test_bad_names_refuse_to_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    for spec, needle in (("a,,b", "an empty name"), ("a,b,a", "'a' is given twice"), (" ", "an empty name")):
        r = subprocess.run([BIN, "serve", "--chat", CHAT, "--device", "cpu", "--port", "0", "--served-name", spec],
                           capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 2, (spec, r.stderr)
        assert needle in r.stderr, (spec, r.stderr)


def test_names_for_every_role():
    # chat by flag, reranker by environment variable, embedding model by config-file key
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write('embed-served-name = "emb, org/emb-alias"\n')
        cfg = f.name
    try:
        s = start(["--config", cfg, "--embed", EMBED, "--rerank", RERANK, "--chat", CHAT, "--max-model-len", "256",
                   "--served-name", "ch"], env={"RAGD_RERANK_SERVED_NAME": "rr,rr-b"})
    finally:
        os.unlink(cfg)
    try:
        opts = s.get("/diagnostics").json()["options"]
        assert (opts["served-name"], opts["embed-served-name"], opts["rerank-served-name"]) == \
            ("ch", "emb, org/emb-alias", "rr,rr-b")
        models = {m["id"]: m for m in s.get("/v1/models").json()["data"]}
        assert set(models) == {"emb", "rr", "ch"}, models
        assert models["emb"]["aliases"] == ["org/emb-alias"] and models["rr"]["aliases"] == ["rr-b"]
        assert "aliases" not in models["ch"]
        assert models["emb"]["tasks"] == ["embed"] and models["rr"]["tasks"] == ["rerank"]
        for name in ("emb", "org/emb-alias"):
            r = s.post("/v1/embeddings", {"model": name, "input": "hello"})
            assert r.status_code == 200 and r.json()["model"] == "emb", (name, r.text)
            r = s.post("/embed", {"model": name, "texts": ["hello"]})
            assert r.status_code == 200 and r.json()["model"] == "emb", (name, r.text)
            assert s.post("/v2/embed", {"model": name, "texts": ["hello"], "input_type": "search_query"}).status_code == 200
            assert s.get("/v1/models/" + name).json()["id"] == "emb"
            assert s.get("/v2/models/" + name).json()["name"] == "emb"
            assert s.post("/tokenize", {"model": name, "text": "hello"}).json()["model"] == "emb"
        docs = ["a cat", "a dog"]
        for name in ("rr", "rr-b"):
            r = s.post("/v1/rerank", {"model": name, "query": "cat", "documents": docs})
            assert r.status_code == 200 and r.json()["model"] == "rr", (name, r.text)
            r = s.post("/v1/ranking", {"model": name, "query": {"text": "cat"}, "passages": [{"text": d} for d in docs]})
            assert r.status_code == 200 and len(r.json()["rankings"]) == 2, (name, r.text)
            r = s.post("/score", {"model": name, "text_1": "cat", "text_2": docs})
            assert r.status_code == 200 and r.json()["model"] == "rr", (name, r.text)
            r = s.post("/v2/models/%s/infer" % name, {"inputs": [
                {"name": "query", "datatype": "BYTES", "shape": [1], "data": ["cat"]},
                {"name": "documents", "datatype": "BYTES", "shape": [2], "data": docs}]})
            assert r.status_code == 200 and r.json()["model_name"] == "rr", (name, r.text)
        assert s.get("/info").json()["model_id"] == "emb"
        assert 'model="emb"' in s.get("/metrics").text and 'model="rr"' in s.get("/metrics").text
        # a known name that serves another role: 404 naming that role's model
        e = err_of(s.post("/v1/embeddings", {"model": "rr-b", "input": "x"}))
        assert "does not serve embed" in e["message"] and "'emb' (aliases 'org/emb-alias')" in e["message"], e
        e = err_of(s.post("/v1/chat/completions", {"model": "emb", "messages": [{"role": "user", "content": "hi"}]}))
        assert "does not serve chat" in e["message"] and "model is 'ch'" in e["message"], e
        # an unknown name: 404 listing every model and its aliases, on every route
        listing = "'emb' (aliases 'org/emb-alias'), 'rr' (aliases 'rr-b'), 'ch'"
        for r in (s.post("/v1/embeddings", {"model": "nope", "input": "x"}),
                  s.post("/v1/rerank", {"model": "nope", "query": "q", "documents": ["d"]}),
                  s.post("/v2/rerank", {"model": "nope", "query": "q", "documents": ["d"]}),
                  s.post("/tokenize", {"model": "nope", "text": "x"}),
                  s.get("/v1/models/nope")):
            assert r.status_code == 404, r.text
            assert "'nope' does not exist" in r.text and listing in r.text, r.text
        r = s.get("/v2/models/nope")
        assert r.status_code == 404 and listing in r.json()["error"], r.text
        r = s.post("/v2/models/nope/infer", {"inputs": []})
        assert r.status_code == 404 and listing in r.json()["error"], r.text
    finally:
        assert s.stop() == 0


def test_names_of_a_shared_model():
    # one model serving embed and chat answers to the names of both roles: the chat model's first
    s = start(["--embed", CHAT, "--chat", CHAT, "--max-model-len", "128", "--served-name", "c1",
               "--embed-served-name", "e1,c1,e2"])
    try:
        models = s.get("/v1/models").json()["data"]
        assert [(m["id"], m["aliases"], m["tasks"]) for m in models] == [("c1", ["e1", "e2"], ["embed", "chat"])], models
        r = s.post("/v1/embeddings", {"model": "e2", "input": "hello"})
        assert r.status_code == 200 and r.json()["model"] == "c1", r.text
    finally:
        assert s.stop() == 0


def refused(args, rc=2):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    r = subprocess.run([BIN, "serve", "--device", "cpu", "--port", "0"] + args, capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == rc, (args, r.returncode, r.stderr)
    return r.stderr


def test_one_name_two_models_refuses_to_start(tmp_path):
    err = refused(["--embed", EMBED, "--chat", CHAT, "--embed-served-name", "m", "--served-name", "m"])
    assert "two different models are both named 'm': --embed %s and --chat %s" % (EMBED, CHAT) in err, err
    assert "--embed-served-name or --served-name" in err, err
    # an alias of one is the name of the other
    err = refused(["--rerank", RERANK, "--chat", CHAT, "--rerank-served-name", "r,qwen3-tiny"])
    assert "both named 'qwen3-tiny': --rerank %s and --chat %s" % (RERANK, CHAT) in err, err
    # two folders with the same file name and no served names
    other = tmp_path / "x" / "qwen3-tiny"
    shutil.copytree(EMBED, other)
    err = refused(["--embed", str(other), "--chat", CHAT])
    assert "both named 'qwen3-tiny'" in err, err


def test_bad_role_names_refuse_to_start():
    for flag in ("--embed-served-name", "--rerank-served-name"):
        for spec, needle in (("a,,b", "an empty name"), ("a,b,a", "'a' is given twice")):
            err = refused(["--embed", EMBED, "--rerank", RERANK, flag, spec])
            assert "%s '%s': %s" % (flag, spec, needle) in err, (flag, spec, err)
