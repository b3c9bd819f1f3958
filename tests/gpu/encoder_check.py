# encoder_check.py — on the GPU machine: ragd serve --device cuda with the encoder / cross-encoder models
# of make_encoders.py against transformers (fp32 with the same bf16 weights, each input alone, no padding)
# through HTTP: embeddings (the model's pooling + L2 normalization) and rerank logits. Also transformers
# in bf16 against the same fp32 reference, as the scale of a bf16 engine's error. Asserts:
#   * every ragd embedding has cosine >= 0.999 with the fp32 reference, and ragd's worst 1 - cos is at
#     most 2x transformers-bf16's worst (or 1e-4);
#   * every rerank logit is within max(2x transformers-bf16's worst |error|, 0.02 * the logits' std);
#   * batch invariance over HTTP: a text alone and inside a batch of 48 others give the same floats;
#     a document scored alone and among 100 give the same score.
# Usage: python3 encoder_check.py RAGD WORK PORT   (prints one JSON line per model, exit 1 on any failure)
import json, math, os, random, subprocess, sys, time, urllib.request

import torch
from transformers import (AutoModel, AutoModelForSequenceClassification, AutoTokenizer, LlamaForSequenceClassification,
                          LlamaModel)

ragd, work, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
rnd = random.Random(11)
WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
         "retrieval embedding reranker GPU kernel attention document query passage answer evidence model cache "
         "café naïve Zürich 123 4567 3.14 ( ) , . ! ? : ;").split()


def text(lo, hi):
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(lo, hi)))


def call(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def serve(args):
    p = subprocess.Popen([ragd, "serve", "--device", "cuda", "--port", str(port), "--max-batch-tokens", "16384"] + args,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.environ.get("OUT", "/tmp"),
                                                                             f"enc_serve_{port}.log"), "a"))
    for _ in range(600):
        if p.poll() is not None:
            raise SystemExit(f"ragd exited with {p.returncode}: see enc_serve_{port}.log")
        try:
            with urllib.request.urlopen(base + "/health/ready", timeout=2) as r:
                if r.status == 200:
                    return p
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("ragd not ready in 60 s")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=30)
    except Exception:
        p.kill()


def bidir_mask(n, dtype):
    return torch.zeros(1, 1, n, n, device="cuda", dtype=dtype)  # NVIDIA's bidirectional Llama: no causal mask


def hf_pool(name, model, tok, texts, dtype):
    out = []
    for t in texts:
        enc = tok(t, return_tensors="pt", return_token_type_ids="bge-base" in name).to("cuda")
        with torch.no_grad():
            if name.startswith("nv-"):
                n = enc["input_ids"].shape[1]
                h = model(input_ids=enc["input_ids"], attention_mask=bidir_mask(n, dtype)).last_hidden_state[0].float()
                v = h.mean(0)
            else:
                h = model(**enc).last_hidden_state[0].float()
                v = h[0]  # CLS
        out.append(torch.nn.functional.normalize(v, dim=0).cpu())
    return out


def hf_logits(name, model, tok, query, docs, dtype):
    out = []
    for d in docs:
        with torch.no_grad():
            if name.startswith("nv-"):
                enc = tok(f"question:{query} \n \n passage:{d}", return_tensors="pt").to("cuda")
                n = enc["input_ids"].shape[1]
                h = model.model(input_ids=enc["input_ids"], attention_mask=bidir_mask(n, dtype)).last_hidden_state[0]
                out.append(float(model.score(h.mean(0)).float()) / 0.2)
            else:
                enc = tok(query, d, return_tensors="pt", truncation=True).to("cuda")
                out.append(float(model(**enc).logits[0, 0].float()))
    return out


def check_embed(name, texts):
    d = os.path.join(work, name)
    tok = AutoTokenizer.from_pretrained(d)
    ref = {}
    for dt in (torch.float32, torch.bfloat16):
        cls = LlamaModel if name.startswith("nv-") else AutoModel  # (llama_bidirec is remote code: its Llama body)
        m = cls.from_pretrained(d, torch_dtype=dt, attn_implementation="sdpa").cuda().eval()
        ref[dt] = hf_pool(name, m, tok, texts, dt)
        del m
        torch.cuda.empty_cache()
    p = serve(["--embed", d])
    try:
        st, r = call("/v1/embeddings", {"model": name, "input": texts})
        assert st == 200, r
        got = [torch.tensor(x["embedding"]) for x in r["data"]]
        st, r1 = call("/v1/embeddings", {"model": name, "input": [texts[5]]})
        assert st == 200, r1
        alone_same = r1["data"][0]["embedding"] == r["data"][5]["embedding"]
    finally:
        stop(p)
    cos = [float(torch.dot(a, b)) for a, b in zip(got, ref[torch.float32])]
    cos_bf = [float(torch.dot(a, b)) for a, b in zip(ref[torch.bfloat16], ref[torch.float32])]
    worst, worst_bf = 1 - min(cos), 1 - min(cos_bf)
    ok = min(cos) >= 0.999 and worst <= max(2 * worst_bf, 1e-4) and alone_same
    res = {"model": name, "task": "embed", "n": len(texts), "ragd_min_cos": round(min(cos), 6),
           "ragd_mean_1mcos": f"{1 - sum(cos) / len(cos):.2e}", "hf_bf16_min_cos": round(min(cos_bf), 6),
           "hf_bf16_mean_1mcos": f"{1 - sum(cos_bf) / len(cos_bf):.2e}", "alone_eq_batch": alone_same,
           "pass": ok}
    print(json.dumps(res), flush=True)
    return ok


