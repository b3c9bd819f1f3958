#!/usr/bin/env python3
"""Closed-loop load generator for `ragd serve` (stdlib only): C client threads each send requests
back to back for --seconds; prints requests/s, tokens/s and latency percentiles per status.

  python3 bench/server_load.py --url http://127.0.0.1:8080 --kind embed --clients 8 --seconds 10 --texts 4 --words 32
  python3 bench/server_load.py --url ... --kind chat --clients 8 --max-tokens 64
  python3 bench/server_load.py --url ... --kind embed --clients 1 --texts 1 --words 8   # single-request latency
"""
import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--kind", choices=["embed", "rerank", "chat"], default="embed")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--texts", type=int, default=4, help="texts (embed) or documents (rerank) per request")
    ap.add_argument("--words", type=int, default=32, help="words per text (≈ tokens)")
    ap.add_argument("--max-tokens", type=int, default=64)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau".split()
    rnd = random.Random(0)

    def text():
        return " ".join(rnd.choice(words) for _ in range(a.words))

    lock = threading.Lock()
    lat = {}
    toks = [0, 0]  # prompt, completion
    stop_at = time.time() + a.seconds

    def client():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        while time.time() < stop_at:
            if a.kind == "embed":
                path, body = "/v1/embeddings", {"input": [text() for _ in range(a.texts)], "encoding_format": "float"}
            elif a.kind == "rerank":
                path, body = "/v1/rerank", {"query": text(), "documents": [text() for _ in range(a.texts)]}
            else:
                path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": text()}],
                                                      "max_tokens": a.max_tokens, "temperature": 0.8}
            t0 = time.perf_counter()
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            dt = time.perf_counter() - t0
            u_ = json.loads(data).get("usage") or {} if r.status == 200 else {}
            with lock:
                lat.setdefault(r.status, []).append(dt)
                toks[0] += u_.get("prompt_tokens", 0)
                toks[1] += u_.get("completion_tokens", 0)

    ts = [threading.Thread(target=client) for _ in range(a.clients)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.time() - t0
    n = sum(len(v) for v in lat.values())
    print("kind=%s clients=%d seconds=%.1f texts=%d words=%d max_tokens=%d" % (a.kind, a.clients, el, a.texts, a.words,
                                                                           a.max_tokens))
    print("requests/s %.1f  prompt tokens/s %.0f  completion tokens/s %.0f" % (n / el, toks[0] / el, toks[1] / el))
    for st, v in sorted(lat.items()):
        v.sort()
        pct = lambda p: v[min(len(v) - 1, int(p * len(v)))] * 1e3
        print("  status %d: n=%d p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms" % (st, len(v), pct(.5), pct(.9),
                                                                                        pct(.99), v[-1] * 1e3))


if __name__ == "__main__":
    main()
