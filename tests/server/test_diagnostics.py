"""/diagnostics (issue 15): library versions, and the sha256 of every weight file computed by a background
thread after readiness — "pending" until done, never delaying /health/ready or a request — compared with
Python's hashlib, for a one-file model and for a model split into two safetensors shards."""
import hashlib
import json
import os
import platform
import re
import shutil
import struct
import time

from conftest import CHAT, EMBED, start

FAKE = os.environ.get("RAGD_FAKE_NVML", "")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shard_copy(src, dst):
    """A copy of the model folder src with its model.safetensors split into two shards + the index."""
    os.makedirs(dst)
    for name in os.listdir(src):
        if os.path.isdir(os.path.join(src, name)):
            shutil.copytree(os.path.join(src, name), os.path.join(dst, name))
        elif name != "model.safetensors":
            shutil.copy(os.path.join(src, name), dst)
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    names = sorted(k for k in header if k != "__metadata__")
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, tensors in halves.items():
        h, blob = {}, b""
        for t in tensors:
            a, b = header[t]["data_offsets"]
            h[t] = dict(header[t], data_offsets=[len(blob), len(blob) + b - a])
            blob += data[a:b]
            weight_map[t] = shard
        hj = json.dumps(h).encode()
        hj += b" " * (-len(hj) % 8)
        with open(os.path.join(dst, shard), "wb") as f:
            f.write(struct.pack("<Q", len(hj)) + hj + blob)
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": len(data)}, "weight_map": weight_map}, f)
    return sorted(halves)


def diag(s):
    r = s.get("/diagnostics")
    assert r.status_code == 200, r.text
    return r.json()


def test_weight_digests_in_background(tmp_path):
    chat = str(tmp_path / "qwen3-sharded")
    shards = shard_copy(CHAT, chat)
    # the test hook holds every file back 1.5 s: the digests are still pending when the server is ready
    s = start(["--embed", EMBED, "--chat", chat, "--max-model-len", "128"], env={"RAGD_TEST_DIGEST_DELAY_MS": "1500"})
    try:
        t0 = time.time()
        assert s.get("/health/ready").status_code == 200
        d = diag(s)
        w = {m["name"]: m["weights"] for m in d["models"]}
        assert w["qwen3-embed-tiny"] == [{"file": "model.safetensors", "bytes": os.path.getsize(EMBED + "/model.safetensors"),
                                          "sha256": "pending"}], w
        assert [x["file"] for x in w["qwen3-sharded"]] == shards and all(x["sha256"] == "pending" for x in w["qwen3-sharded"])
        # requests are served meanwhile, without waiting for the digests
        r = s.post("/v1/embeddings", {"input": "hello"})
        assert r.status_code == 200 and time.time() - t0 < 1.4, (r.status_code, time.time() - t0)
        deadline = time.time() + 30
        while any(x["sha256"] == "pending" for m in diag(s)["models"] for x in m["weights"]):
            assert time.time() < deadline, diag(s)["models"]
            time.sleep(0.1)
        got = {(m["name"], x["file"]): (x["sha256"], x["bytes"]) for m in diag(s)["models"] for x in m["weights"]}
        want = {("qwen3-embed-tiny", "model.safetensors"): EMBED + "/model.safetensors"}
        want.update({("qwen3-sharded", f): os.path.join(chat, f) for f in shards})
        assert set(got) == set(want), got
        for k, path in want.items():
            assert got[k] == (sha256(path), os.path.getsize(path)), (k, got[k])
        assert re.search(r"weight digests: 3 files, [\d.]+ MiB hashed \(sha256\)", s.log())
    finally:
        assert s.stop() == 0


def test_stop_while_hashing():
    # SIGTERM while the digest thread still waits: it stops at once, the exit stays clean
    s = start(["--embed", EMBED], env={"RAGD_TEST_DIGEST_DELAY_MS": "60000"})
    t0 = time.time()
    assert s.stop() == 0
    assert time.time() - t0 < 10
    assert "weight digests:" not in s.log()


