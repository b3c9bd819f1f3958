"""The deployment files (deploy/) and --config: the shipped config files parse as TOML (Python's tomllib)
or YAML (PyYAML) and as ragd options, the two say the same, and a server started from a config file serves with its values, the environment
and the command line overriding it."""
import os
import re
import subprocess
import tempfile
import tomllib

import yaml

import requests

from conftest import BIN, CHAT, EMBED, SRC, Server

DEPLOY = os.path.join(SRC, "deploy")


def check_with_ragd(path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    r = subprocess.run([BIN, "serve", "--config", path, "--help"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout


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
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(cm)
    try:
        check_with_ragd(f.name)
    finally:
        os.unlink(f.name)
    # the Dockerfile and the unit start ragd from the config file, and probe what the server has
    docker = open(os.path.join(DEPLOY, "Dockerfile")).read()
    assert "RAGD_CONFIG=/etc/ragd/ragd.toml" in docker and "/health" in docker
    unit = open(os.path.join(DEPLOY, "ragd.service")).read()
    assert "ragd serve --config /etc/ragd/ragd.toml" in unit


def test_server_from_config_file():
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write('[serve]\nembed = "%s"\nchat = "%s"\nmax-seqs = 3\nserved-name = "from-file"\n' % (EMBED, CHAT))
    try:
        # the environment overrides the file (served name); the command line too (the harness's --port 0)
        s = Server(["--config", f.name], env={"RAGD_SERVED_NAME": "from-env"})
        try:
            d = requests.get(s.url + "/diagnostics", timeout=10).json()
            opts = d["options"]
            assert opts["config"] == f.name
            assert opts["max-seqs"] == 3
            assert opts["served-name"] == "from-env"
            ids = [m["id"] for m in requests.get(s.url + "/v1/models", timeout=10).json()["data"]]
            assert "from-env" in ids, ids
            r = s.post("/v1/embeddings", {"input": "hello"})
            assert r.status_code == 200
        finally:
            s.stop()
    finally:
        os.unlink(f.name)


def test_bad_config_refuses_to_start():
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write('chat = "%s"\nmax-seqs = 0\n' % CHAT)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
        r = subprocess.run([BIN, "serve", "--config", f.name, "--port", "0"], capture_output=True, text=True,
                           env=env, timeout=30)
        assert r.returncode == 2
        assert "%s:2: max-seqs: 0 is outside" % f.name in r.stderr, r.stderr
    finally:
        os.unlink(f.name)


def test_shipped_yaml_matches_toml():
    path = os.path.join(DEPLOY, "ragd.yaml")
    with open(path) as f:
        y = yaml.safe_load(f)["serve"]
    with open(os.path.join(DEPLOY, "ragd.toml"), "rb") as f:
        t = tomllib.load(f)["serve"]
    assert {k: str(v) for k, v in y.items()} == {k: str(v) for k, v in t.items()}
    check_with_ragd(path)


def test_server_from_yaml_config():
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("serve:\n  embed: %s\n  max-seqs: 3\n  served-name: from-yaml\n  demo: yes\n" % EMBED)
    try:
        s = Server(["--config", f.name], env={"RAGD_MAX_SEQS": "4"})
        try:
            opts = requests.get(s.url + "/diagnostics", timeout=10).json()["options"]
            assert opts["config"] == f.name and opts["max-seqs"] == 4 and opts["demo"] is True
            assert s.post("/v1/embeddings", {"input": "hello"}).status_code == 200
        finally:
            s.stop()
    finally:
        os.unlink(f.name)


def test_bad_yaml_config_names_the_line():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("serve:\n  chat: %s\n  embed:\n    - a\n" % CHAT)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
        r = subprocess.run([BIN, "serve", "--config", f.name, "--port", "0"], capture_output=True, text=True,
                           env=env, timeout=30)
        assert r.returncode == 2
        assert "%s:4: embed: a sequence" % f.name in r.stderr, r.stderr
    finally:
        os.unlink(f.name)
