"""Black-box tests of `ragd serve`: start the real binary on the tiny fixture models on a free loopback
port, talk to it over HTTP, stop it with SIGTERM and require exit status 0.

Environment (set by CTest): RAGD_BIN (the ragd binary), RAGD_SRC (the checkout, for fixtures/)."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

SRC = os.environ.get("RAGD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("RAGD_BIN", os.path.join(SRC, "build", "ragd"))
MODELS = os.path.join(SRC, "fixtures", "models")
EMBED = os.path.join(MODELS, "qwen3-embed-tiny")
RERANK = os.path.join(MODELS, "qwen3-rerank-tiny")
CHAT = os.path.join(MODELS, "qwen3-tiny")


class Server:
    """One running `ragd serve`. stderr is collected in a thread (so the pipe never fills)."""

    def __init__(self, args, env=None):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("RAGD_") and k not in ("RAGD_BIN", "RAGD_SRC", "RAGD_SHARED", "RAGD_FAKE_NVML"):
                del e[k]
        e.update(env or {})
        self.proc = subprocess.Popen([BIN, "serve", "--port", "0", "--device", "cpu", "--threads", "1"] + args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, text=True)
        self.stderr = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (https?)://([^:]+):(\d+)", line)
        if not m:
            self.proc.wait(timeout=10)
            raise RuntimeError("server did not start: %r\n%s" % (line, "".join(self.stderr)))
        # HTTPS (--tls-cert): verified against that certificate (the tests' names 127.0.0.1)
        self.url = "%s://127.0.0.1:%s" % (m.group(1), m.group(3))
        self.port = int(m.group(3))
        self.verify = args[args.index("--tls-cert") + 1] if "--tls-cert" in args else True
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/health/ready", timeout=2, verify=self.verify).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("server never became ready")

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def post(self, path, body=None, raw=None, headers=None, timeout=30):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else json.dumps(body)
        return requests.post(self.url + path, data=data, headers=h, timeout=timeout, verify=self.verify)

    def get(self, path, headers=None, timeout=30):
        return requests.get(self.url + path, headers=headers or {}, timeout=timeout, verify=self.verify)

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
            if rc != 0:  # shown by pytest with the failure: the server's own last words
                print("ragd serve exited %s; stderr ends with:\n%s" % (rc, self.log()[-4000:]))
            return rc
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit within %ds after SIGTERM" % timeout)

    def log(self):
        """stderr so far; complete once the process has exited (waits for the reader to reach EOF)."""
        if self.proc.poll() is not None:
            self._drainer.join(timeout=10)
        return "".join(self.stderr)


def start(args, env=None):
    return Server(args, env)


@pytest.fixture(scope="session")
def server():
    """All three models, generous limits: the server most tests share."""
    s = Server(["--embed", EMBED, "--rerank", RERANK, "--chat", CHAT, "--max-seqs", "16",
                "--max-batch-tokens", "2048", "--max-model-len", "512"])
    yield s
    rc = s.stop()
    assert rc == 0, "server exited with %d\n%s" % (rc, s.log()[-4000:])


def err_of(resp):
    """The OpenAI error object of a response, checked for shape."""
    body = resp.json()
    assert set(body) == {"error"}, body
    e = body["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert isinstance(e["message"], str) and e["message"], e
    return e
