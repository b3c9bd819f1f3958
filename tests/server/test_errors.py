"""Every bad-input case of issue #4: a 4xx with an OpenAI error object naming the field — never a crash,
never a partial result. The server must answer the next good request normally."""
import json
import socket

import pytest
import requests

from conftest import CHAT, EMBED, RERANK, err_of, start

LONG = "word " * 3000  # far over --max-model-len 512

CASES = [
    # (path, raw body or JSON object, status, param, code)
    ("/embed", b"{not json", 400, None, "invalid_json"),
    ("/embed", b"", 400, None, "invalid_json"),
    ("/embed", b"[1,2]", 400, None, "invalid_json"),
    ("/embed", b'{"texts": ["a"], "texts": ["b"]}', 400, None, "invalid_json"),
    ("/embed", b'{"texts": ["\xff\xfe"]}', 400, None, "invalid_utf8"),
    ("/embed", b'{"texts": ["\\ud800"]}', 400, None, "invalid_json"),
    ("/embed", {}, 400, "texts", "missing_field"),
    ("/embed", {"texts": "a string"}, 400, "texts", "invalid_type"),
    ("/embed", {"texts": []}, 400, "texts", "empty_input"),
    ("/embed", {"texts": ["ok", 5]}, 400, "texts", "invalid_type"),
    ("/embed", {"texts": ["ok", ""]}, 400, "texts", "empty_input"),
    ("/embed", {"texts": ["a"], "dimensions": 0}, 400, "dimensions", "out_of_range"),
    ("/embed", {"texts": ["a"], "dimensions": 100000}, 400, "dimensions", "out_of_range"),
    ("/embed", {"texts": ["a"], "dimensions": "8"}, 400, "dimensions", "invalid_type"),
    ("/embed", {"texts": ["a"], "model": "gpt-4"}, 404, "model", "model_not_found"),
    ("/embed", {"texts": ["a"], "model": 3}, 400, "model", "invalid_type"),
    ("/embed", {"texts": ["a"], "txts": ["typo"]}, 400, "txts", "unknown_field"),
    ("/embed", {"texts": ["a", LONG]}, 400, "texts", "context_length_exceeded"),
    ("/embed", {"texts": ["a"] * 5000}, 400, "texts", "too_many_inputs"),
    ("/v1/embeddings", {}, 400, "input", "missing_field"),
    ("/v1/embeddings", {"input": []}, 400, "input", "empty_input"),
    ("/v1/embeddings", {"input": ""}, 400, "input", "empty_input"),
    ("/v1/embeddings", {"input": {"a": 1}}, 400, "input", "invalid_type"),
    ("/v1/embeddings", {"input": ["a", ["b"]]}, 400, "input", "invalid_type"),
    ("/v1/embeddings", {"input": [1, -2]}, 400, "input", "invalid_token"),
    ("/v1/embeddings", {"input": [1, 99999999]}, 400, "input", "invalid_token"),
    ("/v1/embeddings", {"input": [[1], []]}, 400, "input", "empty_input"),
    ("/v1/embeddings", {"input": [1] * 600}, 400, "input", "context_length_exceeded"),
    ("/v1/embeddings", {"input": "a", "encoding_format": "int8"}, 400, "encoding_format", "invalid_value"),
    ("/v1/embeddings", {"input": "a", "model": "text-embedding-3-small"}, 404, "model", "model_not_found"),
    ("/rerank", {"documents": ["a"]}, 400, "query", "missing_field"),
    ("/rerank", {"query": "q"}, 400, "documents", "missing_field"),
    ("/rerank", {"query": "q", "documents": []}, 400, "documents", "empty_input"),
    ("/rerank", {"query": "", "documents": ["a"]}, 400, "query", "empty_input"),
    ("/rerank", {"query": 1, "documents": ["a"]}, 400, "query", "invalid_type"),
    ("/rerank", {"query": "q", "documents": ["a", None]}, 400, "documents", "invalid_type"),
    ("/rerank", {"query": "q", "documents": ["a", LONG]}, 400, "documents", "context_length_exceeded"),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": -1}, 400, "top_n", "out_of_range"),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": 1.5}, 400, "top_n", "invalid_type"),
    ("/v1/rerank", {"query": "q", "documents": [{"txt": "a"}]}, 400, "documents", "invalid_type"),
    ("/v1/rerank", {"query": "q", "documents": ["a"], "return_documents": "yes"}, 400, "return_documents", "invalid_type"),
    ("/v1/chat/completions", {}, 400, "messages", "missing_field"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages", "empty_input"),
    ("/v1/chat/completions", {"messages": "hi"}, 400, "messages", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, 400, "messages[0].role", "missing_field"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user"}]}, 400, "messages[0].content", "missing_field"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}, 400, "max_tokens", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**12}, 400, "max_tokens", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 510}, 400, "max_tokens", "context_length_exceeded"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "temperature": -1}, 400, "temperature", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, 400, "temperature", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "top_p": 0}, 400, "top_p", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 0}, 400, "n", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "n": 1000}, 400, "n", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stop": 5}, 400, "stop", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stop": [""]}, 400, "stop", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 3}, 400, "top_logprobs", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "logprobs": True, "top_logprobs": 50}, 400, "top_logprobs", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, 400, "stream", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}}, 400, "stream_options", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONG}]}, 400, "messages", "context_length_exceeded"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o"}, 404, "model", "model_not_found"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "presence_penalty": 2.5}, 400, "presence_penalty", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "frequency_penalty": "x"}, 400, "frequency_penalty", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "repetition_penalty": 0}, 400, "repetition_penalty", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"99999999": 10}}, 400, "logit_bias", "invalid_token"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"x": 10}}, 400, "logit_bias", "invalid_token"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"5": 101}}, 400, "logit_bias", "out_of_range"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "logit_bias": [5]}, 400, "logit_bias", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, 400, "tools", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": {"a": 1}}, 400, "tools", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}, 400, "tool_choice", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}, 400, "tool_choice", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required", "response_format": {"type": "json_object"}}, 400, "tool_choice", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": "a"}}}}}], "tool_choice": "required"}, 400, "tools[0].function.parameters", "unsupported"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "sometimes"}, 400, "tool_choice", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "parallel_tool_calls": "yes"}, 400, "parallel_tool_calls", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": []}, 400, "chat_template_kwargs", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": "x"}]}, 400, "messages[1].tool_calls", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi", "tool_calls": []}]}, 400, "messages[0].tool_calls", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": None}]}, 400, "messages[0].content", "missing_field"),
    ("/v1/chat/completions", {"messages": [{"role": "tool"}]}, 400, "messages[0].content", "missing_field"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "grammar"}}, 400, "response_format.type", "unsupported"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": "json"}, 400, "response_format", "invalid_type"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}}, 400, "response_format.json_schema", "missing_field"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, 400, "response_format.json_schema.schema", "missing_field"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "[0-9]+"}}}}}}, 400, "response_format.json_schema.schema", "unsupported"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}, "ignore_eos": True}, 400, "ignore_eos", "invalid_value"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}, "min_tokens": 2}, 400, "min_tokens", "invalid_value"),
    ("/v1/completions", {"prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"schema": {"oneOf": [{"type": "string"}]}}}}, 400, "response_format.json_schema.schema", "unsupported"),
    ("/v1/completions", {"prompt": "x", "echo": True, "logprobs": 2}, 400, "echo", "unsupported"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "echo": True}, 400, "echo", "unsupported"),
    ("/v1/completions", {"prompt": ["a", "b"]}, 400, "prompt", "invalid_type"),
    ("/v1/completions", {"prompt": "x", "best_of": 3}, 400, "best_of", "unsupported"),
    ("/v1/completions", {}, 400, "prompt", "missing_field"),
    ("/v1/completions", {"prompt": ""}, 400, "prompt", "empty_input"),
    ("/v1/completions", {"prompt": {"x": 1}}, 400, "prompt", "invalid_type"),
    ("/tokenize", {}, 400, "text", "missing_field"),
    ("/tokenize", {"text": 5}, 400, "text", "invalid_type"),
    ("/tokenize", {"text": "a", "model": "nope"}, 404, "model", "model_not_found"),
    ("/detokenize", {"tokens": [1, "a"]}, 400, "tokens", "invalid_type"),
    ("/detokenize", {"tokens": [123456789]}, 400, "tokens", "invalid_token"),
    ("/detokenize", {}, 400, "tokens", "missing_field"),
]


