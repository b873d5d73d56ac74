#!/usr/bin/env bash
# Validates what ships for operators: the Kubernetes manifests
# (kubernetes-validate --strict against the Kubernetes schemas; the CRDs,
# which it has no schema for, by their required fields), the alert rules and
# Prometheus config (promtool), and the Grafana dashboard; and that every
# metric the alerts and dashboard query is one claimline exports.
set -euo pipefail
cd "$(dirname "$0")/.."
core=(deploy/base/configmap.yaml deploy/base/secret.yaml deploy/base/deployment.yaml
      deploy/base/service.yaml deploy/base/poddisruptionbudget.yaml)
out=$(kubernetes-validate --strict "${core[@]}" 2>&1) || { echo "$out"; exit 1; }
if grep -qv "passed for resource" <<<"$out"; then echo "$out"; exit 1; fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import json, pathlib, re, sys, yaml

tmp = pathlib.Path(sys.argv[1])
base = pathlib.Path("deploy/base")
kust = yaml.safe_load((base / "kustomization.yaml").read_text())
listed = set(kust["resources"])
present = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
assert listed == present, f"kustomization resources {sorted(listed)} != files {sorted(present)}"

def load(name):
    return yaml.safe_load((base / name).read_text())

deployment = load("deployment.yaml")
spec = deployment["spec"]["template"]["spec"]
c = spec["containers"][0]
assert spec["securityContext"]["runAsNonRoot"] is True
assert c["securityContext"]["readOnlyRootFilesystem"] is True
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert {"requests", "limits"} <= set(c["resources"])
refs = {list(e.values())[0]["name"] for e in c["envFrom"]}
assert refs == {load("configmap.yaml")["metadata"]["name"], load("secret.yaml")["metadata"]["name"]}
grace = spec["terminationGracePeriodSeconds"]
assert grace > int(load("configmap.yaml")["data"]["CLAIMLINE_SHUTDOWN_TIMEOUT_SECS"]), "grace period must outlast the drain"

sm = load("servicemonitor.yaml")
assert sm["kind"] == "ServiceMonitor" and sm["spec"]["endpoints"][0]["port"] == "metrics"
svc_ports = {p["name"] for p in load("service.yaml")["spec"]["ports"]}
assert "metrics" in svc_ports
so = load("scaledobject.yaml")
assert so["kind"] == "ScaledObject" and so["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
trig = so["spec"]["triggers"][0]
assert trig["type"] == "kafka" and trig["metadata"]["consumerGroup"] == load("configmap.yaml")["data"]["CLAIMLINE_GROUP_ID"]
assert so["spec"]["minReplicaCount"] >= 1 and so["spec"]["maxReplicaCount"] >= so["spec"]["minReplicaCount"]

rule = load("prometheusrule.yaml")
assert rule["kind"] == "PrometheusRule"
(tmp / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
for needed in ["ClaimlineConsumerLagGrowing", "ClaimlineDeadLetterRate", "ClaimlineStepErrors", "ClaimlineNotReady", "ClaimlineNoProgress"]:
    assert needed in alerts, needed

dash = json.loads(pathlib.Path("deploy/grafana/dashboards/claimline.json").read_text())
rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
assert len(rows) == 2, rows

# Every metric queried must be one the service defines.
exported = set(re.findall(r'"(claimline_[a-z_]+)"', pathlib.Path("src/metrics.rs").read_text()))
queries = yaml.safe_dump(rule) + json.dumps(dash)
used = set(re.findall(r"claimline_[a-z_]+", queries))
used = {re.sub(r"_(bucket|sum|count)$", "", u) for u in used} - {"claimline_postgres", "claimline"}
unknown = sorted(u for u in used if u not in exported)
assert not unknown, f"queried but not exported: {unknown}"
print(f"check-deploy: manifests, {len(alerts)} alerts, {len(dash['panels'])} dashboard panels, {len(used)} metrics ok")
PY
promtool check rules "$tmp/rules.yml" >/dev/null
promtool check config --syntax-only deploy/prometheus/prometheus.yml >/dev/null
