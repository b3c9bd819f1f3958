# gpu_chat_bench.py — chat generation through HTTP on the GPU machine, the workloads of issue 10:
# `ragd serve --device cuda` with one model as chat + embed + rerank (Qwen3-0.6B shape, random weights,
# the real Qwen3 tokenizer), /v1/completions with token-id prompts (exact lengths), temperature 0,
# ignore_eos, streaming (SSE):
#   startup (process start → /health/ready, graphs captured), 1 stream × 256 tokens, 64 and 256 streams
#   × 256 tokens (prompts 30–300 tokens), time to first token of a 2,600-token prompt and of the same
#   prompt after another request cached its first 2,000 tokens, one short /embed while 32 chat streams run.
# Usage: python3 gpu_chat_bench.py RAGD_BINARY MODEL_DIR   (env OUT: where the server log goes;
#   RAGD_CHAT_EXTRA: extra serve flags; RAGD_CHAT_TAG: a label for the printed lines)
import http.client, json, os, random, statistics, subprocess, sys, threading, time

ragd, model = sys.argv[1:3]
TAG = os.environ.get("RAGD_CHAT_TAG", "ragd")
PORT = int(os.environ.get("RAGD_CHAT_PORT", "18090"))
logf = open(os.path.join(os.environ.get("OUT", "/tmp"), f"serve_{TAG}.log"), "w")
args = [ragd, "serve", "--chat", model, "--embed", model, "--rerank", model, "--device", "cuda", "--port", str(PORT),
        "--max-seqs", "256", "--max-model-len", "4096", "--http-threads", "16", "--max-queue", "100000",
        "--max-queue-tokens", "100000000", "--max-batch-tokens", "8192"] + os.environ.get("RAGD_CHAT_EXTRA", "").split()
t0 = time.time()
env = dict(os.environ)
if os.environ.get("RAGD_LIBS"):  # ragd's own Debian libraries, for the server process only
    env["LD_LIBRARY_PATH"] = os.environ["RAGD_LIBS"] + ":" + env.get("LD_LIBRARY_PATH", "")
proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env)


def get(path):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    return r.status


ready = None
while time.time() - t0 < 120:
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
    logf.flush()
    print("server did not become ready; log:\n" + open(logf.name).read()[-4000:])
    proc.kill()
    sys.exit(1)
print(f"chat[{TAG}]: process start -> /health/ready (3 roles, one model): {ready:.2f} s", flush=True)
rng = random.Random(7)


def stream(prompt_ids, max_tokens=256, out=None):
    """One streamed completion; returns (t_first_token, t_end, n_tokens) relative to the request start."""
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300)
    body = {"prompt": prompt_ids, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}}
    a = time.perf_counter()
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"{r.status}: {r.read()[:300]}")
    first, n = None, 0
    buf = b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(4096)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if not ev.startswith(b"data: ") or ev == b"data: [DONE]":
                continue
            # parse only what is needed (the first token's event, the usage event): at 256 streams a
            # json.loads per event made the client, not the server, the bottleneck
            if first is None:
                d = json.loads(ev[6:])
                if d.get("choices"):
                    first = time.perf_counter() - a
                if d.get("usage"):
                    n = d["usage"]["completion_tokens"]
            elif b'"usage"' in ev:
                d = json.loads(ev[6:])
                if d.get("usage"):
                    n = d["usage"]["completion_tokens"]
    end = time.perf_counter() - a
    c.close()
    res = (first, end, n)
    if out is not None:
        out.append(res)
    return res


def ids(n):
    return [rng.randrange(0, 151643) for _ in range(n)]


# warm-up
stream(ids(50), 16)

# 1 stream
runs = [stream(ids(30), 256) for _ in range(3)]
best = min(runs, key=lambda r: r[1])
dec = (best[2] - 1) / (best[1] - best[0])
print(f"chat[{TAG}]: 1 stream, 256 tokens: {best[2] / best[1]:.1f} tok/s end to end, {dec:.1f} tok/s after the first "
      f"token (TTFT {best[0] * 1e3:.1f} ms; best of 3)", flush=True)

def step_split():
    # (steps, engine s, scheduler s) from /metrics; None on a binary without these series
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("GET", "/metrics")
    v = {}
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith("ragd_generation_step"):
            k, _, x = line.rpartition(" ")
            v[k] = float(x)
    if "ragd_generation_steps_total" not in v:
        return None
    return (v["ragd_generation_steps_total"], v.get('ragd_generation_step_seconds_total{part="engine"}', 0.0),
            v.get('ragd_generation_step_seconds_total{part="scheduler"}', 0.0))


