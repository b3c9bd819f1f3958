"""The deployment files (deploy/) and --config: the shipped config files parse as TOML (Python's tomllib)
or YAML (PyYAML) and as ragd options, the two say the same, and a server started from a config file serves with its values, the environment
and the command line overriding it."""
import contextlib
import json
import os
import re
import subprocess
import tempfile
import tomllib

import yaml

import requests

from conftest import BIN, CHAT, EMBED, SRC, Server

DEPLOY = os.path.join(SRC, "deploy")


def run_serve(*args):
    # `ragd serve ARGS` without the caller's RAGD_* environment; the finished process
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    return subprocess.run([BIN, "serve", *args], capture_output=True, text=True, env=env, timeout=30)


def check_with_ragd(path):
    r = run_serve("--config", path, "--help")
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout


@contextlib.contextmanager
def config_file(suffix, text):
    # a temporary config file with this text; its path
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(text)
    try:
        yield f.name
    finally:
        os.unlink(f.name)


def check_refused(path, needle):
    # ragd serve --config path exits 2 and its message names the file's line (needle)
    r = run_serve("--config", path, "--port", "0")
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr, r.stderr


def configmap_toml():
    text = open(os.path.join(DEPLOY, "kubernetes.yaml")).read()
    m = re.search(r"  ragd.toml: \|\n((?:    .*\n)+)", text)
    assert m, "no ragd.toml in the ConfigMap"
    return "".join(line[4:] + "\n" for line in m.group(1).splitlines())


def test_shipped_configs_parse():
    path = os.path.join(DEPLOY, "ragd.toml")
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    assert cfg["serve"]["device"] == "cuda" and cfg["serve"]["max-seqs"] == 64
    check_with_ragd(path)
    cm = configmap_toml()
    assert tomllib.loads(cm)["serve"]["port"] == 8080
    with config_file(".toml", cm) as path:
        check_with_ragd(path)
    # the Dockerfile and the unit start ragd from the config file, and probe what the server has
    docker = open(os.path.join(DEPLOY, "Dockerfile")).read()
    assert "RAGD_CONFIG=/etc/ragd/ragd.toml" in docker and "/health" in docker
    unit = open(os.path.join(DEPLOY, "ragd.service")).read()
    assert "ragd serve --config /etc/ragd/ragd.toml" in unit


def test_server_from_config_file():
    text = '[serve]\nembed = "%s"\nchat = "%s"\nmax-seqs = 3\nserved-name = "from-file"\n' % (EMBED, CHAT)
    with config_file(".toml", text) as path:
        # the environment overrides the file (served name); the command line too (the harness's --port 0)
        s = Server(["--config", path], env={"RAGD_SERVED_NAME": "from-env"})
        try:
            opts = requests.get(s.url + "/diagnostics", timeout=10).json()["options"]
            assert opts["config"] == path
            assert opts["max-seqs"] == 3
            assert opts["served-name"] == "from-env"
            ids = [m["id"] for m in requests.get(s.url + "/v1/models", timeout=10).json()["data"]]
            assert "from-env" in ids, ids
            assert s.post("/v1/embeddings", {"input": "hello"}).status_code == 200
        finally:
            assert s.stop() == 0


def test_bad_config_refuses_to_start():
    with config_file(".toml", 'chat = "%s"\nmax-seqs = 0\n' % CHAT) as path:
        check_refused(path, "%s:2: max-seqs: 0 is outside" % path)


def test_shipped_yaml_matches_toml():
    path = os.path.join(DEPLOY, "ragd.yaml")
    with open(path) as f:
        y = yaml.safe_load(f)["serve"]
    with open(os.path.join(DEPLOY, "ragd.toml"), "rb") as f:
        t = tomllib.load(f)["serve"]
    assert {k: str(v) for k, v in y.items()} == {k: str(v) for k, v in t.items()}
    check_with_ragd(path)


