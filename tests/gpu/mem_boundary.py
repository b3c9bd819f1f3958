# mem_boundary.py — on the GPU machine (issue 18): `ragd serve` with one model as chat + embed + rerank
# (--max-seqs 8 --max-model-len 4096) at --gpu-memory budgets around the boundary of its plan. First a
# budget far too small: its refusal gives the numbers (what the smallest plan needs, what the device
# already holds, the reserve for allocations outside the plans), and so the boundary B in MiB. Then budgets
# B−64, B−4 (must refuse, and say so with numbers), B+4, B+64, B+512, 4 GiB, 8 GiB and the fraction 0.1
# (must start). Each accepted one runs a mixed load for LOAD_S seconds — 8 chat streams of ~3,500-token
# prompts decoding 400 tokens, 2 embed clients (16 × ~400-token texts), 2 rerank clients (50 documents) —
# while device memory is sampled every ~50 ms (per process and whole device, NVML or nvidia-smi) and
# /health/ready is polled. PASS for an accepted budget: the peak of the process and the peak of the device
# less what it held before start both stay ≤ the budget, readiness stayed 200 and no request failed.
# Usage: python3 mem_boundary.py RAGD_BINARY MODEL_DIR   (env RAGD_LIBS, OUT, LOAD_S)
import http.client, json, os, random, re, subprocess, sys, threading, time

ragd, model = sys.argv[1:3]
OUT = os.environ.get("OUT", "/tmp")
LOAD_S = float(os.environ.get("LOAD_S", "8"))
PORT = 18123
env = dict(os.environ)
if os.environ.get("RAGD_LIBS"):
    env["LD_LIBRARY_PATH"] = os.environ["RAGD_LIBS"] + ":" + env.get("LD_LIBRARY_PATH", "")

try:
    import pynvml
    pynvml.nvmlInit()
    _h = pynvml.nvmlDeviceGetHandleByIndex(0)

    def sample():
        """(MiB of the largest compute process, MiB used on the whole device)"""
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(_h)
        p = max([(x.usedGpuMemory or 0) for x in procs], default=0)
        return p / 1048576.0, pynvml.nvmlDeviceGetMemoryInfo(_h).used / 1048576.0
    SAMPLER = "nvml"
except Exception:  # no pynvml: nvidia-smi (slower, ~10 samples/s)
    def sample():
        a = subprocess.run(["nvidia-smi", "--query-compute-apps=used_memory", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True).stdout.split()
        g = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True).stdout.split()
        return max([float(x) for x in a], default=0.0), float(g[0])
    SAMPLER = "nvidia-smi"