@pytest.mark.parametrize("path,body,status,param,code", CASES, ids=["%s-%d" % (c[0], i) for i, c in enumerate(CASES)])
def test_bad_input(server, path, body, status, param, code):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = server.post(path, raw=raw)
    assert r.status_code == status, r.text
    e = err_of(r)
    assert e["param"] == param, e
    assert e["code"] == code, e
    if param:
        assert param.split("[")[0].split(".")[0] in e["message"], e


def test_too_long_names_index_and_counts(server):
    e = err_of(server.post("/embed", {"texts": ["a", "b", LONG]}))
    assert "texts[2]" in e["message"] and "512" in e["message"]
    # truncate: true cuts it instead, and the cut vector is the vector of the kept prefix
    ok = server.post("/embed", {"texts": ["a", LONG], "truncate": True})
    assert ok.status_code == 200 and len(ok.json()["embeddings"]) == 2
    ok = server.post("/rerank", {"query": "q", "documents": [LONG], "truncate": True})
    assert ok.status_code == 200 and 0 <= ok.json()["scores"][0] <= 1


def test_bad_timeout_header(server):
    for v in ["0", "-5", "abc", "99999999999"]:
        r = server.post("/embed", {"texts": ["a"]}, headers={"X-Request-Timeout-Ms": v})
        assert r.status_code == 400, (v, r.text)
        assert err_of(r)["param"] == "X-Request-Timeout-Ms"
    assert server.post("/embed", {"texts": ["a"]}, headers={"X-Request-Timeout-Ms": "5000"}).status_code == 200


