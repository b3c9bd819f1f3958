# gpu_http_bench.py — ragd serve --device cuda through HTTP on the GPU machine: startup (process start
# to /health/ready), single short /embed latency, and /v1/embeddings throughput on the same length
# mixes as gpu_bench (token-id inputs, so the token counts are exactly the engine-level ones).
# Usage: python3 gpu_http_bench.py RAGD_BINARY MODEL_DIR REFS_DIR
import base64, http.client, json, os, random, statistics, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

ragd, model, refs = sys.argv[1:4]
PORT = 18080
log = open(os.path.join(os.environ.get("OUT", "/tmp"), "ragd_serve.log"), "w")
t0 = time.time()
proc = subprocess.Popen([ragd, "serve", "--embed", model, "--device", os.environ.get("RAGD_HTTP_DEVICE", "cuda"), "--port", str(PORT),
                         "--max-batch-tokens", "32768", "--max-seqs", "256", "--http-threads", "8",
                         "--max-queue", "100000", "--max-queue-tokens", "100000000"],
                        stdout=log, stderr=subprocess.STDOUT)

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    return r.status

ready = None
while time.time() - t0 < 60:
    if proc.poll() is not None:
        break
    try:
        if get("/health/ready") == 200:
            ready = time.time() - t0
            break
    except OSError:
        pass
    time.sleep(0.01)
if ready is None:
    print("server did not become ready; log:")
    log.flush()
    print(open(log.name).read()[-3000:])
    proc.kill()
    sys.exit(1)
print(f"http: process start -> /health/ready: {ready:.2f} s", flush=True)

def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{r.status}: {data[:300]}")
    return data

# single short request latency (20 words), keep-alive connection
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
text = " ".join(["retrieval"] * 5 + ["of", "the", "best", "GPU", "kernel", "for", "attention", "and", "more", "words",
                 "here", "now", "ok", "done", "end"])
lat = []
N_LAT = int(os.environ.get("RAGD_HTTP_NLAT", "60"))
for i in range(N_LAT):
    a = time.perf_counter()
    post(c, "/embed", {"texts": [text]})
    if i >= N_LAT // 6:
        lat.append((time.perf_counter() - a) * 1e3)
lat.sort()
print(f"http: one short text on /embed: median {lat[len(lat) // 2]:.2f} ms, p10 {lat[len(lat) // 10]:.2f}, p90 {lat[len(lat) * 9 // 10]:.2f}",
      flush=True)

def mix(name, lens, per_req, workers):
    rnd = random.Random(3)
    seqs = [[rnd.randrange(151643) for _ in range(L)] for L in lens]
    reqs = [seqs[i:i + per_req] for i in range(0, len(seqs), per_req)]
    local = threading.local()
    def send(batch):
        if not hasattr(local, "c"):
            local.c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        d = json.loads(post(local.c, "/v1/embeddings", {"input": batch, "encoding_format": "base64"}))
        assert len(d["data"]) == len(batch)
        return d["usage"]["prompt_tokens"]
    times = []
    with ThreadPoolExecutor(workers) as ex:
        for it in range(4):
            a = time.perf_counter()
            toks = sum(ex.map(send, reqs))
            if it:
                times.append(time.perf_counter() - a)
    t = statistics.median(times)
    print(f"http: {name}: {toks} tokens, {len(reqs)} requests of {per_req} sequences, {workers} clients: "
          f"{toks / t:.0f} tokens/s (median of 3: {t * 1e3:.1f} ms)", flush=True)

ll = list(map(int, open(f"{refs}/lens_long.txt").read().split()))
ls = list(map(int, open(f"{refs}/lens_short.txt").read().split()))
mix("long mix", ll, 8, 16)
mix("long mix", ll, 1, 64)
mix("short mix", ls, 32, 16)
proc.terminate()
proc.wait(10)
