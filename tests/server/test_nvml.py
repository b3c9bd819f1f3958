"""NVML telemetry and GPU health (issue 15) through the real server and the fake NVML library
(tests/server/fake_nvml.c, built by CMake; RAGD_FAKE_NVML points at it): /diagnostics and /metrics show its
canned values exactly, promtool accepts the series, a rising uncorrectable ECC count makes the GPU unhealthy
within a couple of seconds (loud in the log), and without NVML everything works and says why.

The models here run on the CPU, so an unhealthy GPU must NOT make them unready; that the models of the
GPU itself are marked not ready is tested by tests/sched/test_sched_fault.c (the scheduler's side) and
tests/server/test_nvml.c (the watcher's callback)."""
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import EMBED, start

FAKE = os.environ.get("RAGD_FAKE_NVML", "")
UUID0 = "GPU-11111111-2222-3333-4444-555555555555"
UUID1 = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

GPU0 = {
    "index": 0, "name": "NVIDIA H200", "uuid": UUID0, "driver": "560.35.03",
    "memory": {"total_bytes": 150754820096, "used_bytes": 5368709120, "process_bytes": 123456789},
    "utilization": {"gpu_percent": 37, "memory_percent": 12}, "temperature_c": 41, "power_w": 123.456,
    "power_limit_w": 700.0, "clocks_mhz": {"sm": 1980, "memory": 3201}, "ecc_uncorrectable_volatile": 0,
    "ecc_uncorrectable_at_start": 0, "retired_pages": None,
    "remapped_rows": {"correctable": 2, "uncorrectable": 0, "pending": False, "failure": False},
    "last_xid": 0, "health": "ok", "fault": None, "errors": None,
}

METRIC_LINES = [
    "ragd_gpu_nvml_up 1",
    'ragd_gpu_info{gpu="0",uuid="%s",name="NVIDIA H200",driver="560.35.03"} 1' % UUID0,
    'ragd_gpu_info{gpu="1",uuid="%s",name="NVIDIA H200",driver="560.35.03"} 1' % UUID1,
    'ragd_gpu_healthy{gpu="0"} 1',
    'ragd_gpu_utilization_ratio{gpu="0"} 0.37',
    'ragd_gpu_memory_utilization_ratio{gpu="0"} 0.12',
    'ragd_gpu_memory_used_bytes{gpu="0"} 5368709120',
    'ragd_gpu_memory_total_bytes{gpu="0"} 150754820096',
    'ragd_gpu_process_memory_bytes{gpu="0"} 123456789',
    'ragd_gpu_temperature_celsius{gpu="0"} 41',
    'ragd_gpu_power_watts{gpu="0"} 123.456',
    'ragd_gpu_power_limit_watts{gpu="0"} 700.000',
    'ragd_gpu_sm_clock_hertz{gpu="0"} 1980000000',
    'ragd_gpu_memory_clock_hertz{gpu="0"} 3201000000',
    'ragd_gpu_ecc_uncorrectable_errors{gpu="0"} 0',
    'ragd_gpu_remapped_rows_correctable{gpu="0"} 2',
    'ragd_gpu_row_remap_failure{gpu="0"} 0',
    'ragd_gpu_last_xid{gpu="0"} 0',
    'ragd_gpu_power_watts{gpu="1"} 75.000',
]


def promtool_ok(text):
    promtool = shutil.which("promtool")
    assert promtool, "promtool not installed (Debian package prometheus; scripts/install-deps.sh installs it)"
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture
def fake_server(tmp_path):
    assert FAKE and os.path.exists(FAKE), "RAGD_FAKE_NVML (the fake NVML library built by CMake) is missing: %r" % FAKE
    ctl = tmp_path / "nvml.ctl"
    ctl.write_text("")
    s = start(["--embed", EMBED], env={"RAGD_NVML_LIB": FAKE, "FAKE_NVML_CONTROL": str(ctl)})
    yield s, ctl
    rc = s.stop()
    assert rc == 0, s.log()[-4000:]


