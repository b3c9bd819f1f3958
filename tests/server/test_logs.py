"""--log-format json: every stderr line is a JSON object {ts, level, msg} (also the refusal at exit), and
one access line per request (id, method, endpoint, status, tokens, ms). The escaping of control bytes
and invalid UTF-8 is checked in tests/unit/test_common.c."""
import json
import re
import subprocess

from conftest import BIN, EMBED, CHAT, start


def parse_lines(text):
    out = []
    for line in text.splitlines():
        o = json.loads(line)  # raises on any line that is not JSON
        assert set(o) == {"ts", "level", "msg"}, o
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]), o
        assert o["level"] in ("debug", "info", "warn", "error"), o
        out.append(o)
    return out


def test_json_logs_and_access_lines():
    s = start(["--embed", EMBED, "--chat", CHAT, "--max-model-len", "256", "--log-format", "json"])
    try:
        r = s.post("/embed", {"texts": ["a b c"]}, headers={"X-Request-Id": "emb-1"})
        assert r.status_code == 200
        r = s.post("/v1/completions", {"prompt": "hi", "max_tokens": 4, "ignore_eos": True},
                   headers={"X-Request-Id": "gen-1"})
        assert r.status_code == 200
        u = r.json()["usage"]
        r = s.post("/embed", {"texts": "nope"}, headers={"X-Request-Id": "bad-1"})
        assert r.status_code == 400
    finally:
        assert s.stop() == 0
    lines = parse_lines(s.log())
    acc = {m.group(1): m.group(0) for o in lines if (m := re.match(r"access id=(\S+) .*", o["msg"]))}
    assert re.fullmatch(r"access id=emb-1 method=POST endpoint=/embed status=200 prompt_tokens=\d+ "
                        r"completion_tokens=0 ms=[\d.]+ queue_ms=[\d.]+ compute_ms=[\d.]+", acc["emb-1"]), acc
    assert (f"method=POST endpoint=/v1/completions status=200 prompt_tokens={u['prompt_tokens']} "
            f"completion_tokens={u['completion_tokens']} ") in acc["gen-1"], acc
    g = re.search(r" ms=([\d.]+) queue_ms=([\d.]+) prefill_ms=([\d.]+) decode_ms=([\d.]+) ttft_ms=([\d.]+)$", acc["gen-1"])
    assert g, acc["gen-1"]
    total, queue, prefill, decode, ttft = map(float, g.groups())
    assert prefill > 0 and decode > 0 and ttft >= prefill - 0.01 and queue + prefill + decode <= total + 0.01, acc["gen-1"]
    assert "queue_ms" not in acc["bad-1"]  # refused before the scheduler
    assert "status=400" in acc["bad-1"]
    assert any(o["msg"] == "stopped" for o in lines)


def test_json_refusal_is_json():
    p = subprocess.run([BIN, "serve", "--port", "0", "--device", "cpu", "--embed", "/nonexistent/model",
                        "--log-format", "json"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    lines = parse_lines(p.stderr)
    assert any(o["level"] == "error" and o["msg"].startswith("ragd serve: ") and "/nonexistent/model" in o["msg"]
               for o in lines), lines
