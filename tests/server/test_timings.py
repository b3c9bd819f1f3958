"""Per-request timing (issue 15): queue / prefill / decode / time to first token measured by the scheduler, in
the `timings` object of chat and completion replies (non-streamed, and the last chunk of a stream) and in the
ragd_request_*_seconds histograms; embed / rerank queue and compute times; the model label of the per-request
series. Every forward pass is slowed by RAGD_FAULT=<role>:slow:N so that the times have known lower bounds."""
import json
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import requests

from conftest import CHAT, EMBED, RERANK, start

SLOW_MS = 40  # every chat step (or embed pass) takes at least this much longer


def series(text, name):
    """{labels-string: value} of every sample of `name` (labels as written, without braces)."""
    out = {}
    for m in re.finditer(r"^%s(?:\{([^}]*)\})? (\S+)$" % re.escape(name), text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


def sse_chunks(resp):
    chunks = []
    for line in resp.iter_lines(decode_unicode=True):
        if not line:
            continue
        assert line.startswith("data: "), line
        if line == "data: [DONE]":
            chunks.append("[DONE]")
        else:
            chunks.append(json.loads(line[6:]))
    return chunks


def check_timings(t, prompt_tokens, completion_tokens, steps):
    """A timings object of a request that generated `completion_tokens` tokens in `steps` decode steps after the
    first token, each step ≥ SLOW_MS."""
    assert set(t) == {"prompt_n", "cache_n", "prompt_ms", "prompt_per_token_ms", "prompt_per_second", "predicted_n",
                      "predicted_ms", "predicted_per_token_ms", "predicted_per_second", "queue_ms", "ttft_ms",
                      "total_ms"}, t
    assert t["prompt_n"] + t["cache_n"] == prompt_tokens, t
    assert t["predicted_n"] == completion_tokens, t
    assert t["prompt_ms"] >= SLOW_MS * 0.95, t  # the prefill is one slowed step
    assert t["predicted_ms"] >= steps * SLOW_MS * 0.95, t
    assert t["ttft_ms"] >= t["prompt_ms"] + t["queue_ms"] - 0.01, t  # arrival ≤ submit ≤ admission
    assert abs(t["total_ms"] - (t["ttft_ms"] + t["predicted_ms"])) < 0.05, t
    assert abs(t["prompt_per_token_ms"] * t["prompt_n"] - t["prompt_ms"]) < 0.01 * t["prompt_ms"] + 0.01, t
    assert abs(t["predicted_per_second"] * t["predicted_ms"] / 1e3 - t["predicted_n"]) < 0.01 * t["predicted_n"], t


def test_chat_timings_and_histograms():
    # two sequence slots: of three requests at once, one waits in the queue while the others generate
    s = start(["--chat", CHAT, "--max-model-len", "256", "--max-seqs", "2", "--served-name", "tchat"],
              env={"RAGD_FAULT": "chat:slow:%d" % SLOW_MS})
    try:
        body = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4, "ignore_eos": True,
                "temperature": 0}
        with ThreadPoolExecutor(3) as ex:
            rs = list(ex.map(lambda _: s.post("/v1/chat/completions", body), range(3)))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
        ts = sorted((r.json()["timings"] for r in rs), key=lambda t: t["queue_ms"])
        u = rs[0].json()["usage"]
        for t in ts:
            check_timings(t, u["prompt_tokens"], 4, 3)
        # the last one waited for another's 4 steps; the first went in at once, the second at most a step later
        assert ts[2]["queue_ms"] >= 3 * SLOW_MS, ts
        assert ts[0]["queue_ms"] < SLOW_MS and ts[1]["queue_ms"] < 2.5 * SLOW_MS, ts

        # /v1/completions too, and the OpenAI client keeps it as an extra field
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="x")
        comp = c.completions.create(model="tchat", prompt="abc", max_tokens=3, extra_body={"ignore_eos": True})
        check_timings(comp.model_extra["timings"], comp.usage.prompt_tokens, 3, 2)
        n_requests = 4

        # a stream: only the last chunk before [DONE] carries timings (here the finish_reason chunk)
        r = requests.post(s.url + "/v1/chat/completions", json=dict(body, stream=True), stream=True, timeout=30)
        ch = sse_chunks(r)
        assert ch[-1] == "[DONE]"
        assert [i for i, c in enumerate(ch[:-1]) if "timings" in c] == [len(ch) - 2], ch
        assert ch[-2]["choices"][0]["finish_reason"] == "length"
        check_timings(ch[-2]["timings"], u["prompt_tokens"], 4, 3)
        # with include_usage: the usage chunk (choices []) is the last one, with the timings; n = 2 choices
        r = requests.post(s.url + "/v1/chat/completions", stream=True, timeout=30,
                          json=dict(body, stream=True, n=2, stream_options={"include_usage": True}))
        ch = sse_chunks(r)
        assert [i for i, c in enumerate(ch[:-1]) if "timings" in c] == [len(ch) - 2], ch
        last = ch[-2]
        assert last["choices"] == [] and last["usage"]["completion_tokens"] == 8
        assert sorted(c["choices"][0]["index"] for c in ch[:-2] if c["choices"] and c["choices"][0]["finish_reason"]) == [0, 1]
        assert last["timings"]["predicted_n"] == 8
        # the OpenAI client reads the held-back final chunk like any other
        got = list(c.chat.completions.create(model="tchat", messages=body["messages"], max_tokens=2, stream=True))
        assert got[-1].choices[0].finish_reason == "length" and "timings" in got[-1].model_extra
        n_requests += 3

        m = s.get("/metrics").text
        lab = 'model="tchat"'
        pre, dec = series(m, "ragd_request_prefill_seconds_count"), series(m, "ragd_request_decode_seconds_count")
        assert pre == {lab: n_requests} and dec == {lab: n_requests}, (pre, dec)
        # every chat step took ≥ SLOW_MS: prefill ≥ 1 step, decode ≥ (tokens − 1) steps, per request
        assert series(m, "ragd_request_prefill_seconds_sum")[lab] >= n_requests * SLOW_MS / 1e3 * 0.95
        assert series(m, "ragd_request_decode_seconds_sum")[lab] >= (3 * 3 + 2 + 3 + 3 + 1) * SLOW_MS / 1e3 * 0.95
        # the histogram holds the very values the replies reported
        qs = series(m, "ragd_request_queue_seconds_sum")['task="generate",' + lab]
        assert qs >= sum(t["queue_ms"] for t in ts) / 1e3 - 1e-5
        buckets = series(m, "ragd_request_queue_seconds_bucket")
        assert buckets['task="generate",%s,le="0.1"' % lab] < n_requests  # the queued one waited ≥ 120 ms
        ttft = series(m, "ragd_time_to_first_token_seconds_count")
        assert ttft == {lab: n_requests}, ttft
        assert series(m, "ragd_generation_tokens_total") == {lab: 3 * 4 + 3 + 4 + 8 + 2}
        fin = series(m, "ragd_generation_finished_total")
        assert fin['reason="length",' + lab] == 3 + 1 + 1 + 2 + 1, fin
    finally:
        assert s.stop() == 0


