"""The README's first command, end to end (issue 6): runs scripts/quickstart.sh on a free port, waits until
/health/ready, asks SmolLM2 a question through /v1/chat/completions with the official openai client and
checks the answer really names the capital; then checks every other endpoint answers, and that SIGTERM
ends the server with exit 0. Run by .ci/run after the test suite: python3 tests/e2e/quickstart_check.py"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import openai

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, json.loads(r.read() or b"null")


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read())


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(root, "build", "quickstart_check.log"), "w")
    t0 = time.time()
    proc = subprocess.Popen(["bash", "scripts/quickstart.sh", "--port", str(port)], cwd=root, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        ready = False
        while time.time() - t0 < 600 and proc.poll() is None:
            try:
                if get(base + "/health/ready")[0] == 200:
                    ready = True
                    break
            except Exception:
                pass
            time.sleep(0.5)
        assert ready, f"server not ready after {time.time() - t0:.0f} s (exit {proc.poll()}); see build/quickstart_check.log"
        print(f"ready after {time.time() - t0:.1f} s (build + model fetch + load + warm-up)")

        client = openai.OpenAI(base_url=base + "/v1", api_key="none")
        models = client.models.list().data
        assert len(models) == 1 and "SmolLM2" in models[0].id, models
        r = client.chat.completions.create(model=models[0].id, temperature=0, max_tokens=40,
                                           messages=[{"role": "user", "content": "What is the capital of France?"}])
        answer = r.choices[0].message.content
        print("answer:", answer)
        assert "Paris" in answer, answer
        assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
        # streaming gives the same text
        chunks = client.chat.completions.create(model=models[0].id, temperature=0, max_tokens=40, stream=True,
                                                messages=[{"role": "user", "content": "What is the capital of France?"}])
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == answer, (streamed, answer)

        st, e = post(base + "/embed", {"texts": ["hello world", "the capital of France"]})
        assert st == 200 and len(e["embeddings"]) == 2 and len(e["embeddings"][0]) == 576, e.keys()
        norm = sum(v * v for v in e["embeddings"][0]) ** 0.5
        assert abs(norm - 1) < 1e-4, norm
        st, rr = post(base + "/rerank", {"query": "capital of France", "documents": ["Paris is the capital of France.", "x"]})
        assert st == 200 and len(rr["scores"]) == 2 and all(0 <= s <= 1 for s in rr["scores"]), rr
        st, d = get(base + "/diagnostics")
        assert st == 200 and d["models"], d
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed"
        log.close()
    assert rc == 0, f"ragd serve exited {rc} on SIGTERM"
    print("quickstart check: passed")


if __name__ == "__main__":
    sys.exit(main())
