# serve_check.py — `ragd serve` with one GGUF model as chat, embed and rerank model: asks
# /v1/chat/completions "What is the capital of France?" at temperature 0, embeds two texts and
# reranks two documents; prints the answers as JSON lines (compare --device cuda with --device cpu).
# Usage: python3 serve_check.py RAGD MODEL.gguf DEVICE PORT   (exit 0 when every request answered 200)
import json, subprocess, sys, time, urllib.request

ragd, model, dev, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.time()
proc = subprocess.Popen([ragd, "serve", "--chat", model, "--embed", model, "--rerank", model, "--device", dev,
                         "--port", str(port), "--max-seqs", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
base = f"http://127.0.0.1:{port}"


def call(path, body=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


ok = False
for _ in range(300):
    if proc.poll() is not None:
        break
    try:
        if call("/health/ready")[0] == 200:
            ok = True
            break
    except Exception:
        pass
    time.sleep(0.1)
res = {"device": dev, "ready_s": round(time.time() - t0, 2)}
good = ok
if ok:
    st, models = call("/v1/models")
    name = models["data"][0]["id"] if st == 200 else "x"
    st, r = call("/v1/chat/completions", {"model": name, "temperature": 0, "max_tokens": 24,
                                          "messages": [{"role": "user", "content": "What is the capital of France?"}]})
    res["chat_status"] = st
    res["chat"] = r["choices"][0]["message"]["content"] if st == 200 else r
    st, r = call("/v1/embeddings", {"model": name, "input": ["Paris is the capital of France.", "GPU kernels"]})
    res["embed_status"] = st
    res["embed_head"] = [[round(x, 5) for x in d["embedding"][:4]] for d in r["data"]] if st == 200 else r
    st, r = call("/v1/rerank", {"model": name, "query": "capital of France",
                                "documents": ["Paris is the capital of France.", "GPU kernels are fast."]})
    res["rerank_status"] = st
    res["rerank"] = r.get("results", r) if st == 200 else r
    good = all(res[k] == 200 for k in ("chat_status", "embed_status", "rerank_status"))
proc.terminate()
try:
    err = proc.communicate(timeout=20)[1].decode(errors="replace")
except Exception:
    proc.kill()
    err = ""
if not good:
    res["stderr_tail"] = err[-3000:]
print(json.dumps(res))
sys.exit(0 if good else 1)