def test_fake_nvml_diagnostics_and_metrics(fake_server):
    s, _ = fake_server
    d = s.get("/diagnostics").json()
    assert d["nvml"] == "ok" and d["xid_events"] is True
    assert d["options"]["nvml-lib"] == FAKE
    assert d["device"]["gpu_health"] == "none: the models run on the CPU"
    assert len(d["gpus"]) == 2
    assert d["gpus"][0] == GPU0
    g1 = d["gpus"][1]
    assert g1["uuid"] == UUID1 and g1["memory"] == {"total_bytes": 150754820096, "used_bytes": 629145600, "process_bytes": None}
    # not supported → null, never an error; a failing call → null and named
    assert g1["temperature_c"] is None and g1["power_limit_w"] is None and g1["ecc_uncorrectable_volatile"] is None
    assert g1["remapped_rows"] is None and g1["retired_pages"] is None and g1["power_w"] == 75.0
    assert g1["errors"] == "nvmlDeviceGetTemperature: Unknown Error (999)" and g1["health"] == "ok"

    t = s.get("/metrics").text
    lines = set(t.splitlines())
    for want in METRIC_LINES:
        assert want in lines, want
    for absent in ['ragd_gpu_temperature_celsius{gpu="1"}', 'ragd_gpu_ecc_uncorrectable_errors{gpu="1"}',
                   'ragd_gpu_process_memory_bytes{gpu="1"}', "ragd_gpu_retired_pages"]:
        assert absent not in t, absent
    promtool_ok(t)
    log = s.log()
    assert "NVML: driver 560.35.03, 2 GPUs, Xid events watched" in log
    assert "GPU health: none: the models run on the CPU" in log


def test_fake_nvml_ecc_fault(fake_server):
    """A rising uncorrectable ECC count: the GPU is unhealthy within ~2 s (log, /diagnostics, /metrics); the
    CPU-served model stays ready and serving (its device is not that GPU)."""
    s, ctl = fake_server
    assert s.get("/diagnostics").json()["gpus"][0]["health"] == "ok"
    ctl.write_text("ecc 0 4\n")
    t0 = time.time()
    while time.time() - t0 < 5:
        g0 = s.get("/diagnostics").json()["gpus"][0]
        if g0["health"] != "ok":
            break
        time.sleep(0.1)
    assert time.time() - t0 < 2.5, "the fault took %.1f s to show" % (time.time() - t0)
    assert g0["health"] == "unhealthy" and g0["fault"] == "uncorrectable ECC errors rose from 0 at start to 4"
    assert g0["ecc_uncorrectable_volatile"] == 4 and g0["ecc_uncorrectable_at_start"] == 0
    t = s.get("/metrics").text
    assert 'ragd_gpu_healthy{gpu="0"} 0' in t and 'ragd_gpu_healthy{gpu="1"} 1' in t
    assert 'ragd_gpu_ecc_uncorrectable_errors{gpu="0"} 4' in t
    promtool_ok(t)
    deadline = time.time() + 3  # the watcher's callback logs right after its sample
    while "no model of this server runs on it" not in s.log() and time.time() < deadline:
        time.sleep(0.05)
    log = s.log()
    assert re.search(r"ERROR GPU 0 \(NVIDIA H200, %s\) is UNHEALTHY: uncorrectable ECC errors rose from 0 at start to 4" % UUID0, log), log[-2000:]
    assert "GPU 0 is unhealthy (uncorrectable ECC errors rose from 0 at start to 4); no model of this server runs on it" in log
    r = s.get("/health/ready")
    assert r.status_code == 200, r.text
    assert s.post("/embed", {"texts": ["still served"]}).status_code == 200
    # a critical Xid event on the other GPU: delivered by the event set, at once
    ctl.write_text("ecc 0 4\nxid 1 79\n")
    t0 = time.time()
    while time.time() - t0 < 5:
        g1 = s.get("/diagnostics").json()["gpus"][1]
        if g1["health"] != "ok":
            break
        time.sleep(0.1)
    assert time.time() - t0 < 2.5
    assert g1["health"] == "unhealthy" and g1["fault"] == "critical Xid 79 event" and g1["last_xid"] == 79
    assert 'ragd_gpu_last_xid{gpu="1"} 79' in s.get("/metrics").text
    deadline = time.time() + 3
    while "GPU 1 is unhealthy" not in s.log() and time.time() < deadline:
        time.sleep(0.05)
    assert "GPU 1 is unhealthy (critical Xid 79 event); no model of this server runs on it" in s.log()
    assert s.get("/health/ready").status_code == 200


def test_without_nvml():
    s = start(["--embed", EMBED], env={"RAGD_NVML_LIB": "/nonexistent/libnvidia-ml.so.1"})
    try:
        d = s.get("/diagnostics").json()
        assert d["nvml"].startswith("unavailable: dlopen /nonexistent/libnvidia-ml.so.1: "), d["nvml"]
        assert d["gpus"] == []
        t = s.get("/metrics").text
        assert "ragd_gpu_nvml_up 0" in t.splitlines() and "ragd_gpu_info" not in t
        promtool_ok(t)
        assert s.get("/health/ready").status_code == 200
        assert s.post("/embed", {"texts": ["no nvml"]}).status_code == 200
        assert "NVML unavailable: dlopen /nonexistent/libnvidia-ml.so.1" in s.log()
    finally:
        assert s.stop() == 0
    s = start(["--embed", EMBED, "--nvml-lib", "off"])
    try:
        assert s.get("/diagnostics").json()["nvml"] == "unavailable: turned off (--nvml-lib off)"
    finally:
        assert s.stop() == 0