def test_versions():
    args = ["--embed", EMBED, "--nvml-lib", FAKE] if FAKE else ["--embed", EMBED, "--nvml-lib", "off"]
    s = start(args)
    try:
        v = diag(s)["versions"]
        m = s.get("/metrics").text
    finally:
        assert s.stop() == 0
    assert set(v) == {"ragd", "commit", "glibc", "libmicrohttpd", "jansson", "utf8proc", "pcre2", "libyaml", "libcurl",
                      "openssl", "cuda_toolkit", "cuda_runtime", "cublaslt", "nvidia_driver", "cuda_driver"}, v
    info = re.search(r'^ragd_build_info\{version="([^"]*)",commit="([^"]*)",build_type="[^"]*",cuda="(\w+)"', m, re.M)
    assert info and v["ragd"] == info.group(1) and v["commit"] == info.group(2), (v, info)
    assert platform.libc_ver()[0] == "glibc" and v["glibc"] == platform.libc_ver()[1], v
    for k in ("libmicrohttpd", "jansson", "utf8proc", "libyaml", "libcurl"):
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", v[k]), (k, v[k])
    assert re.match(r"\d+\.\d+ ", v["pcre2"]) and re.match(r"OpenSSL \d+\.\d+\.\d+", v["openssl"]), v
    if info.group(3) == "true":  # the loaded CUDA libraries report themselves (no GPU or driver needed)
        assert re.fullmatch(r"\d+\.\d+\.\d+", v["cuda_toolkit"]), v
        major_minor = ".".join(v["cuda_toolkit"].split(".")[:2])
        assert v["cuda_runtime"] == major_minor, v  # the runtime of the build's toolkit (13.0 with 13.0.48)
        assert re.fullmatch(r"\d+\.\d+\.\d+", v["cublaslt"]) and v["cublaslt"].split(".")[0] == major_minor.split(".")[0], v
    else:
        assert v["cuda_toolkit"] is None and v["cuda_runtime"] is None and v["cublaslt"] is None, v
    if FAKE:  # the fake NVML's driver and CUDA version (12060 → "12.6")
        assert v["nvidia_driver"] == "560.35.03" and v["cuda_driver"] == "12.6", v
    else:
        assert v["nvidia_driver"] is None and v["cuda_driver"] is None, v


def wait_digests(s):
    deadline = time.time() + 30
    while any(x["sha256"] == "pending" for m in diag(s)["models"] for x in m["weights"]):
        assert time.time() < deadline, diag(s)["models"]
        time.sleep(0.1)


def test_tei_info_model_sha(tmp_path):
    # TEI's /info "model_sha": null + "pending" while the digest runs, then the weight file's sha256 (one file) ...
    s = start(["--embed", EMBED], env={"RAGD_TEST_DIGEST_DELAY_MS": "1500"})
    try:
        i = s.get("/info").json()
        assert i["model_sha"] is None and i["model_sha_status"] == "pending", i
        wait_digests(s)
        i = s.get("/info").json()
        assert i["model_sha"] == sha256(EMBED + "/model.safetensors") and i["model_sha_status"] == "done", i
    finally:
        assert s.stop() == 0
    # ... or, for several files, the sha256 of their `sha256sum` listing ("<hex>  <file>\n", /diagnostics order)
    emb = str(tmp_path / "embed-sharded")
    shards = shard_copy(EMBED, emb)
    s = start(["--embed", emb])
    try:
        wait_digests(s)
        listing = "".join("%s  %s\n" % (sha256(os.path.join(emb, f)), f) for f in shards)
        w = diag(s)["models"][0]["weights"]
        assert [x["file"] for x in w] == shards and [x["sha256"] for x in w] == [sha256(os.path.join(emb, f)) for f in shards]
        i = s.get("/info").json()
        assert i["model_sha"] == hashlib.sha256(listing.encode()).hexdigest(), (i, listing)
        assert i["model_sha"] not in [x["sha256"] for x in w] and len(i["model_sha"]) == 64
        assert i["model_id"] == "embed-sharded" and i["model_sha_status"] == "done"
    finally:
        assert s.stop() == 0