def req(method, path, body=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def start(budget):
    log = open(os.path.join(OUT, f"mem_{budget}.log"), "w")
    args = [ragd, "serve", "--chat", model, "--embed", model, "--rerank", model, "--device", "cuda", "--port",
            str(PORT), "--gpu-memory", budget, "--max-seqs", "8", "--max-model-len", "4096", "--http-threads", "16"]
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    t0 = time.time()
    while time.time() - t0 < 90:
        if p.poll() is not None:
            log.close()
            return None, open(log.name).read()
        try:
            if req("GET", "/health/ready", timeout=2)[0] == 200:
                return p, log.name
        except OSError:
            pass
        time.sleep(0.05)
    p.kill()
    p.wait()
    return None, "not ready after 90 s"


def refusal_numbers(text):
    m = re.search(r"the models need ([\d.]+) MiB together.*?less ([\d.]+) MiB already in use.*?less ([\d.]+) MiB kept",
                  text, re.S)
    if not m:
        return None
    need, in_use, reserve = map(float, m.groups())
    return need, in_use, reserve


def load(stop, errors, counts):
    rng = random.Random(5)

    def client(kind, path, body):  # one client: requests of its kind until stopped; non-200s are errors
        while not stop.is_set():
            try:
                st, d = req("POST", path, body())
                counts[kind] += 1
                if st != 200: errors.append(f"{kind} {st} {d[:200]!r}")
            except OSError as e:
                errors.append(f"{kind} {e}")

    def words(prefix, n):
        return " ".join(f"{prefix}{rng.randrange(99999)}" for _ in range(n))

    def chat_body(i):
        return lambda: {"prompt": [rng.randrange(1000, 100000) for _ in range(3400 + 20 * i)], "max_tokens": 400,
                        "temperature": 0, "ignore_eos": True}

    th = [threading.Thread(target=client, args=("chat", "/v1/completions", chat_body(i))) for i in range(8)]
    th += [threading.Thread(target=client, args=("embed", "/embed", lambda: {"texts": [words("w", 200) for _ in range(16)]}))
           for _ in range(2)]
    th += [threading.Thread(target=client, args=("rerank", "/rerank", lambda: {
        "query": "which document names the river?", "documents": [words("d", 60) for _ in range(50)]})) for _ in range(2)]
    for t in th: t.start()
    return th


def run(budget, base, expect):
    p, info = start(budget)
    row = {"budget": budget, "expect": expect}
    if p is None:
        msg = [l for l in info.splitlines() if "MiB" in l and ("need" in l or "holds" in l or "leaves" in l)]
        row.update(state="refused", msg=(msg[-1] if msg else info[-400:]).strip()[:600])
        row["ok"] = expect == "refuse" and bool(msg)
        return row
    txt = open(info).read()
    m = re.search(r"device memory after start: ([\d.]+) MiB .*?in use before the plans ([\d.]+) MiB, plans ([\d.]+) "
                  r"MiB, outside the plans ([\d.]+) MiB", txt)
    if m: row.update(start_dev=float(m[1]), in_use=float(m[2]), plans=float(m[3]), outside=float(m[4]))
    kv = re.search(r"KV cache of \S+: (\d+) blocks .*?= (\d+) tokens", txt)
    if kv: row["kv_tokens"] = int(kv[2])
    stop, errors, counts = threading.Event(), [], {"chat": 0, "embed": 0, "rerank": 0}
    th = load(stop, errors, counts)
    peak_p = peak_d = 0.0
    not_ready = 0
    t0 = time.time()
    last_health = 0.0
    while time.time() - t0 < LOAD_S:
        pp, dd = sample()
        peak_p, peak_d = max(peak_p, pp), max(peak_d, dd)
        if time.time() - last_health > 0.25:
            last_health = time.time()
            try:
                if req("GET", "/health/ready", timeout=5)[0] != 200: not_ready += 1
            except OSError:
                not_ready += 1
        time.sleep(0.05)
    stop.set()
    for t in th: t.join(timeout=120)
    pp, dd = sample()
    peak_p, peak_d = max(peak_p, pp), max(peak_d, dd)
    p.terminate()
    p.wait(timeout=60)
    lim = float(budget[:-1]) if budget.endswith("M") else float(budget[:-1]) * 1024 if budget.endswith("G") else None
    if lim is None: lim = row.get("limit_mib", 0)
    mm = re.search(r"--gpu-memory budget of ([\d.]+) MiB|of the ([\d.]+) MiB budget", txt)
    if mm: lim = float(mm[1] or mm[2])
    row.update(state="ready", limit=lim, peak_proc=peak_p, peak_dev_less_base=peak_d - base, not_ready=not_ready,
               errors=len(errors), first_error=errors[0] if errors else "", counts=dict(counts))
    row["ok"] = (expect == "start" and peak_p <= lim and peak_d - base <= lim and not errors and not not_ready
                 and counts["chat"] > 0)
    return row


def main():
    _, base = sample()
    print(f"sampler {SAMPLER}; device memory used before any start: {base:.0f} MiB", flush=True)
    nums = None
    for probe in ("2048M", "3072M", "1536M"):
        p, info = start(probe)
        if p is not None:
            p.terminate(); p.wait()
            continue
        nums = refusal_numbers(info)
        if nums: break
        print(f"probe {probe}: {info.strip().splitlines()[-1][:300] if info.strip() else ''}")
    if not nums:
        print("FAIL: no refusal with numbers to find the boundary")
        return 1
    need, in_use, reserve = nums
    B = need + in_use + reserve
    print(f"boundary: smallest plan {need:.1f} MiB + in use {in_use:.1f} MiB + reserve {reserve:.1f} MiB = {B:.1f} MiB",
          flush=True)
    b = int(B)
    cases = [(f"{b - 64}M", "refuse"), (f"{b - 4}M", "refuse"), (f"{b + 4}M", "start"), (f"{b + 64}M", "start"),
             (f"{b + 512}M", "start"), ("4G", "start"), ("8G", "start"), ("0.1", "start")]
    rows = []
    for bud, ex in cases:
        r = run(bud, base, ex)
        rows.append(r)
        print(json.dumps(r), flush=True)
        time.sleep(1)
    print("\n== mem_boundary (MiB; peaks under load, device peak less the %.0f MiB held before start)" % base)
    print(f"{'budget':>8} {'expect':>6} {'state':>8} {'in use':>7} {'plans':>8} {'outside':>7} {'kv tok':>7} "
          f"{'peak proc':>9} {'peak dev':>9} {'reqs c/e/r':>11} {'err':>3}  verdict")
    for r in rows:
        if r["state"] == "refused":
            print(f"{r['budget']:>8} {r['expect']:>6} {'refused':>8}  {'PASS' if r['ok'] else 'FAIL'}: {r['msg'][:230]}")
        else:
            c = r["counts"]
            print(f"{r['budget']:>8} {r['expect']:>6} {'ready':>8} {r.get('in_use', 0):7.0f} {r.get('plans', 0):8.0f} "
                  f"{r.get('outside', 0):7.0f} {r.get('kv_tokens', 0):7d} {r['peak_proc']:9.0f} "
                  f"{r['peak_dev_less_base']:9.0f} {c['chat']:>3}/{c['embed']}/{c['rerank']:<4} {r['errors']:>3}  "
                  f"{'PASS' if r['ok'] else 'FAIL'} (limit {r['limit']:.0f})")
    bad = [r for r in rows if not r["ok"]]
    print("mem_boundary:", "PASS" if not bad else f"FAIL ({len(bad)} of {len(rows)})")
    return 1 if bad else 0


sys.exit(main())
