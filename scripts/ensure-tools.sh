#!/usr/bin/env bash
# Installs the checkers `make test` uses when they are missing: promtool
# (Debian's prometheus package) and kubernetes-validate (PyPI).
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
  echo "ensure-tools: installing promtool (Debian package prometheus)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "ensure-tools: installing kubernetes-validate (PyPI)" >&2
  python3 -m pip install -q --root-user-action=ignore kubernetes-validate >&2
fi
