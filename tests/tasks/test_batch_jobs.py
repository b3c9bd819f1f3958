"""test_batch_jobs.py — `ragd embed|rerank|generate --input FILE --output FILE` as batch jobs (issue 15):
FILE.part renamed only on success, a stop at the first failure naming the line, --resume after a failure,
a SIGKILL or a torn last line giving a file byte-identical to an uninterrupted run, progress with total,
rate and ETA on stderr."""
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

SRC = os.environ.get("RAGD_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("RAGD_BIN", os.path.join(SRC, "build", "ragd"))
MODELS = os.path.join(SRC, "fixtures", "models")
EMBED = ["embed", "--model", os.path.join(MODELS, "qwen3-embed-tiny")]
RERANK = ["rerank", "--model", os.path.join(MODELS, "qwen3-rerank-tiny"), "--query", "what is it?"]
GEN = ["generate", "--model", os.path.join(MODELS, "qwen3-tiny"), "--max-tokens", "6", "--ignore-eos",
       "--temperature", "0.8", "--seed", "7"]


def run(args, stdin=b""):
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=300)
    return p.returncode, p.stdout, p.stderr.decode()


def write_lines(path, texts, field="text", bad_at=None, blank_every=0):
    with open(path, "w") as f:
        for i, t in enumerate(texts):
            if blank_every and i % blank_every == 0:
                f.write("\n")
            f.write("{not json\n" if i == bad_at else json.dumps({field: t}) + "\n")


def texts(n):
    return ["passage %d: the %s fox jumps over %d lazy dogs" % (i, "quick" * (i % 5), i * 7) for i in range(n)]


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory() as d:
        yield d


@pytest.mark.parametrize("cmd,field,n", [(EMBED, "text", 300), (RERANK, "text", 200), (GEN, "prompt", 12)])
def test_fail_then_resume_is_byte_identical(tmp, cmd, field, n):
    inp, out, ref = (os.path.join(tmp, x) for x in ("in.jsonl", "out.jsonl", "ref.jsonl"))
    write_lines(inp, texts(n), field, blank_every=37)
    rc, _, err = run(cmd + ["--input", inp, "--output", ref])
    assert rc == 0, err
    assert not os.path.exists(ref + ".part")
    whole = open(ref, "rb").read()
    assert whole.count(b"\n") == n
    # the same through stdin/stdout
    rc, stdout, err = run(cmd + (["--input", "-"] if cmd is GEN else []), open(inp, "rb").read())
    assert rc == 0 and stdout == whole, err
    # a bad line stops the job: named, nothing at FILE, the lines before it kept in FILE.part
    bad = n * 2 // 3
    write_lines(inp, texts(n), field, bad_at=bad, blank_every=37)
    rc, _, err = run(cmd + ["--input", inp, "--output", out])
    assert rc == 1
    bad_line = bad + 1 + bad // 37 + 1  # 1-based, after the blank lines written before it
    assert "line %d: not valid JSON" % bad_line in err, err
    assert not os.path.exists(out) and os.path.exists(out + ".part")
    part = open(out + ".part", "rb").read()
    assert part == whole[:len(part)] and part.count(b"\n") == bad
    # fixed input: --resume computes only the rest (progress says from where) and renames
    write_lines(inp, texts(n), field, blank_every=37)
    rc, _, err = run(cmd + ["--input", inp, "--output", out, "--resume", "--progress"])
    assert rc == 0, err
    assert open(out, "rb").read() == whole
    assert not os.path.exists(out + ".part")
    assert "%d/%d lines (100%%)" % (n, n) in err, err


def test_sigkill_midway_and_torn_line_resume(tmp):
    inp, out, ref = (os.path.join(tmp, x) for x in ("in.jsonl", "out.jsonl", "ref.jsonl"))
    n = 15000  # ~2 s on one thread here: time to see a partial FILE.part and kill the job
    write_lines(inp, texts(n))
    rc, _, err = run(EMBED + ["--threads", "1", "--input", inp, "--output", ref])
    assert rc == 0, err
    whole = open(ref, "rb").read()
    p = subprocess.Popen([BIN] + EMBED + ["--threads", "1", "--input", inp, "--output", out],
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:  # kill once some chunks are written
        if os.path.exists(out + ".part") and os.path.getsize(out + ".part") > len(whole) // 10:
            break
        time.sleep(0.01)
    # (a job that finished first would test nothing: fail rather than skip)
    assert p.poll() is None, "the job finished before it could be killed: raise n"

    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not os.path.exists(out)
    part = open(out + ".part", "rb").read()
    assert 0 < len(part) < len(whole) and whole.startswith(part)
    # a torn last line (a kill inside a write) is cut off by --resume
    with open(out + ".part", "ab") as f:
        f.write(b'{"embedding": [0.1, 0.')
    rc, _, err = run(EMBED + ["--input", inp, "--output", out, "--resume"])
    assert rc == 0, err
    assert open(out, "rb").read() == whole


def test_resume_rules(tmp):
    inp, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
    write_lines(inp, texts(5))
    # --resume without FILE.part starts from the beginning; without --output it is a usage error
    rc, _, err = run(EMBED + ["--input", inp, "--output", out, "--resume"])
    assert rc == 0, err
    assert open(out, "rb").read().count(b"\n") == 5
    assert run(EMBED + ["--input", inp, "--resume"])[0] == 2
    # a FILE.part with more lines than the input is another job's
    with open(out + ".part", "wb") as f:
        f.write(b"{}\n" * 9)
    rc, _, err = run(EMBED + ["--input", inp, "--output", out, "--resume"])
    assert rc == 1 and "another input" in err, err
    # an engine failure (a text too long) names its line; an earlier FILE stays as it was
    before = open(out, "rb").read()
    write_lines(inp, ["short", "word " * 400, "after"])
    rc, _, err = run(RERANK + ["--max-batch-tokens", "200", "--input", inp, "--output", out])
    assert rc == 1 and "line 2" in err and "kept in" in err, err
    assert open(out, "rb").read() == before
    assert open(out + ".part", "rb").read().count(b"\n") == 1
    # a missing input
    rc, _, err = run(EMBED + ["--input", os.path.join(tmp, "nope"), "--output", out])
    assert rc == 1 and "cannot open" in err
    # generate: --prompt and --input exclude each other; --output needs --input
    assert run(GEN + ["--prompt", "x", "--input", inp])[0] == 2
    assert run(GEN + ["--prompt", "x", "--output", out])[0] == 2


def test_progress_without_total_on_a_pipe(tmp):
    rc, out, err = run(EMBED + ["--progress"], "".join(json.dumps({"text": t}) + "\n" for t in texts(10)).encode())
    assert rc == 0 and out.count(b"\n") == 10
    assert "ragd embed: 10 lines" in err and "/s" in err and "ETA" not in err, err
    # no progress when stderr is not a terminal and --progress is not given
    rc, out, err = run(EMBED, b'{"text": "x"}\n')
    assert rc == 0 and err == ""
