"""Hostile bytes: deterministic random mutations of valid request bodies (byte flips, truncations, type
swaps, huge numbers, deep nesting) against every POST endpoint. Every answer must be 200 or a 4xx with an
OpenAI error object — never a 5xx, a hang or a crash (the ASan build runs this too)."""
import json
import random

from conftest import err_of

VALID = {
    "/embed": {"texts": ["hello world", "second"], "dimensions": 8},
    "/v1/embeddings": {"input": ["hello", "world"], "encoding_format": "float"},
    "/rerank": {"query": "q", "documents": ["a", "b"]},
    "/v1/rerank": {"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0.5,
                             "stop": ["x"], "n": 2, "logprobs": True, "top_logprobs": 2},
    "/v1/completions": {"prompt": "abc", "max_tokens": 3, "logprobs": 1},
    "/tokenize": {"text": "hello"},
    "/detokenize": {"tokens": [1, 2, 3]},
}
ODD = [None, True, -1, 0, 2**63, -2**63, 1e308, -1e-308, "", "x" * 5000, [], {}, [[]], [None], {"a": [1]},
       "\u0000", "\ud7ff\ue000", [1.5], [-1], [2**40]]


def mutate_value(rnd, v):
    if isinstance(v, dict) and v and rnd.random() < 0.7:
        k = rnd.choice(list(v))
        v = dict(v)
        v[k] = mutate_value(rnd, v[k]) if rnd.random() < 0.6 else rnd.choice(ODD)
        if rnd.random() < 0.2:
            del v[k]
        return v
    if isinstance(v, list) and v and rnd.random() < 0.7:
        v = list(v)
        i = rnd.randrange(len(v))
        v[i] = mutate_value(rnd, v[i]) if rnd.random() < 0.5 else rnd.choice(ODD)
        return v
    return rnd.choice(ODD)


def mutate_bytes(rnd, b):
    b = bytearray(b)
    op = rnd.randrange(4)
    if op == 0 and b:
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
    elif op == 1:
        b = b[:rnd.randrange(len(b) + 1)]
    elif op == 2:
        b = b"[" * 5000 + b + b"]" * 5000
    else:
        i = rnd.randrange(len(b) + 1)
        b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    return bytes(b)


def test_mutated_bodies(server):
    rnd = random.Random(1234)
    seen = {}
    for i in range(480):
        path = rnd.choice(sorted(VALID))
        if rnd.random() < 0.5:
            body = json.dumps(mutate_value(rnd, VALID[path])).encode()
        else:
            body = mutate_bytes(rnd, json.dumps(VALID[path]).encode())
        r = server.post(path, raw=body, timeout=60)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (path, body[:300], r.text)
        if r.status_code != 200:
            err_of(r)
        else:
            json.loads(r.text)
    assert seen.get(400, 0) > 100 and seen.get(200, 0) > 10, seen
    assert server.get("/health/ready").status_code == 200