def test_embed_rerank_times_and_model_labels():
    slow = 300  # ms per embed pass: a second request waits in the queue while the first is computed
    s = start(["--embed", EMBED, "--rerank", RERANK, "--max-model-len", "256"], env={"RAGD_FAULT": "embed:slow:%d" % slow})
    try:
        e, rr = 'task="embed",model="qwen3-embed-tiny"', 'task="rerank",model="qwen3-rerank-tiny"'
        with ThreadPoolExecutor(2) as ex:
            first = ex.submit(s.post, "/v1/embeddings", {"input": "one"})
            deadline = time.time() + 10
            while series(s.get("/metrics").text, "ragd_request_queue_seconds_count").get(e, 0) < 1:
                assert time.time() < deadline, "the first request never left the queue"
                time.sleep(0.005)
            second = s.post("/v1/embeddings", {"input": "two"})
            assert first.result().status_code == 200 and second.status_code == 200, (first.result().text, second.text)
        assert s.post("/v1/rerank", {"query": "q", "documents": ["a", "b"]}).status_code == 200
        m = s.get("/metrics").text
        comp_n, comp_s = series(m, "ragd_request_compute_seconds_count"), series(m, "ragd_request_compute_seconds_sum")
        assert comp_n == {e: 2, rr: 1}, comp_n
        assert comp_s[e] >= 2 * slow / 1e3 * 0.95, comp_s  # each embed pass is slowed
        assert comp_s[rr] < slow / 1e3, comp_s  # the rerank pass is not
        qn, qs = series(m, "ragd_request_queue_seconds_count"), series(m, "ragd_request_queue_seconds_sum")
        assert qn[e] == 2 and qn[rr] == 1 and qn['task="generate"'] == 0, qn  # no chat model: no model label
        assert qs[e] >= 0.1, qs  # the second waited for most of the first's pass
        assert series(m, "ragd_request_queue_seconds_bucket")[e + ',le="0.05"'] == 1  # the first did not wait
        assert series(m, "ragd_prompt_tokens_total")[rr] > 0
        assert series(m, "ragd_engine_errors_total") == {e: 0, rr: 0, 'task="generate"': 0}
        assert "ragd_request_prefill_seconds_count 0" in m and "ragd_time_to_first_token_seconds_count 0" in m
    finally:
        assert s.stop() == 0


def test_model_label_escaped_and_promtool_clean():
    name = 'we"ird\\name'
    s = start(["--chat", CHAT, "--max-model-len", "128", "--served-name", name])
    try:
        assert s.post("/v1/completions", {"model": name, "prompt": "x", "max_tokens": 2}).status_code == 200
        m = s.get("/metrics").text
        assert 'ragd_request_decode_seconds_count{model="we\\"ird\\\\name"} 1' in m, m
        promtool = shutil.which("promtool")
        assert promtool, "promtool not installed (scripts/install-deps.sh installs it)"
        p = subprocess.run([promtool, "check", "metrics"], input=m, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        assert s.stop() == 0
