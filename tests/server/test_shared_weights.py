"""Issue 18: roles given identical weights in different folders share one model, one engine and one copy of
the weights (files compared by name, size and sha256); a copy that differs in one byte does not."""
import os
import shutil

from conftest import CHAT, EMBED, start


def test_identical_copy_shares_one_engine(tmp_path):
    copy = tmp_path / "embed-copy"
    shutil.copytree(EMBED, copy)
    s = start(["--embed", EMBED, "--rerank", str(copy), "--max-model-len", "256"])
    try:
        d = s.get("/diagnostics").json()
        log = s.log()
        assert "holds the same files as --embed" in log, log[-3000:]
        models = d["models"] if isinstance(d.get("models"), list) else list(d["models"].values())
        assert len(models) == 1, d  # one served model (one engine) for both roles
        m = models[0]
        assert set(m["tasks"]) == {"embed", "rerank"}, m
        assert m["sources"] == {"embed": EMBED, "rerank": str(copy)}, m["sources"]
        # both roles answer, from the one engine
        assert s.post("/embed", {"texts": ["hello"]}).status_code == 200
        r = s.post("/rerank", {"query": "q", "documents": ["a", "b"]})
        assert r.status_code == 200, r.text
    finally:
        assert s.stop() == 0


def test_copy_with_one_byte_changed_is_another_model(tmp_path):
    copy = tmp_path / "chat-copy"
    shutil.copytree(CHAT, copy)
    st = [f for f in os.listdir(copy) if f.endswith(".safetensors")][0]
    with open(copy / st, "r+b") as f:  # flip one bit near the end (tensor data, not the header)
        f.seek(-3, os.SEEK_END)
        b = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([b[0] ^ 1]))
    s = start(["--embed", CHAT, "--chat", str(copy), "--served-name", "chat-copy", "--max-model-len", "256"])
    try:
        d = s.get("/diagnostics").json()
        models = d["models"] if isinstance(d.get("models"), list) else list(d["models"].values())
        assert len(models) == 2, d
        assert "holds the same files" not in s.log()
    finally:
        assert s.stop() == 0
