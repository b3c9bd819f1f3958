# gpu_encoder_bench.py — on the GPU machine, one run, side by side: ragd serve --device cuda (HTTP, TEI
# request shapes) against sentence-transformers (SentenceTransformer / CrossEncoder, bf16, SDPA) and, for
# NVIDIA's bidirectional-Llama reranker (which CrossEncoder cannot run: it needs the bidirectional mask),
# transformers bf16 batched with that mask — on the models of tests/gpu/make_encoders.py:
#   * embedding throughput: 4,096 texts of 40–380 words (bge-base: truncated at 512 tokens, as both do),
#     ragd with 16 concurrent clients posting 32 texts each, sentence-transformers encode(batch_size=64);
#   * one short /embed ("hello world"), 200 sequential requests on one keep-alive connection: p50 / p90;
#   * a 100-document rerank (documents of 20–200 words), p50 of 10.
# Usage: python3 bench/gpu_encoder_bench.py RAGD WORK PORT [names...]   (one JSON line per measurement)
import http.client, json, os, random, statistics, subprocess, sys, threading, time

import torch

ragd, work, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
only = set(sys.argv[4:])
rnd = random.Random(5)
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "retrieval embedding reranker GPU kernel attention document query passage answer evidence model cache "
         "café naïve Zürich 123 4567 3.14 ( ) , . ! ? : ;").split()


def text(lo, hi):
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(lo, hi)))


TEXTS = [text(40, 380) for _ in range(4096)]
DOCS = [text(20, 200) for _ in range(100)]
QUERY = "what does the GPU kernel cache?"


def serve(args):
    log = open(os.path.join(os.environ.get("OUT", "/tmp"), "bench_serve.log"), "a")
    p = subprocess.Popen([ragd, "serve", "--device", "cuda", "--port", str(port), "--max-batch-tokens", "16384",
                          "--http-threads", "8"] + args, stdout=log, stderr=log)
    for _ in range(600):
        if p.poll() is not None:
            raise SystemExit(f"ragd exited with {p.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health/ready")
            if c.getresponse().status == 200:
                return p
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("not ready")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=30)
    except Exception:
        p.kill()


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:300]}")
    return json.loads(data)


def ragd_throughput(n_clients=16, per=32):
    chunks = [TEXTS[i:i + per] for i in range(0, len(TEXTS), per)]
    lock, idx = threading.Lock(), [0]

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                if idx[0] >= len(chunks):
                    return
                ch = chunks[idx[0]]
                idx[0] += 1
            post(c, "/embed", {"inputs": ch, "truncate": True})

    ths = [threading.Thread(target=worker) for _ in range(n_clients)]
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return time.perf_counter() - t0


def latency(fn, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return round(ts[len(ts) // 2], 3), round(ts[int(len(ts) * 0.9)], 3)


def out(**kw):
    print(json.dumps(kw), flush=True)


def bench_embed(name):
    from sentence_transformers import SentenceTransformer
    d = os.path.join(work, name)
    maxlen = 512 if name == "bge-base" else 8192
    st = SentenceTransformer(d, device="cuda", model_kwargs={"torch_dtype": torch.bfloat16, "attn_implementation": "sdpa"})
    st.max_seq_length = maxlen
    tok = st.tokenizer
    n_tok = sum(min(len(tok(t)["input_ids"]), maxlen) for t in TEXTS)
    st.encode(TEXTS[:256], batch_size=64)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    st.encode(TEXTS, batch_size=64)
    torch.cuda.synchronize()
    t_st = time.perf_counter() - t0
    l_st = latency(lambda: st.encode(["hello world"]), 100)
    del st
    torch.cuda.empty_cache()
    p = serve(["--embed", d])
    try:
        ragd_throughput(16, 32)  # warm-up pass
        t_r = ragd_throughput(16, 32)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        l_r = latency(lambda: post(c, "/embed", {"inputs": "hello world"}), 200)
    finally:
        stop(p)
    out(model=name, what="embed 4096 texts", tokens=n_tok, ragd_s=round(t_r, 3), st_s=round(t_st, 3),
        ragd_tok_s=round(n_tok / t_r), st_tok_s=round(n_tok / t_st), speedup=round(t_st / t_r, 2))
    out(model=name, what="one short /embed, ms p50/p90", ragd=l_r, st_encode=l_st)


def nv_rerank_baseline(d):
    from transformers import AutoTokenizer, LlamaForSequenceClassification
    tok = AutoTokenizer.from_pretrained(d)
    m = LlamaForSequenceClassification.from_pretrained(d, torch_dtype=torch.bfloat16,
                                                           attn_implementation="sdpa").cuda().eval()
    texts = [f"question:{QUERY} \n \n passage:{x}" for x in DOCS]

    def run():
        enc = tok(texts, return_tensors="pt", padding=True).to("cuda")
        am = enc["attention_mask"]
        mask = (1.0 - am[:, None, None, :].to(torch.bfloat16)) * torch.finfo(torch.bfloat16).min
        with torch.no_grad():
            h = m.model(input_ids=enc["input_ids"], attention_mask=mask).last_hidden_state
            pooled = (h * am[..., None]).sum(1) / am.sum(1, keepdim=True)
            s = m.score(pooled).float() / 0.2
        torch.cuda.synchronize()
        return s

    run()
    return latency(run, 10), m


def bench_rerank(name):
    d = os.path.join(work, name)
    if name.startswith("nv-"):
        l_b, m = nv_rerank_baseline(d)
        base_name = "transformers bf16 (bidirectional mask)"
    else:
        from sentence_transformers import CrossEncoder
        m = CrossEncoder(d, device="cuda", model_kwargs={"torch_dtype": torch.bfloat16, "attn_implementation": "sdpa"})
        pairs = [(QUERY, x) for x in DOCS]
        m.predict(pairs, batch_size=100)
        l_b = latency(lambda: m.predict(pairs, batch_size=100), 10)
        base_name = "CrossEncoder bf16"
    del m
    torch.cuda.empty_cache()
    p = serve(["--rerank", d])
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = {"query": QUERY, "documents": DOCS}
        post(c, "/v1/rerank", body)
        l_r = latency(lambda: post(c, "/v1/rerank", body), 10)
    finally:
        stop(p)
    out(model=name, what="rerank 100 documents, ms p50/p90", ragd=l_r, baseline=l_b, baseline_is=base_name,
        speedup_p50=round(l_b[0] / l_r[0], 2))


for n in ("bge-base", "bge-m3"):
    if (not only or n in only) and os.path.isdir(os.path.join(work, n)):
        bench_embed(n)
for n in ("bge-rr-m3", "nv-rerank-1b"):
    if (not only or n in only) and os.path.isdir(os.path.join(work, n)):
        bench_rerank(n)
