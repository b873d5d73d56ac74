#!/usr/bin/env bash
# Validates what ships for operators: the Grafana dashboard and its data
# sources, docker-compose.yml, the Kubernetes base (rendered, core kinds and
# CRD kinds), the alert rules and the Prometheus config. The checks are in
# scripts/check_deploy.py (its docstring lists them); the tools they need
# come from scripts/ensure-tools.sh, which this runs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh
exec python3 scripts/check_deploy.py
