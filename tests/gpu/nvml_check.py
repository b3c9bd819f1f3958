# nvml_check.py — NVML telemetry and GPU health on a real GPU (issue 15), two runs of `ragd serve --device cuda`:
#  1. with the real libnvidia-ml.so.1: /diagnostics says "nvml": "ok", binds cuda:0 to an NVML GPU, and that
#     GPU's process_bytes (this server's device memory) is > 0; /metrics has the ragd_gpu_* series (promtool
#     when installed); prints the real NVML numbers of the bound GPU as a JSON line (to be recorded);
#  2. with the fake NVML (build/tests/server/libfake_nvml.so) and a control file raising GPU 0's uncorrectable
#     ECC count: /health/ready turns 503 within 3 s with the reason naming the GPU and the fault, and a request
#     to the model answers 503 model_not_ready — the wiring the CPU suite cannot run (its models are on the CPU).
# Usage: python3 nvml_check.py RAGD MODEL FAKE_NVML_LIB PORT   (exit 0 when every check passed)
import json, os, shutil, subprocess, sys, tempfile, time, urllib.request

ragd, model, fake, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = f"http://127.0.0.1:{port}"
failures = []


def call(path, body=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read().decode()
            return r.status, data
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def serve(env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    p = subprocess.Popen([ragd, "serve", "--embed", model, "--device", "cuda", "--port", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    for _ in range(1200):
        if p.poll() is not None:
            break
        try:
            if call("/health/ready")[0] == 200:
                return p
        except Exception:
            pass
        time.sleep(0.1)
    p.kill()
    raise SystemExit("server did not become ready:\n" + p.communicate()[1].decode(errors="replace")[-3000:])


def stop(p):
    p.terminate()
    try:
        return p.communicate(timeout=30)[1].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        return ""


# 1. the real NVML
p = serve({})
call("/v1/embeddings", {"input": ["warm the device up"]})
d = json.loads(call("/diagnostics")[1])
check(d.get("nvml") == "ok", "nvml: %r" % d.get("nvml"))
binding = d["device"].get("gpu_health", "")
check(binding.startswith("cuda:0 is NVML GPU "), "gpu_health: %r" % binding)
idx = int(binding.split("NVML GPU ")[1].split()[0]) if binding.startswith("cuda:0 is NVML GPU ") else 0
g = d["gpus"][idx] if len(d.get("gpus", [])) > idx else {}
check(g.get("health") == "ok", "health: %r %r" % (g.get("health"), g.get("fault")))
check((g.get("memory", {}).get("process_bytes") or 0) > 0, "process_bytes: %r" % g.get("memory"))
metrics = call("/metrics")[1]
for name in ("ragd_gpu_nvml_up 1", "ragd_gpu_info{", "ragd_gpu_utilization_ratio{", "ragd_gpu_memory_used_bytes{",
             "ragd_gpu_power_watts{", "ragd_gpu_temperature_celsius{", "ragd_gpu_sm_clock_hertz{"):
    check(name in metrics, "metrics lack " + name)
promtool = shutil.which("promtool")
if promtool:
    r = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True)
    check(r.returncode == 0, "promtool: " + r.stdout + r.stderr)
print(json.dumps({"real_nvml": {"gpu_health": binding, "xid_events": d.get("xid_events"), "gpu": g,
                                "promtool": "ok" if promtool else "not installed"}}))
log = stop(p)
check("NVML: driver" in log, "no NVML line in the log")

# 2. the fake NVML: an uncorrectable ECC error on the models' GPU
vis = os.environ.get("CUDA_VISIBLE_DEVICES", "")
if vis and not vis.split(",")[0].strip().isdigit():
    failures.append("phase 2 needs CUDA_VISIBLE_DEVICES unset or an index (the fake's GPU 0), not %r" % vis)
else:
    ctl = tempfile.NamedTemporaryFile("w", suffix=".ctl", delete=False)
    ctl.close()
    p = serve({"RAGD_NVML_LIB": fake, "FAKE_NVML_CONTROL": ctl.name, "CUDA_VISIBLE_DEVICES": vis or "0"})
    with open(ctl.name, "w") as f:
        f.write("ecc 0 4\n")
    t0 = time.time()
    st, body = call("/health/ready")
    while st == 200 and time.time() - t0 < 5:
        time.sleep(0.1)
        st, body = call("/health/ready")
    dt, ready_st = time.time() - t0, st
    check(st == 503 and dt < 3, "/health/ready %d after %.1f s: %s" % (st, dt, body[:300]))
    check("GPU 0 is unhealthy: uncorrectable ECC errors rose from 0 at start to 4" in body, "/health/ready: " + body[:300])
    st, body = call("/v1/embeddings", {"input": ["after the fault"]})
    check(st == 503 and "model_not_ready" in body and "unhealthy" in body, "embedding after the fault: %d %s" % (st, body[:300]))
    log = stop(p)
    check("is UNHEALTHY: uncorrectable ECC errors rose from 0 at start to 4" in log, "no UNHEALTHY line in the log")
    check("is not ready any more: device error: GPU 0 is unhealthy" in log, "no not-ready line in the log")
    print(json.dumps({"fake_nvml_fault": {"ready_status": ready_st, "seconds": round(dt, 2)}}))
    os.unlink(ctl.name)

print(json.dumps({"ok": not failures, "failures": failures}))
sys.exit(1 if failures else 0)
