#!/usr/bin/env python3
"""Side by side: the same N texts embedded by `ragd embed` (engine through the CLI, one process, batches of
--max-batch-tokens) and by a running `ragd serve` over HTTP (C concurrent clients, K texts per request).
The difference is what the HTTP layer and the scheduler cost. Also checks the vectors are identical.

  python3 bench/server_vs_cli.py --bin build/ragd --model fixtures/models/qwen3-embed-tiny --n 2000 --clients 8 --per-request 4
"""
import argparse
import http.client
import json
import random
import re
import subprocess
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/ragd")
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--words", type=int, default=32)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--per-request", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-batch-tokens", type=int, default=8192)
    a = ap.parse_args()
    rnd = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau".split()
    texts = [" ".join(rnd.choice(words) for _ in range(rnd.randint(a.words // 2, a.words * 3 // 2))) for _ in range(a.n)]
    common = ["--threads", str(a.threads), "--max-batch-tokens", str(a.max_batch_tokens)]

    t0 = time.perf_counter()
    p = subprocess.run([a.bin, "embed", "--model", a.model, "--device", "cpu"] + common,
                       input="".join(json.dumps({"text": t}) + "\n" for t in texts), capture_output=True, text=True)
    t_cli = time.perf_counter() - t0
    assert p.returncode == 0, p.stderr
    cli = [json.loads(l)["embedding"] for l in p.stdout.splitlines()]

    srv = subprocess.Popen([a.bin, "serve", "--embed", a.model, "--device", "cpu", "--port", "0", "--log-level", "warn"]
                           + common, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(re.search(r":(\d+)", srv.stdout.readline()).group(1))
    time.sleep(0.2)
    out = [None] * a.n
    chunks = [list(range(i, min(i + a.per_request, a.n))) for i in range(0, a.n, a.per_request)]
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if not chunks:
                    return
                idx = chunks.pop()
            c.request("POST", "/embed", json.dumps({"texts": [texts[i] for i in idx]}), {"Content-Type": "application/json"})
            r = c.getresponse()
            body = json.loads(r.read())
            assert r.status == 200, body
            for i, v in zip(idx, body["embeddings"]):
                out[i] = v

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    t_http = time.perf_counter() - t0
    srv.terminate()
    srv.wait()
    same = sum(1 for x, y in zip(cli, out) if x == y)
    ntok = None
    print("texts %d (%d-%d words), CLI %.2f s (%.0f texts/s), HTTP %d clients x %d texts/request %.2f s (%.0f texts/s), "
          "HTTP/CLI time %.2f, identical vectors %d/%d" % (a.n, a.words // 2, a.words * 3 // 2, t_cli, a.n / t_cli,
                                                           a.clients, a.per_request, t_http, a.n / t_http, t_http / t_cli,
                                                           same, a.n))


if __name__ == "__main__":
    main()
