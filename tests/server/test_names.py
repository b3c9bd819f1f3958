"""Served names and aliases (issue 19, as vLLM's --served-model-name): `--served-name NAME,ALIAS,...` — requests
may name the chat model by any of them (OpenAI routes, /v1/models/{id}, KServe), responses and /v1/models give
the first; an unknown name stays a 404; an empty or repeated name refuses to start."""
import os
import subprocess

from conftest import BIN, CHAT, EMBED, err_of, start


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