def test_unknown_route_and_method(server):
    r = server.get("/v1/nothing")
    assert r.status_code == 404 and err_of(r)["code"] == "not_found"
    r = server.get("/embed")
    assert r.status_code == 405 and err_of(r)["code"] == "method_not_allowed"


def test_oversized_body():
    s = start(["--embed", EMBED, "--max-body-bytes", "4096"])
    try:
        big = json.dumps({"texts": ["x" * 10000]})
        r = s.post("/embed", raw=big)
        assert r.status_code == 413 and err_of(r)["code"] == "body_too_large"
        # chunked upload (no Content-Length): refused while receiving
        def gen():
            for _ in range(10):
                yield b"[" + b" " * 1000
        r = requests.post(s.url + "/embed", data=gen(), headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 413
        assert s.post("/embed", {"texts": ["fine"]}).status_code == 200
        # a chunked upload under the cap is fine
        r = requests.post(s.url + "/embed", data=iter([b'{"texts": ', b'["chunked"]}']),
                          headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 200 and len(r.json()["embeddings"]) == 1
    finally:
        assert s.stop() == 0


def test_auth(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    s = start(["--embed", EMBED, "--api-key-file", str(key)])
    try:
        assert s.get("/health").status_code == 200          # liveness and readiness stay open
        assert s.get("/health/ready").status_code == 200
        r = s.post("/embed", {"texts": ["a"]})
        assert r.status_code == 401 and err_of(r)["type"] == "authentication_error"
        assert s.post("/embed", {"texts": ["a"]}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert s.post("/embed", {"texts": ["a"]}, headers={"Authorization": "Bearer s3cre"}).status_code == 401
        assert s.get("/metrics").status_code == 401
        assert s.post("/embed", {"texts": ["a"]}, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        d = s.get("/diagnostics", headers={"Authorization": "Bearer s3cret"}).json()
        assert "s3cret" not in json.dumps(d)
    finally:
        assert s.stop() == 0


def test_env_options_and_cli_errors():
    s = start(["--embed", EMBED], env={"RAGD_MAX_BATCH_TOKENS": "1000", "RAGD_MAX_QUEUE": "7"})
    try:
        o = s.get("/diagnostics").json()["options"]
        assert o["max-batch-tokens"] == 1000 and o["max-queue"] == 7
    finally:
        assert s.stop() == 0
    import subprocess
    from conftest import BIN
    for args, needle in [(["--max-seqs", "0"], "--max-seqs"), (["--port", "x"], "--port"), (["--bogus"], "--bogus"),
                         (["--device", "tpu"], "--device"), ([], "no model")]:
        p = subprocess.run([BIN, "serve"] + args, capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and needle in p.stderr, (args, p.stderr)
    p = subprocess.run([BIN, "serve", "--embed", "/nonexistent/model"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "/nonexistent/model" in p.stderr
    p = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "RAGD_MAX_BATCH_TOKENS" in p.stdout
    p = subprocess.run([BIN, "serve", "--embed", EMBED, "--device", "cuda"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "--device cuda" in p.stderr  # never falls back to the CPU


def test_server_still_fine_after_garbage(server):
    # raw garbage on a socket, then a good request
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as c:
        c.sendall(b"\x00\x01\x02 GARBAGE\r\n\r\n")
        try:
            c.recv(1000)
        except OSError:
            pass
    assert server.post("/embed", {"texts": ["still alive"]}).status_code == 200