def test_server_from_yaml_config():
    with config_file(".yml", "serve:\n  embed: %s\n  max-seqs: 3\n  served-name: from-yaml\n  demo: yes\n" % EMBED) as path:
        s = Server(["--config", path], env={"RAGD_MAX_SEQS": "4"})
        try:
            opts = requests.get(s.url + "/diagnostics", timeout=10).json()["options"]
            assert opts["config"] == path and opts["max-seqs"] == 4 and opts["demo"] is True
            assert s.post("/v1/embeddings", {"input": "hello"}).status_code == 200
        finally:
            assert s.stop() == 0


def test_bad_yaml_config_names_the_line():
    with config_file(".yaml", "serve:\n  chat: %s\n  embed:\n    - a\n" % CHAT) as path:
        check_refused(path, "%s:4: embed: a sequence" % path)


def yaml_docs(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def test_kubernetes_shutdown_and_monitoring_agree():
    docs = {d["kind"]: d for d in yaml_docs("kubernetes.yaml")}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    cfg = tomllib.loads(docs["ConfigMap"]["data"]["ragd.toml"])["serve"]
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[0] == "sleep"
    # preStop (endpoints drop the pod) + shutdown-ms (in-flight requests finish) + margin fit the grace
    assert int(pre[1]) + cfg["shutdown-ms"] / 1000 + 2 <= pod["terminationGracePeriodSeconds"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready" and c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    # the ServiceMonitor (no schema in kubernetes-validate) selects the Service and names its port
    sm, svc = docs["ServiceMonitor"], docs["Service"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] in [p["name"] for p in svc["spec"]["ports"]]
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"


def test_systemd_unit_and_compose():
    unit = open(os.path.join(DEPLOY, "ragd.service")).read()
    assert "DynamicUser=yes" in unit and "ProtectSystem=strict" in unit and not re.search(r"^User=", unit, re.M)
    with open(os.path.join(DEPLOY, "ragd.toml"), "rb") as f:
        shutdown_s = tomllib.load(f)["serve"]["shutdown-ms"] / 1000
    assert int(re.search(r"TimeoutStopSec=(\d+)", unit).group(1)) > shutdown_s
    compose = yaml_docs("compose.yaml")[0]
    assert set(compose["services"]) == {"ragd", "prometheus", "grafana"}
    for svc in compose["services"].values():  # every file the stack mounts is shipped
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("./"):
                assert os.path.exists(os.path.join(DEPLOY, src)), src
    grace = int(compose["services"]["ragd"]["stop_grace_period"].rstrip("s"))
    with open(os.path.join(DEPLOY, "ragd.yaml")) as f:
        assert grace > yaml.safe_load(f)["serve"]["shutdown-ms"] / 1000
    prom = yaml_docs("prometheus.yml")[0]
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["ragd:8080"]


def test_dashboard_series_exist():
    """Every series the Grafana dashboard queries is one ragd exports (names from the sources, so the GPU
    series count without a GPU)."""
    d = json.load(open(os.path.join(DEPLOY, "grafana", "ragd-dashboard.json")))
    src = ""
    for sub in ("obs", "sched", "http"):
        for root, _, files in os.walk(os.path.join(SRC, "src", sub)):
            src += "".join(open(os.path.join(root, f)).read() for f in files if f.endswith(".c"))
    names = set()
    for p in d["panels"]:
        for t in p["targets"]:
            names |= set(re.findall(r"\b((?:ragd|process)_[a-z_]+?)(?:_bucket)?\{", t["expr"]))
    assert len(names) > 20
    missing = [n for n in names if '"%s' % n not in src]
    assert not missing, missing
    for want in ("ragd_time_to_first_token_seconds", "ragd_inter_token_latency_seconds", "ragd_kv_cache_blocks",
                 "ragd_prefix_cache_hit_rate", "ragd_generation_step_seconds_total", "ragd_gpu_utilization_ratio",
                 "ragd_request_queue_seconds", "ragd_request_prefill_seconds", "ragd_request_decode_seconds",
                 "ragd_request_compute_seconds"):
        assert want in names
