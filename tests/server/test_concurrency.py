"""Results served over HTTP do not depend on concurrency: many concurrent requests whose sequences the
scheduler packs into shared batches give bit-identical vectors and scores to the same inputs sent one
at a time, and to the CLI (`ragd embed` / `ragd rerank`) on the same inputs."""
import json
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BIN, EMBED, RERANK

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega the a of in retrieval query document passage ünï ☃").split()


def texts(n, seed):
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 60))) for _ in range(n)]


def test_embed_concurrent_equals_alone(server):
    t = texts(48, 1)
    alone = [server.post("/embed", {"texts": [x]}).json()["embeddings"][0] for x in t]
    # 24 requests of 1..6 texts each, 12 at a time, in shuffled order
    rnd = random.Random(2)
    groups = []
    idx = list(range(len(t))) * 2
    rnd.shuffle(idx)
    while idx:
        k = rnd.randint(1, 6)
        groups.append(idx[:k])
        idx = idx[k:]

    def one(g):
        r = server.post("/v1/embeddings", {"input": [t[i] for i in g], "encoding_format": "float"})
        assert r.status_code == 200, r.text
        return g, [d["embedding"] for d in r.json()["data"]]

    with ThreadPoolExecutor(12) as ex:
        for g, vecs in ex.map(one, groups):
            for i, v in zip(g, vecs):
                assert v == alone[i], "text %d differs when batched with others" % i
    m = server.get("/metrics").text
    # the scheduler did pack several sequences per forward pass at least once
    sizes = [l for l in m.splitlines() if l.startswith('ragd_batch_sequences_bucket{task="embed",model="qwen3-embed-tiny",le="1"}')]
    total = [l for l in m.splitlines() if l.startswith('ragd_batch_sequences_count{task="embed",model="qwen3-embed-tiny"}')]
    assert sizes and total and int(float(total[0].split()[-1])) > int(float(sizes[0].split()[-1])), (sizes, total)


def test_rerank_concurrent_equals_alone(server):
    docs = texts(20, 3)
    q = "gamma retrieval"
    alone = [server.post("/rerank", {"query": q, "documents": [d]}).json()["scores"][0] for d in docs]

    def one(k):
        sub = list(range(k, len(docs))) + list(range(k))
        r = server.post("/rerank", {"query": q, "documents": [docs[i] for i in sub]})
        assert r.status_code == 200, r.text
        return sub, r.json()["scores"]

    with ThreadPoolExecutor(8) as ex:
        for sub, scores in ex.map(one, range(16)):
            for i, s in zip(sub, scores):
                assert s == alone[i]


def test_chat_concurrent_greedy_equals_alone(server):
    prompts = ["hello", "tell me a story", "what is 2+2", "name a colour", "ünïcödé ☃"]
    body = lambda p: {"messages": [{"role": "user", "content": p}], "max_tokens": 16, "temperature": 0}
    alone = [server.post("/v1/chat/completions", body(p)).json()["choices"][0]["message"]["content"] for p in prompts]
    with ThreadPoolExecutor(10) as ex:
        res = list(ex.map(lambda i: (i % 5, server.post("/v1/chat/completions", body(prompts[i % 5])).json()), range(20)))
    for i, r in res:
        assert r["choices"][0]["message"]["content"] == alone[i]


def _cli(args, lines):
    p = subprocess.run([BIN] + args, input="".join(json.dumps(l) + "\n" for l in lines), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def _floats(obj):
    """The vector or score in one CLI output line, whatever its key."""
    for k in ("embedding", "vector", "score", "relevance_score"):
        if k in obj:
            return obj[k]
    raise AssertionError("no embedding/score in CLI output line %r" % obj)


def test_http_equals_cli(server):
    t = texts(24, 5)
    cli = [_floats(o) for o in _cli(["embed", "--model", EMBED], [{"text": x} for x in t])]
    with ThreadPoolExecutor(6) as ex:
        http = list(ex.map(lambda x: server.post("/embed", {"texts": [x]}).json()["embeddings"][0], t))
    assert len(cli) == len(http)
    for a, b in zip(cli, http):
        assert a == b
    q = "alpha query"
    cli_s = [_floats(o) for o in _cli(["rerank", "--model", RERANK, "--query", q], [{"text": x} for x in t])]
    http_s = server.post("/rerank", {"query": q, "documents": t}).json()["scores"]
    assert cli_s == http_s
    # and concurrently, two documents per request, through the v1 shape as well
    def pair(i):
        r = server.post("/v1/rerank", {"query": q, "documents": t[i:i + 2], "return_documents": False}).json()
        return i, {x["index"]: x["relevance_score"] for x in r["results"]}
    with ThreadPoolExecutor(6) as ex:
        for i, sc in ex.map(pair, range(0, len(t), 2)):
            for k, v in sc.items():
                assert v == cli_s[i + k]


def test_chat_equals_cli_generate(server):
    """Greedy chat over HTTP (under concurrency) gives the text of `ragd generate --chat` for the same
    single user message; raw /v1/completions gives the text of `ragd generate` on the raw prompt."""
    from conftest import CHAT
    prompts = ["hello", "what is 2+2", "ünïcödé ☃ text"]

    def cli(p, chat):
        args = [BIN, "generate", "--model", CHAT, "--prompt", p, "--max-tokens", "12", "--json"] + (["--chat"] if chat else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["text"]

    def http_chat(p):
        return server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": p}], "max_tokens": 12,
                                                    "temperature": 0}).json()["choices"][0]["message"]["content"]

    def http_raw(p):
        return server.post("/v1/completions", {"prompt": p, "max_tokens": 12, "temperature": 0}).json()["choices"][0]["text"]

    with ThreadPoolExecutor(6) as ex:
        chats = list(ex.map(http_chat, prompts * 2))
        raws = list(ex.map(http_raw, prompts * 2))
    for i, p in enumerate(prompts):
        want = cli(p, True)
        assert chats[i] == want and chats[i + len(prompts)] == want
        want_raw = cli(p, False)
        assert raws[i] == want_raw and raws[i + len(prompts)] == want_raw