def check_rerank(name, query, docs, extra=()):
    d = os.path.join(work, name)
    tok = AutoTokenizer.from_pretrained(d)
    ref = {}
    for dt in (torch.float32, torch.bfloat16):
        cls = LlamaForSequenceClassification if name.startswith("nv-") else AutoModelForSequenceClassification
        m = cls.from_pretrained(d, torch_dtype=dt, attn_implementation="sdpa").cuda().eval()
        ref[dt] = hf_logits(name, m, tok, query, docs, dt)
        del m
        torch.cuda.empty_cache()
    p = serve(["--rerank", d] + list(extra))
    try:
        # NIM's /v1/ranking gives the raw logit (the OpenAI-style routes give sigmoid(logit))
        st, r = call("/v1/ranking", {"model": name, "query": {"text": query}, "passages": [{"text": x} for x in docs]})
        assert st == 200, r
        logit = [None] * len(docs)
        for x in r["rankings"]:
            logit[x["index"]] = x["logit"]
        st, r1 = call("/v1/ranking", {"model": name, "query": {"text": query}, "passages": [{"text": docs[7]}]})
        assert st == 200, r1
        alone_same = r1["rankings"][0]["logit"] == logit[7]
    finally:
        stop(p)
    f32, bf = ref[torch.float32], ref[torch.bfloat16]
    err = max(abs(a - b) for a, b in zip(logit, f32))
    err_bf = max(abs(a - b) for a, b in zip(bf, f32))
    mean = sum(f32) / len(f32)
    std = (sum((x - mean) ** 2 for x in f32) / len(f32)) ** 0.5
    ok = err <= max(2 * err_bf, 0.02 * std) and alone_same
    res = {"model": name, "task": "rerank", "n": len(docs), "ragd_max_abs_logit_err": round(err, 5),
           "hf_bf16_max_abs_logit_err": round(err_bf, 5), "ref_logit_std": round(std, 4),
           "alone_eq_batch": alone_same, "pass": ok}
    print(json.dumps(res), flush=True)
    return ok


def gpu_mib(pid):
    q = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True).stdout
    return sum(int(l.split(",")[1]) for l in q.strip().splitlines() if l and int(l.split(",")[0]) == pid)


def check_seed(name, docs):
    """The seed case: the 1B reranker in 4 GiB with 16k batch tokens loads, stays under the budget while 8
    clients send 100-document requests, stays ready; with 2 GiB it refuses to start with the numbers."""
    import threading
    d = os.path.join(work, name)
    p = serve(["--rerank", d, "--gpu-memory", "4G"])
    codes, lock = [], threading.Lock()
    try:
        def client():
            for _ in range(5):
                st, _ = call("/v1/rerank", {"model": name, "query": "what does the GPU kernel cache?", "documents": docs})
                with lock:
                    codes.append(st)
        ths = [threading.Thread(target=client) for _ in range(8)]
        for t in ths:
            t.start()
        peak = 0
        while any(t.is_alive() for t in ths):
            peak = max(peak, gpu_mib(p.pid))
            time.sleep(0.05)
        with urllib.request.urlopen(base + "/health/ready", timeout=5) as r:
            ready = r.status == 200
    finally:
        stop(p)
    r2 = subprocess.run([ragd, "serve", "--device", "cuda", "--port", str(port), "--rerank", d, "--gpu-memory", "2G",
                         "--max-batch-tokens", "16384"], capture_output=True, text=True, timeout=120)
    refused = r2.returncode != 0 and "does not fit" in r2.stderr
    line = next((l for l in r2.stderr.splitlines() if "does not fit" in l), r2.stderr[-300:])
    ok = codes == [200] * 40 and ready and 0 < peak < 4096 and refused
    print(json.dumps({"model": name, "task": "seed 4G", "requests_200": codes.count(200), "of": len(codes),
                      "peak_process_MiB": peak, "ready_after": ready, "2G_refused": refused, "refusal": line[:400],
                      "pass": ok}), flush=True)
    return ok


only = set(sys.argv[4:])
texts = [text(3, 300) for _ in range(48)] + ["hello", "a", text(400, 420)]
docs = [text(20, 200) for _ in range(100)]
good = True
for name in ("bge-base", "bge-m3", "nv-embed-1b"):
    if (not only or name in only) and os.path.isdir(os.path.join(work, name)):
        good &= check_embed(name, texts if name != "bge-base" else [t for t in texts if len(t.split()) < 380])
for name in ("bge-rr-m3", "nv-rerank-1b"):
    if (not only or name in only) and os.path.isdir(os.path.join(work, name)):
        good &= check_rerank(name, "what does the GPU kernel cache?", docs)
if (not only or "seed" in only) and os.path.isdir(os.path.join(work, "nv-rerank-1b")):
    good &= check_seed("nv-rerank-1b", docs)
print("encoder_check:", "PASS" if good else "FAIL")
sys.exit(0 if good else 1)
