"""Lifecycle and failure behaviour: deadlines (504), client disconnects cancel work, overload turns into
429 + Retry-After with no 5xx and no memory growth, engine failures stay per request, a device error
marks the model not ready, NaN never reaches a client, SIGTERM drains in-flight work and exits 0."""
import http.client
import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import CHAT, EMBED, RERANK, err_of, start


def metric(s, name):
    """The value of the series `name` ('x' or 'x{k="v",...}'): the first series of that name carrying those
    labels (others, such as model="...", may follow)."""
    t = s.get("/metrics").text
    base, _, labels = name.partition("{")
    want = labels.rstrip("}")
    if want:  # the labels asked for first, maybe others after them
        pat = r"^%s\{%s(?:,[^}]*)?\} (\S+)$" % (re.escape(base), re.escape(want))
    else:  # no labels, or any
        pat = r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(base)
    m = re.search(pat, t, re.M)
    return float(m.group(1)) if m else 0.0


def wait_running(s, task, n, timeout=10):
    """Until n tasks of this kind have left the queue (a forward pass holds the first one)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = s.get("/metrics").text
        m = re.search(r'^ragd_queue_time_seconds_count\{task="%s"(?:,model="[^"]*")?\} (\S+)$' % task, t, re.M)
        if m and float(m.group(1)) >= n:
            return
        time.sleep(0.01)
    raise AssertionError("no %s task left the queue" % task)


def test_deadline_while_queued():
    # every embed forward pass takes 300 ms longer: a second request waits in the queue past its deadline
    s = start(["--embed", EMBED], env={"RAGD_FAULT": "embed:slow:600"})
    try:
        with ThreadPoolExecutor(2) as ex:
            first = ex.submit(s.post, "/embed", {"texts": ["first"]})
            wait_running(s, "embed", 1)
            t0 = time.time()
            r = s.post("/embed", {"texts": ["late"]}, headers={"X-Request-Timeout-Ms": "50"})
            assert first.result().status_code == 200
        assert r.status_code == 504, r.text
        assert err_of(r)["code"] == "timeout" and "deadline" in err_of(r)["message"]
        assert time.time() - t0 < 1.5
        assert metric(s, 'ragd_cancelled_requests_total{reason="timeout"}') == 1
        assert s.post("/embed", {"texts": ["fine"]}).status_code == 200  # default deadline: 60 s
    finally:
        assert s.stop() == 0


def test_deadline_while_generating():
    s = start(["--chat", CHAT, "--max-model-len", "512"], env={"RAGD_FAULT": "chat:slow:20"})
    try:
        t0 = time.time()
        r = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 400,
                                            "temperature": 0}, headers={"X-Request-Timeout-Ms": "300"})
        assert r.status_code == 504 and err_of(r)["code"] == "timeout", r.text
        assert time.time() - t0 < 2
        assert metric(s, "ragd_running_sequences") == 0
        assert metric(s, "ragd_generation_tokens_total") < 100
    finally:
        assert s.stop() == 0


def test_disconnect_while_queued_cancels():
    s = start(["--embed", EMBED], env={"RAGD_FAULT": "embed:slow:600"})
    try:
        with ThreadPoolExecutor(2) as ex:
            first = ex.submit(s.post, "/embed", {"texts": ["first"]})
            wait_running(s, "embed", 1)
            try:
                requests.post(s.url + "/embed", json={"texts": ["bye"]}, timeout=0.1)
            except requests.exceptions.ReadTimeout:
                pass
            assert first.result().status_code == 200
        deadline = time.time() + 5
        while time.time() < deadline and metric(s, 'ragd_cancelled_requests_total{reason="disconnect"}') < 1:
            time.sleep(0.05)
        assert metric(s, 'ragd_cancelled_requests_total{reason="disconnect"}') == 1
        toks_first = s.post("/tokenize", {"text": "first"}).json()["count"]
        assert metric(s, 'ragd_prompt_tokens_total{task="embed"}') == toks_first + 0  # "bye" never ran
    finally:
        assert s.stop() == 0


def test_disconnect_while_generating_cancels():
    s = start(["--chat", CHAT, "--max-model-len", "512", "--max-seqs", "16"])
    try:
        body = json.dumps({"messages": [{"role": "user", "content": "go"}], "max_tokens": 480, "n": 16,
                           "temperature": 1.0, "stream": True}).encode()
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = c.getresponse()
        assert resp.status == 200
        first = resp.readline()
        assert first.startswith(b"data: ")
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        deadline = time.time() + 10
        while time.time() < deadline and metric(s, 'ragd_cancelled_requests_total{reason="disconnect"}') < 1:
            time.sleep(0.02)
        assert metric(s, 'ragd_cancelled_requests_total{reason="disconnect"}') == 1
        assert metric(s, "ragd_running_sequences") == 0  # every KV slot released
        assert metric(s, "ragd_generation_tokens_total") < 16 * 480
        ok = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert ok.status_code == 200
    finally:
        assert s.stop() == 0


def test_overload_429_no_5xx_no_growth():
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4:detect_leaks=1"}
    s = start(["--embed", EMBED, "--chat", CHAT, "--max-queue", "3", "--max-seqs", "2", "--max-model-len", "256",
               "--http-threads", "4"], env=env)
    try:
        asan = s.get("/diagnostics").json()["build"]["asan"]
        chat = {"messages": [{"role": "user", "content": "load"}], "max_tokens": 40, "temperature": 0.7}
        emb = {"texts": ["load test text number %d" % i for i in range(8)]}

        def one(i):
            r = s.post("/v1/chat/completions", chat) if i % 2 else s.post("/embed", emb)
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert err_of(r)["code"] == "queue_full"
            return r.status_code

        rss = []
        counts = {}
        rounds = 6
        with ThreadPoolExecutor(24) as ex:
            for k in range(rounds):
                for st in ex.map(one, range(96)):
                    counts[st] = counts.get(st, 0) + 1
                rss.append(s.rss_kib())
        assert set(counts) <= {200, 429}, counts          # overload is 429, never 5xx
        assert counts.get(429, 0) > 0 and counts.get(200, 0) > 0, counts
        assert metric(s, 'ragd_rejected_requests_total{reason="queue_full"}') == counts[429]
        assert s.get("/health/ready").status_code == 200
        # memory: after warm-up rounds the RSS must not keep growing
        growth = rss[-1] - rss[1]
        limit = 16384 if asan else 4096
        assert growth < limit, "RSS grew by %d KiB over %d rounds: %s" % (growth, rounds - 2, rss)
    finally:
        assert s.stop() == 0


def test_engine_failure_is_per_request():
    s = start(["--embed", EMBED, "--rerank", RERANK], env={"RAGD_FAULT": "embed:internal:2"})
    try:
        assert s.post("/embed", {"texts": ["one"]}).status_code == 200
        r = s.post("/embed", {"texts": ["two"]}, headers={"X-Request-Id": "failing-req"})
        assert r.status_code == 500 and err_of(r)["type"] == "server_error"
        assert s.post("/embed", {"texts": ["three"]}).status_code == 200
        assert s.get("/health/ready").status_code == 200
        deadline = time.time() + 5  # the stderr reader thread may lag behind the reply
        while "failing-req" not in s.log() and time.time() < deadline:
            time.sleep(0.02)
        assert "failing-req" in s.log()  # logged with the request id
    finally:
        assert s.stop() == 0


def test_nan_is_never_sent():
    s = start(["--embed", EMBED, "--chat", CHAT], env={"RAGD_FAULT": "embed:nan:1"})
    try:
        r = s.post("/embed", {"texts": ["x"]})
        assert r.status_code == 500 and "finite" in err_of(r)["message"]
        assert s.post("/embed", {"texts": ["x"]}).status_code == 200
    finally:
        assert s.stop() == 0
    s = start(["--chat", CHAT], env={"RAGD_FAULT": "chat:nan:3"})
    try:
        r = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 8})
        assert r.status_code == 500 and "finite" in err_of(r)["message"]
    finally:
        assert s.stop() == 0


def test_device_error_marks_not_ready():
    s = start(["--embed", EMBED, "--rerank", RERANK], env={"RAGD_FAULT": "embed:device:2"})
    try:
        assert s.post("/embed", {"texts": ["one"]}).status_code == 200
        r = s.post("/embed", {"texts": ["two"]})
        assert r.status_code == 500 and err_of(r)["code"] == "device_error"
        ready = s.get("/health/ready")
        assert ready.status_code == 503
        assert "device error" in ready.json()["models"]["qwen3-embed-tiny"]
        assert ready.json()["models"]["qwen3-rerank-tiny"] == "ready"
        # later requests: the model cannot serve on this replica → 503 (a load balancer retries elsewhere)
        r = s.post("/embed", {"texts": ["three"]})
        assert r.status_code == 503 and err_of(r)["code"] == "model_not_ready" and "not ready" in err_of(r)["message"]
        assert s.post("/rerank", {"query": "q", "documents": ["d"]}).status_code == 200
        assert s.get("/health").status_code == 200  # alive, just not ready
        m = s.get("/v1/models").json()["data"]
        assert [x["ready"] for x in m if x["id"] == "qwen3-embed-tiny"] == [False]
    finally:
        assert s.stop() == 0


def test_sigterm_drains_inflight_stream():
    s = start(["--chat", CHAT, "--max-model-len", "512"])
    body = json.dumps({"messages": [{"role": "user", "content": "go"}], "max_tokens": 300, "temperature": 0,
                       "stream": True, "n": 4}).encode()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200
    first = resp.readline()
    assert first.startswith(b"data: ")
    s.proc.send_signal(15)
    # no new connections once stopping (the main thread quiesces the listener right after sigwait)
    refused = False
    deadline = time.time() + 5
    while not refused and time.time() < deadline:
        try:
            r = requests.get(s.url + "/health", timeout=2)
            refused = r.status_code == 503
        except requests.ConnectionError:
            refused = True
        time.sleep(0.05)
    assert refused
    rest = resp.read().decode()
    assert rest.rstrip().endswith("data: [DONE]"), rest[-300:]
    assert '"finish_reason":"length"' in rest or '"finish_reason":"stop"' in rest
    assert s.proc.wait(timeout=30) == 0
    assert "stopped" in s.log()


def test_not_ready_while_warming_up():
    """The server listens before the engines are warmed up: /health 200, /health/ready and model endpoints
    503 until the warm-up forward pass has run (slowed to 3 s here), then ready."""
    import subprocess
    from conftest import BIN
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env["RAGD_FAULT"] = "embed:slow:3000"
    import tempfile
    errf = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen([BIN, "serve", "--embed", EMBED, "--port", "0", "--device", "cpu"], stdout=subprocess.PIPE,
                         stderr=errf, text=True, env=env)
    try:
        url = "http://127.0.0.1:%s" % re.search(r":(\d+)", p.stdout.readline()).group(1)
        h = requests.get(url + "/health", timeout=5)
        assert h.status_code == 200 and h.json()["status"] == "loading"
        r = requests.get(url + "/health/ready", timeout=5)
        assert r.status_code == 503 and r.json()["models"]["qwen3-embed-tiny"] == "loading"
        e = requests.post(url + "/embed", json={"texts": ["early"]}, timeout=5)
        assert e.status_code == 503 and err_of(e)["code"] == "model_loading" and e.headers["Retry-After"] == "1"
        deadline = time.time() + 20
        while time.time() < deadline and requests.get(url + "/health/ready", timeout=5).status_code != 200:
            time.sleep(0.05)
        assert requests.get(url + "/health/ready", timeout=5).status_code == 200
        assert requests.post(url + "/embed", json={"texts": ["now"]}, timeout=5).status_code == 200
    finally:
        p.terminate()
        rc = p.wait(timeout=30)
        errf.seek(0)
        assert rc == 0, "ragd serve exited %s; its stderr ends with:\n%s" % (rc, errf.read()[-3000:])
