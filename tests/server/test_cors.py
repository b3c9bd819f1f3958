"""CORS (--cors-origins) and OPTIONS: off by default (no Access-Control-* headers, OPTIONS answers 204 with
Allow); with a list, allowed origins are echoed on replies and streams, preflights get the methods and
headers, other origins get nothing; preflights need no API key; 405 carries Allow."""
import requests

from conftest import EMBED, CHAT, start, err_of

OK = "https://app.example"


def test_cors_off_by_default(server):
    r = server.post("/embed", {"texts": ["x"]}, headers={"Origin": OK})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    r = requests.options(server.url + "/v1/embeddings", headers={"Origin": OK, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["Allow"] == "POST, OPTIONS" and r.content == b""
    assert "Access-Control-Allow-Origin" not in r.headers and "Content-Type" not in r.headers
    r = requests.options(server.url + "/v1/models/")  # a prefix route: GET only
    assert r.status_code == 404 or r.headers["Allow"] == "GET, OPTIONS"
    r = requests.options(server.url + "/v1/models/qwen3-tiny")
    assert r.status_code == 204 and r.headers["Allow"] == "GET, OPTIONS"
    r = requests.options(server.url + "/v2/models/x")  # GET and POST share the prefix
    assert r.status_code == 204 and r.headers["Allow"] == "GET, POST, OPTIONS"
    r = requests.put(server.url + "/rerank", data="{}")
    assert r.status_code == 405 and r.headers["Allow"] == "POST, OPTIONS"
    assert "allowed: POST, OPTIONS" in err_of(r)["message"]
    assert requests.options(server.url + "/nope").status_code == 404


def test_cors_origins():
    s = start(["--embed", EMBED, "--chat", CHAT, "--max-model-len", "256", "--api-key", "k3y",
               "--cors-origins", OK + ", http://localhost:3000"])
    try:
        auth = {"Authorization": "Bearer k3y"}
        # preflight: no key needed, the requested headers allowed back, the path's methods
        r = requests.options(s.url + "/v1/chat/completions",
                             headers={"Origin": OK, "Access-Control-Request-Method": "POST",
                                      "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})
        assert r.status_code == 204, r.text
        h = r.headers
        assert h["Access-Control-Allow-Origin"] == OK and h["Vary"] == "Origin"
        assert h["Access-Control-Allow-Methods"] == "POST, OPTIONS"
        assert h["Access-Control-Allow-Headers"] == "authorization, content-type, x-stainless-os"
        assert h["Access-Control-Max-Age"] == "600"
        # a header list with odd bytes is not echoed: the default list instead
        r = requests.options(s.url + "/embed", headers={"Origin": OK, "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "x-a;evil"})
        assert r.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Request-Id"
        # an origin not in the list: no CORS headers at all (the browser then blocks the page)
        r = requests.options(s.url + "/embed", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers
        r = s.post("/embed", {"texts": ["x"]}, headers=dict(auth, Origin="https://app.example.evil"))
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
        # replies, errors and streams of an allowed origin carry it
        r = s.post("/embed", {"texts": ["x"]}, headers=dict(auth, Origin="http://localhost:3000"))
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert "X-Request-Id" in r.headers["Access-Control-Expose-Headers"]
        # the door's own refusals carry it too (no key: 401 before routing), so the page can read them
        r = s.post("/embed", {"texts": ["x"]}, headers={"Origin": OK})
        assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == OK, r.headers
        r = s.post("/embed", {"texts": ["x"]}, headers={"Origin": "https://evil.example"})
        assert r.status_code == 401 and "Access-Control-Allow-Origin" not in r.headers
        r = s.post("/embed", {"texts": [""]}, headers=dict(auth, Origin=OK))  # an error reply carries it too
        assert r.status_code == 400 and r.headers["Access-Control-Allow-Origin"] == OK
        r = s.post("/v1/completions", {"prompt": "hi", "max_tokens": 3, "stream": True},
                   headers=dict(auth, Origin=OK))
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == OK
        assert r.text.rstrip().endswith("data: [DONE]")
    finally:
        assert s.stop() == 0
