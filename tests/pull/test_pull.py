"""`ragd pull` against tools/hub_fake_server.py on loopback: success, idempotence, resume (in the same
run and on the next one), sha mismatch, the hub's error statuses, network failure, GGUF selection.

Environment: RAGD_BIN (the ragd binary), RAGD_SRC (the checkout; fixtures come from tests/gguf/fixtures).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

SRC = os.environ.get("RAGD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("RAGD_BIN", os.path.join(SRC, "build", "ragd"))
SERVER = os.path.join(SRC, "tools", "hub_fake_server.py")
FIX = os.path.join(SRC, "tests", "gguf", "fixtures")
TOKEN = "hf_fake_token_123"

TINY = ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "modules.json",
        "1_Pooling/config.json"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("hub")
    tiny = r / "acme" / "tiny"
    tiny.mkdir(parents=True)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"):
        shutil.copy(os.path.join(FIX, "llama", "hf", f), tiny / f)
    (tiny / "README.md").write_text("# tiny\n")
    (tiny / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tiny / "1_Pooling").mkdir()
    (tiny / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True, "include_prompt": True}))
    (tiny / "extra").mkdir()
    (tiny / "extra" / "other.bin").write_bytes(os.urandom(1000))
    shutil.copytree(tiny, r / "acme" / "private")
    shutil.copytree(tiny, r / "acme" / "gated")
    g = r / "acme" / "ggufs"
    g.mkdir()
    shutil.copy(os.path.join(FIX, "llama", "f32.gguf"), g / "tiny-f32.gguf")
    shutil.copy(os.path.join(FIX, "llama", "q.gguf"), g / "tiny-q.gguf")
    (g / "README.md").write_text("# ggufs\n")
    one = r / "acme" / "onegguf"
    one.mkdir()
    shutil.copy(os.path.join(FIX, "llama", "q.gguf"), one / "tiny-q.gguf")
    return r


class Server:
    def __init__(self, root, tmp, *args):
        self.log = tmp / "requests.jsonl"
        self.proc = subprocess.Popen([sys.executable, SERVER, "--root", str(root), "--token", TOKEN, "--private",
                                      "acme/private", "--gated", "acme/gated", "--log", str(self.log), *args],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.endpoint = "http://127.0.0.1:%d" % int(line.split()[1])

    def requests(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines()]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def serve(root, tmp_path):
    servers = []

    def start(*args):
        s = Server(root, tmp_path, *args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def pull(srv, spec, dest, *args, token=None, retries=None, endpoint=None):
    env = dict(os.environ)
    env.pop("HF_TOKEN", None)
    env.pop("HUGGING_FACE_HUB_TOKEN", None)
    env["HF_ENDPOINT"] = endpoint or srv.endpoint
    if token:
        env["HF_TOKEN"] = token
    if retries is not None:
        env["RAGD_PULL_RETRIES"] = str(retries)
    return subprocess.run([BIN, "pull", spec, "--dir", str(dest), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def same(a, b):
    return open(a, "rb").read() == open(b, "rb").read()


def no_parts(d):
    return [os.path.join(b, n) for b, _, ns in os.walk(d) for n in ns if n.endswith(".part")] == []


def test_success_and_idempotent(serve, root, tmp_path):
    s = serve()
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(d)
    for f in TINY:
        assert same(d / f, root / "acme" / "tiny" / f), f
    assert not (d / "README.md").exists() and not (d / "extra").exists()
    assert no_parts(d)
    assert "model.safetensors: 117336 bytes, sha256 verified" in p.stderr
    # the pulled folder is a loadable model
    i = subprocess.run([BIN, "inspect", "--model", p.stdout.strip()], capture_output=True, text=True, timeout=60)
    assert i.returncode == 0 and "architecture   llama" in i.stdout, i.stdout + i.stderr
    assert "config.json: %d bytes, git sha1 verified" % os.path.getsize(d / "config.json") in p.stderr
    reqs = s.requests()
    commit = hashlib.sha1(b"acme/tiny").hexdigest()
    assert reqs[0]["path"] == "/api/models/acme/tiny/revision/main"
    resolves = [r["path"] for r in reqs if "/resolve/" in r["path"]]
    assert len(resolves) == len(TINY) and all("/resolve/%s/" % commit in r for r in resolves)
    assert any(r["path"].startswith("/cdn/acme/tiny/model.safetensors") for r in reqs)
    # again: everything verified in place, nothing downloaded
    n = len(reqs)
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("up to date") == len(TINY)
    assert [r for r in s.requests()[n:] if "/resolve/" in r["path"] or "/cdn/" in r["path"]] == []


def test_token_not_sent_to_cdn(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/tiny", tmp_path / "out", token=TOKEN)
    assert p.returncode == 0, p.stderr
    reqs = s.requests()
    assert all(r["auth"] == "Bearer " + TOKEN for r in reqs if not r["path"].startswith("/cdn/"))
    cdn = [r for r in reqs if r["path"].startswith("/cdn/")]
    assert cdn and all(r["auth"] is None for r in cdn)


def test_resume_in_same_run(serve, root, tmp_path):
    s = serve("--fail", "model.safetensors:drop_once")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 0, p.stderr
    assert same(d / "model.safetensors", root / "acme" / "tiny" / "model.safetensors")
    cdn = [r for r in s.requests() if r["path"].startswith("/cdn/acme/tiny/model.safetensors")]
    assert len(cdn) == 2 and cdn[0]["range"] is None
    assert cdn[1]["range"] == "bytes=%d-" % (117336 // 2), cdn
    assert "retrying (1/3)" in p.stderr and "resuming at byte 58668" in p.stderr
    assert no_parts(d)


def test_resume_next_run(serve, root, tmp_path):
    s = serve("--fail", "model.safetensors:drop_once")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d, retries=0)
    assert p.returncode == 1
    assert "model.safetensors.part is kept: running the same pull again resumes it" in p.stderr, p.stderr
    assert not (d / "model.safetensors").exists()
    assert os.path.getsize(d / "model.safetensors.part") == 117336 // 2
    p = pull(s, "acme/tiny", d, retries=0)
    assert p.returncode == 0, p.stderr
    assert same(d / "model.safetensors", root / "acme" / "tiny" / "model.safetensors")
    assert s.requests()[-1]["range"] == "bytes=58668-" or any(
        r["range"] == "bytes=58668-" for r in s.requests())
    assert no_parts(d)


def test_server_ignores_range(serve, root, tmp_path):
    s = serve("--fail", "model.safetensors:drop_once", "--fail", "model.safetensors:no_range")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 0, p.stderr
    assert same(d / "model.safetensors", root / "acme" / "tiny" / "model.safetensors")


def test_truncated_every_time(serve, tmp_path):
    s = serve("--fail", "model.safetensors:drop_always")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d, retries=1)
    assert p.returncode == 1
    assert "acme/tiny@main: file 'model.safetensors': transfer failed" in p.stderr, p.stderr
    assert not (d / "model.safetensors").exists()


def test_sha_mismatch_lfs(serve, tmp_path):
    s = serve("--fail", "model.safetensors:wrong_sha")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 1
    assert "file 'model.safetensors': verification failed (sha256 mismatch: expected" in p.stderr, p.stderr
    assert "the download was removed" in p.stderr
    assert not (d / "model.safetensors").exists() and not (d / "model.safetensors.part").exists()


def test_sha_mismatch_git_file(serve, tmp_path):
    s = serve("--fail", "config.json:wrong_sha")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 1
    assert "file 'config.json': verification failed (git blob sha1 mismatch" in p.stderr, p.stderr
    assert not (d / "config.json").exists() and not (d / "config.json.part").exists()


def test_sha_from_headers(serve, root, tmp_path):
    s = serve("--fail", "model.safetensors:no_lfs_info", "--fail", "config.json:no_lfs_info")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 0, p.stderr
    assert "model.safetensors: 117336 bytes, sha256 verified" in p.stderr  # from X-Linked-Etag
    assert "config.json: %d bytes, git sha1 verified" % os.path.getsize(d / "config.json") in p.stderr  # ETag


def test_local_copy_differs(serve, root, tmp_path):
    s = serve()
    d = tmp_path / "out"
    assert pull(s, "acme/tiny", d).returncode == 0
    (d / "config.json").write_text("{}")
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 0, p.stderr
    assert "config.json: local copy differs" in p.stderr
    assert same(d / "config.json", root / "acme" / "tiny" / "config.json")


def test_flaky_server(serve, tmp_path):
    s = serve("--fail", "config.json:flaky_once")
    p = pull(s, "acme/tiny", tmp_path / "out")
    assert p.returncode == 0, p.stderr
    assert "config.json: server error after 0 new bytes; retrying (1/3)" in p.stderr


def test_401_without_token(serve, tmp_path):
    s = serve()
    d = tmp_path / "out"
    p = pull(s, "acme/private", d)
    assert p.returncode == 1
    assert "acme/private@main: 401 Unauthorized" in p.stderr and "set HF_TOKEN" in p.stderr, p.stderr
    assert not (d / "config.json").exists()


def test_401_bad_token(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/private", tmp_path / "out", token="hf_wrong")
    assert p.returncode == 1
    assert "401 Unauthorized: HF_TOKEN was rejected" in p.stderr, p.stderr


def test_private_with_token(serve, root, tmp_path):
    s = serve()
    d = tmp_path / "out"
    p = pull(s, "acme/private", d, token=TOKEN)
    assert p.returncode == 0, p.stderr
    assert same(d / "model.safetensors", root / "acme" / "private" / "model.safetensors")


def test_403_gated(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/gated", tmp_path / "out", token=TOKEN)
    assert p.returncode == 1
    assert "403 Forbidden: the repository is gated" in p.stderr and "HF_TOKEN" in p.stderr, p.stderr


def test_404_repo(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/nope", tmp_path / "out", token=TOKEN)
    assert p.returncode == 1
    assert "acme/nope@main: 404: repository not found on http://127.0.0.1" in p.stderr, p.stderr


def test_404_revision(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/tiny@nope", tmp_path / "out")
    assert p.returncode == 1
    assert "acme/tiny@nope: 404: revision not found" in p.stderr, p.stderr


def test_404_file(serve, tmp_path):
    s = serve("--fail", "config.json:status=404")
    d = tmp_path / "out"
    p = pull(s, "acme/tiny", d)
    assert p.returncode == 1
    assert "acme/tiny@main: file 'config.json': 404: file not found" in p.stderr, p.stderr
    assert not (d / "config.json").exists() and not (d / "config.json.part").exists()


def test_revision_tag(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/tiny@v1.0", tmp_path / "out", "--include", "config.json")
    assert p.returncode == 0, p.stderr
    assert s.requests()[0]["path"] == "/api/models/acme/tiny/revision/v1.0"
    assert os.listdir(tmp_path / "out") == ["config.json"]


def test_network_failure(tmp_path):
    class NoServer:
        endpoint = "http://127.0.0.1:9"  # discard port: nothing listens on loopback
    p = pull(NoServer, "acme/tiny", tmp_path / "out")
    assert p.returncode == 1
    assert "acme/tiny@main: network error talking to http://127.0.0.1:9" in p.stderr, p.stderr


def test_gguf_choice(serve, root, tmp_path):
    s = serve()
    d = tmp_path / "out"
    p = pull(s, "acme/ggufs", d)
    assert p.returncode == 1
    assert "acme/ggufs@main has 2 .gguf files and no safetensors; choose one with --include" in p.stderr, p.stderr
    assert "tiny-f32.gguf" in p.stderr and "tiny-q.gguf" in p.stderr
    p = pull(s, "acme/ggufs", d, "--include", "*-q.gguf")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(d / "tiny-q.gguf")
    assert os.listdir(d) == ["tiny-q.gguf"]
    i = subprocess.run([BIN, "inspect", "--model", p.stdout.strip()], capture_output=True, text=True, timeout=60)
    assert i.returncode == 0 and "Q4_1" in i.stdout, i.stdout + i.stderr
    assert same(d / "tiny-q.gguf", root / "acme" / "ggufs" / "tiny-q.gguf")


def test_single_gguf(serve, tmp_path):
    s = serve()
    d = tmp_path / "out"
    p = pull(s, "acme/onegguf", d)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(d / "tiny-q.gguf")


def test_include_matches_nothing(serve, tmp_path):
    s = serve()
    p = pull(s, "acme/tiny", tmp_path / "out", "--include", "*.onnx")
    assert p.returncode == 1
    assert "acme/tiny@main: no file matches --include '*.onnx'" in p.stderr, p.stderr


def test_bad_repo_id(tmp_path):
    p = subprocess.run([BIN, "pull", "../etc", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "'../etc' is not a repository id" in p.stderr


def test_default_dir(serve, tmp_path):
    s = serve()
    env = dict(os.environ, HF_ENDPOINT=s.endpoint, RAGD_CACHE=str(tmp_path / "cache"))
    env.pop("HF_TOKEN", None)
    p = subprocess.run([BIN, "pull", "acme/tiny", "--include", "config.json"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(tmp_path / "cache" / "models" / "acme--tiny")
    assert (tmp_path / "cache" / "models" / "acme--tiny" / "config.json").exists()
