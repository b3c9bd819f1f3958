"""HTTPS (issue 15): `--tls-cert FILE --tls-key FILE` serve TLS on the port instead of plain HTTP (OpenSSL,
src/http/tls.c: TLS ends in front of the door, so the door's head checks and JSON errors hold over TLS too).
A self-signed certificate made here with the openssl command; clients: Python's ssl module, requests and the
official openai client, each verifying that certificate. Replies are compared with a plain-HTTP server on the
same models: the same bytes of embeddings and the same greedy tokens."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import time

import httpx
import openai
import pytest
import requests

from conftest import BIN, CHAT, EMBED, start

ARGS = ["--embed", EMBED, "--chat", CHAT, "--max-model-len", "256", "--max-seqs", "4"]


def make_cert(d, name):
    cert, key = os.path.join(d, name + "-cert.pem"), os.path.join(d, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    return make_cert(d, "a"), make_cert(d, "b")


@pytest.fixture(scope="module")
def pair(certs):
    (cert, key), _ = certs
    tls = start(ARGS + ["--tls-cert", cert, "--tls-key", key, "--header-timeout-ms", "600"])
    plain = start(ARGS)
    yield tls, plain, cert
    assert tls.stop() == 0
    assert plain.stop() == 0


def tls_socket(port, cert):
    ctx = ssl.create_default_context(cafile=cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_reply(s):
    """one HTTP/1.1 reply with a Content-Length: (status line, body bytes)"""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")][0])
    while len(body) < n:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return head.split(b"\r\n")[0].decode(), body[:n]


def test_ssl_module_keep_alive(pair):
    tls, _, cert = pair
    with tls_socket(tls.port, cert) as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3"), s.version()
        assert s.getpeercert()["subject"] == ((("commonName", "127.0.0.1"),),)
        for _ in range(3):  # three requests on one TLS connection
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, body = read_reply(s)
            assert status == "HTTP/1.1 200 OK" and body == b'{"status":"ok"}', (status, body)
    # a malformed first head is answered by the door in JSON, through TLS, and the connection closed
    with tls_socket(tls.port, cert) as s:
        s.sendall(b"NOT HTTP\r\n\r\n")
        status, body = read_reply(s)
        assert status.startswith("HTTP/1.1 400") and b'"error"' in body, (status, body)
        assert s.recv(100) == b""
    # a body over --max-body-bytes refused at its head (413) while the client is still sending: the reply
    # arrives whole (the relay drains the client's input before closing, as the door does for plain HTTP)
    with tls_socket(tls.port, cert) as s:
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 999999999\r\n\r\n" + b"[" * 65536)
        status, body = read_reply(s)
        assert status.startswith("HTTP/1.1 413") and b"max-body-bytes" in body, (status, body)


def test_requests_same_embeddings_as_http(pair):
    tls, plain, cert = pair
    body = {"input": ["text number %d, long enough to make the reply large" % i for i in range(64)]}
    a = requests.post(tls.url + "/v1/embeddings", json=body, verify=cert, timeout=30)
    b = requests.post(plain.url + "/v1/embeddings", json=body, timeout=30)
    assert a.status_code == 200 and b.status_code == 200, a.text
    assert len(a.content) > 32768  # more than two TLS records each way
    assert [d["embedding"] for d in a.json()["data"]] == [d["embedding"] for d in b.json()["data"]]
    assert len(a.json()["data"]) == 64
    opts = requests.get(tls.url + "/diagnostics", verify=cert, timeout=10).json()["options"]
    assert opts["tls-cert"] == cert and opts["tls-key"].endswith("a-key.pem")


def test_openai_client_chat_and_stream(pair):
    tls, plain, cert = pair
    msgs = [{"role": "user", "content": "Say something"}]
    with httpx.Client(verify=ssl.create_default_context(cafile=cert)) as hc:
        c = openai.OpenAI(base_url=tls.url + "/v1", api_key="none", http_client=hc)
        r = c.chat.completions.create(model="qwen3-tiny", messages=msgs, max_tokens=12, temperature=0)
        parts = [ch.choices[0].delta.content or "" for ch in
                 c.chat.completions.create(model="qwen3-tiny", messages=msgs, max_tokens=12, temperature=0, stream=True)
                 if ch.choices]
        e = c.embeddings.create(model="qwen3-embed-tiny", input="hello", encoding_format="float")
    p = plain.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0}).json()
    assert r.choices[0].message.content == p["choices"][0]["message"]["content"]
    assert r.usage.completion_tokens == p["usage"]["completion_tokens"] > 0
    assert "".join(parts) == r.choices[0].message.content
    pe = plain.post("/v1/embeddings", {"input": "hello"}).json()["data"][0]["embedding"]
    assert e.data[0].embedding == pe


def test_refuses_what_is_not_tls(pair, certs):
    tls, _, cert = pair
    _, (other, _) = certs
    with pytest.raises(requests.exceptions.ConnectionError):  # plain HTTP on the HTTPS port: closed
        requests.get("http://127.0.0.1:%d/health" % tls.port, timeout=10)
    with pytest.raises(requests.exceptions.SSLError):  # a client trusting another certificate
        requests.get(tls.url + "/health", verify=other, timeout=10)
    # no handshake within --header-timeout-ms (600 ms): closed
    s = socket.create_connection(("127.0.0.1", tls.port), timeout=10)
    t0 = time.time()
    assert s.recv(10) == b""
    assert 0.4 < time.time() - t0 < 5, time.time() - t0
    s.close()
    # the server still serves
    assert requests.get(tls.url + "/health", verify=cert, timeout=10).status_code == 200


def refused(args, rc):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    r = subprocess.run([BIN, "serve", "--device", "cpu", "--port", "0", "--embed", EMBED] + args,
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == rc, (args, r.returncode, r.stderr)
    assert "listening" not in r.stdout, r.stdout
    return r.stderr


def test_bad_files_refuse_to_start(certs, tmp_path):
    (cert, key), (cert_b, key_b) = certs
    assert "needs both --tls-cert and --tls-key (only --tls-cert is given)" in refused(["--tls-cert", cert], 2)
    assert "only --tls-key is given" in refused(["--tls-key", key], 2)
    missing = str(tmp_path / "missing.pem")
    err = refused(["--tls-cert", missing, "--tls-key", key], 1)
    assert "--tls-cert %s: cannot read it: No such file or directory" % missing in err, err
    err = refused(["--tls-cert", key, "--tls-key", key], 1)
    assert "--tls-cert %s: not a PEM certificate" % key in err and "no start line" in err, err
    err = refused(["--tls-cert", cert, "--tls-key", cert], 1)
    assert "--tls-key %s: not a PEM private key" % cert in err, err
    err = refused(["--tls-cert", cert, "--tls-key", key_b], 1)
    assert "--tls-key %s does not belong to the certificate of --tls-cert %s" % (key_b, cert) in err, err


def cancelled(s):
    for line in s.get("/metrics").text.splitlines():
        if line.startswith('ragd_cancelled_requests_total{reason="disconnect"'):
            return float(line.split()[-1])
    return 0.0


def test_disconnect_cancels(pair):
    # a TLS client gone mid-stream cancels its request, as over HTTP (the relay closes the plaintext end)
    tls, _, cert = pair
    before = cancelled(tls)
    body = json.dumps({"messages": [{"role": "user", "content": "go"}], "max_tokens": 240, "n": 4,
                       "temperature": 1.0, "stream": True}).encode()
    c = http.client.HTTPSConnection("127.0.0.1", tls.port, timeout=10, context=ssl.create_default_context(cafile=cert))
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200
    assert resp.readline().startswith(b"data: ")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    deadline = time.time() + 10
    while time.time() < deadline and cancelled(tls) < before + 1:
        time.sleep(0.02)
    assert cancelled(tls) == before + 1
    r = tls.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0
