#!/usr/bin/env bash
# Validates what ships for operators: the Grafana dashboard and its data
# sources, the published JSON Schemas (Ajv strict), docker-compose.yml, the Kubernetes base (rendered, core kinds and
# CRD kinds), the alert rules and the Prometheus config. The checks are in
# scripts/check_deploy.py (its docstring lists them); the tools they need
# come from scripts/ensure-tools.sh, which this runs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-tools.sh
node scripts/check-schemas.js "${CLAIMLINE_TOOLS_DIR:-$HOME/.cache/claimline-tools}/npm/node_modules"
exec python3 scripts/check_deploy.py