def client_proc(prompts, go, q):
    # one client process: a thread per stream, all released at once by `go`
    res = []
    ths = [threading.Thread(target=stream, args=(p, 256, res)) for p in prompts]
    go.wait()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    q.put(res)


def run_streams(N):
    # N streams from several client processes (one Python process cannot read 256 SSE streams at the
    # server's rate: with one process the 256-stream run measured the client's GIL)
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    P = max(1, min(16, N // 16))
    prompts = [ids(rng.randint(30, 300)) for _ in range(N)]
    go, q = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=client_proc, args=(prompts[i::P], go, q)) for i in range(P)]
    for p in procs:
        p.start()
    time.sleep(0.3)  # processes and threads created before the clock starts
    a = time.perf_counter()
    go.set()
    res = []
    for _ in procs:
        res += q.get()
    wall = time.perf_counter() - a
    for p in procs:
        p.join()
    return res, wall, P


# N streams at once
for N in [int(x) for x in os.environ.get("RAGD_CHAT_STREAMS", "16 64 256").split()]:
    sp0 = step_split()
    res, wall, P = run_streams(N)
    tot = sum(r[2] for r in res)
    ttft = sorted(r[0] for r in res)
    print(f"chat[{TAG}]: {N} streams x 256 tokens (prompts 30-300): {tot / wall:.0f} tok/s total ({tot} tokens in "
          f"{wall:.2f} s; TTFT p50 {ttft[len(ttft) // 2] * 1e3:.0f} ms, max {ttft[-1] * 1e3:.0f} ms)", flush=True)
    sp1 = step_split()
    if sp0 and sp1:
        n, e, h = (sp1[i] - sp0[i] for i in range(3))
        print(f"chat[{TAG}]:   {N} streams ({P} client processes): {n:.0f} steps ({tot / max(n, 1):.1f} tokens/step), engine {e:.2f} s ({e / max(n, 1) * 1e3:.2f} ms/step), "
              f"scheduler host work {h:.2f} s ({h / max(n, 1) * 1e3:.2f} ms/step), idle {wall - e - h:.2f} s of "
              f"{wall:.2f} s", flush=True)

# time to first token: 2,600 tokens, then after another request cached its first 2,000
for rep in range(3):
    p = ids(2600)
    f1, _, _ = stream(p, 1)
    q = p[:2000] + ids(600)
    f2, _, _ = stream(q, 1)
    print(f"chat[{TAG}]: TTFT 2,600-token prompt {f1 * 1e3:.1f} ms; same length with its first 2,000 tokens cached "
          f"{f2 * 1e3:.1f} ms", flush=True)

# one short /embed while 32 chat streams run


def chat_loop(stop_ev, seed):
    r = random.Random(seed)
    while not stop_ev.is_set():
        stream([r.randrange(0, 151643) for _ in range(r.randint(30, 300))], 256)


def chat_bg_proc(stop_ev, k):
    # 8 chat streams in this process (4 processes: 32 streams), so the /embed client below does not
    # share a GIL with 32 SSE readers
    ths = [threading.Thread(target=chat_loop, args=(stop_ev, 1000 * k + j)) for j in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()


import multiprocessing as _mp
_ctx = _mp.get_context("fork")
stop_ev = _ctx.Event()
bg = [_ctx.Process(target=chat_bg_proc, args=(stop_ev, k)) for k in range(4)]
for t in bg:
    t.start()
time.sleep(2.0)
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
lat = []
text = "retrieval augmented generation needs fast embeddings of short queries like this one here"
for i in range(60):
    a = time.perf_counter()
    c.request("POST", "/embed", json.dumps({"texts": [text]}), {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    assert r.status == 200
    lat.append(time.perf_counter() - a)
    time.sleep(0.02)
stop_ev.set()
for t in bg:
    t.join()
lat.sort()
print(f"chat[{TAG}]: one short /embed while 32 chat streams run: p50 {lat[len(lat) // 2] * 1e3:.2f} ms, p90 "
      f"{lat[int(len(lat) * 0.9)] * 1e3:.2f} ms", flush=True)
c.request("GET", "/metrics")
m = c.getresponse().read().decode()
for line in m.splitlines():
    if line.startswith(("ragd_prefix_cache_hit_rate", "ragd_preemptions_total", "ragd_kv_cache_capacity_blocks")):
        print(f"chat[{TAG}]: metrics {line}")
proc.terminate()
proc.wait(timeout=30)
