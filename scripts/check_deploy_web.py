"""check_deploy.py's checks of claimline web (issue 25): its role reads the
web views and nothing else, and what ships for it (compose service,
Kubernetes Deployment, Service, NetworkPolicy, Secret, grants Job) keeps it
signed in, on its own read role, and walled off.

- grant-web.sql grants SELECT on views of migrations/ only (tables hold
  patient data), to claimline_web only, and covers every relation
  src/store/web.rs reads; the Kubernetes grants ConfigMap carries the same
  SQL.
- compose: service `web` runs `claimline web` as claimline_web, after
  db-grants, which runs grant-web.sql; the role is created by the init
  script; no default sign-in password.
- Kubernetes: Deployment claimline-web runs `web` non-root, read-only root,
  probes /healthz and /readyz on its http port; DATABASE_URL from Secret
  claimline-web (a role of its own, verify-full TLS, CA mounted), the
  password mounted as a file, no envFrom (neither Kafka credentials nor the
  service's DML role); Service claimline-web selects it; NetworkPolicy
  claimline-web admits only the ingress namespace on http and lets out only
  Postgres and DNS; the grants Job runs grant-web.sql with the owner's URL.
"""
import re
import urllib.parse

WEB_ROLE = "claimline_web"


def check_web(root, docs, relations, check, helpers):
    strip_sql, sql_relations, granted_relations, env_of = (
        helpers["strip_sql"], helpers["sql_relations"], helpers["granted_relations"], helpers["env_of"])
    grant_path = root / "deploy/compose/grant-web.sql"
    grants = granted_relations(grant_path, WEB_ROLE)
    check(grants, "grant-web.sql grants nothing to claimline_web")
    for r in sorted(grants):
        check(relations.get(r) == "view", f"grant-web.sql grants {r}, which is not a view of migrations/ (tables hold patient data)")
    other = re.findall(r"\bTO\s+([\w\"]+)", strip_sql(grant_path.read_text()), re.I)
    check(set(o.strip('"') for o in other) == {WEB_ROLE}, f"grant-web.sql grants to {other}, not claimline_web alone")
    store = (root / "src/store/web.rs").read_text()
    reads = set()
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', store, re.S):
        if re.search(r"\bSELECT\b", lit, re.I):
            reads |= sql_relations(lit)
    check(reads, "src/store/web.rs: no relation found in its SQL")
    for r in sorted(reads - grants):
        check(False, f"src/store/web.rs reads {r}, which grant-web.sql does not grant to claimline_web")
    return grant_path.read_text(), len(reads)


def check_web_compose(root, services, check, env_of):
    web = services.get("web", {})
    if not check(web, "compose: no web service (claimline web)"):
        return
    env = env_of(web)
    check(web.get("command") == ["web"], "compose web: must run `claimline web`")
    user = urllib.parse.urlsplit(env.get("DATABASE_URL", "")).username
    check(user == WEB_ROLE, f"compose web: DATABASE_URL must use claimline_web, not {user!r}")
    check((web.get("depends_on", {}).get("db-grants") or {}).get("condition") == "service_completed_successfully",
          "compose web: must wait for db-grants")
    check("grant-web.sql" in " ".join(map(str, services.get("db-grants", {}).get("command", []))),
          "compose db-grants: must run grant-web.sql")
    pw = env.get("CLAIMLINE_WEB_PASSWORD", "")
    check(":?" in pw or "CLAIMLINE_WEB_PASSWORD_FILE" in env, "compose web: the sign-in password must be required, not defaulted")
    check(all(str(p).startswith("127.0.0.1:") for p in web.get("ports", [])), "compose web: publish on 127.0.0.1 only")
    roles = (root / "deploy/compose/postgres-init/10-roles.sh").read_text()
    check(f"CREATE ROLE {WEB_ROLE}" in roles, "postgres-init/10-roles.sh: must create claimline_web")
    check("WEB_DB_PASSWORD" in env_of(services.get("postgres", {})), "compose postgres: WEB_DB_PASSWORD must reach the role script")


def check_web_kubernetes(docs, grant_sql, check, one, secrets):
    dep = one("Deployment", "claimline-web")
    if not dep:
        return
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    c = pod["containers"][0]
    check(c.get("args") == ["web"], "claimline-web: must run `claimline web`")
    check(pod["securityContext"]["runAsNonRoot"] is True, "claimline-web: runAsNonRoot")
    check(c["securityContext"]["readOnlyRootFilesystem"] is True, "claimline-web: readOnlyRootFilesystem")
    check(pod.get("automountServiceAccountToken") is False, "claimline-web: no service account token")
    check({"requests", "limits"} <= set(c["resources"]), "claimline-web: requests and limits")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check("http" in ports, "claimline-web: an http port")
    env = {e["name"]: e for e in c.get("env", [])}
    listen = env.get("CLAIMLINE_WEB_LISTEN", {}).get("value", "")
    check(listen.rsplit(":", 1)[-1] == str(ports.get("http")), f"claimline-web: CLAIMLINE_WEB_LISTEN {listen} is not the http port")
    check(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, "claimline-web: liveness on /healthz")
    check(c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, "claimline-web: readiness on /readyz")
    check(not c.get("envFrom"), "claimline-web: no envFrom (it must not hold Kafka credentials or the service's role)")
    check(not pod.get("initContainers"), "claimline-web: no init container (it runs no migration)")
    ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    url = secrets.get(ref.get("name"), {}).get(ref.get("key"), "")
    check(ref.get("name") == "claimline-web" and url, "claimline-web: DATABASE_URL must come from Secret claimline-web")
    others = {urllib.parse.urlsplit(u).username for name, s in secrets.items() if name != "claimline-web"
              for k, u in s.items() if "DATABASE_URL" in k}
    user = urllib.parse.urlsplit(url).username
    check(user == WEB_ROLE and user not in others, f"claimline-web: DATABASE_URL must use its own role claimline_web, not {user!r}")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    check(q.get("sslmode") == "verify-full", "claimline-web DATABASE_URL: sslmode=verify-full")
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}

    def mounted(path):
        for mp, name in mounts.items():
            if path.startswith(mp + "/"):
                src = vols.get(name, {}).get("secret", {})
                key = path[len(mp) + 1:]
                items = {i["path"]: i["key"] for i in src.get("items", [])} or {key: key}
                return key in items and items[key] in secrets.get(src.get("secretName"), {})
        return False

    check(mounted(q.get("sslrootcert", "")), "claimline-web DATABASE_URL: sslrootcert is not a mounted Secret key")
    pw_file = env.get("CLAIMLINE_WEB_PASSWORD_FILE", {}).get("value", "")
    check(pw_file and mounted(pw_file), "claimline-web: CLAIMLINE_WEB_PASSWORD_FILE must be a mounted key of a Secret")
    check("CLAIMLINE_WEB_PASSWORD" not in env, "claimline-web: the password as a file, not an environment variable")
    pw = secrets.get("claimline-web", {}).get("password", "")
    check(len(pw) >= 12, "Secret claimline-web: password placeholder must meet the 12-character minimum")

    svc = one("Service", "claimline-web")
    if svc:
        check(set(svc["spec"]["selector"].items()) <= set(labels.items()), "Service claimline-web: selects the web pods")
        check(all(p.get("targetPort") in ("http", ports.get("http")) for p in svc["spec"]["ports"]), "Service claimline-web: targets the http port")
    np_ = one("NetworkPolicy", "claimline-web")
    if np_:
        sel = np_["spec"]["podSelector"]
        comp = labels.get("app.kubernetes.io/component")
        exprs = {e["key"]: set(e["values"]) for e in sel.get("matchExpressions", []) if e["operator"] == "In"}
        check(comp in exprs.get("app.kubernetes.io/component", {sel.get("matchLabels", {}).get("app.kubernetes.io/component")}),
              "NetworkPolicy claimline-web: selects the web pods")
        check(set(np_["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy claimline-web: both policy types")
        for rule in np_["spec"].get("ingress", []):
            check([p.get("port") for p in rule.get("ports", [])] in (["http"], [ports.get("http")]),
                  "NetworkPolicy claimline-web: ingress only to the http port")
            check(rule.get("from"), "NetworkPolicy claimline-web: ingress names its peers")
        db_port = urllib.parse.urlsplit(url).port or 5432
        egress = set()
        for rule in np_["spec"].get("egress", []):
            check(rule.get("to") and all("ipBlock" not in p for p in rule["to"]), "NetworkPolicy claimline-web: egress names its peers, no ipBlock")
            egress |= {p.get("port") for p in rule.get("ports", [])}
        check(egress == {db_port, 53}, f"NetworkPolicy claimline-web: egress ports {sorted(egress, key=str)} != Postgres and DNS")
    job = one("Job", "claimline-web-grants")
    cm = one("ConfigMap", "claimline-web-grants")
    if job and cm:
        check(cm.get("data", {}).get("grant-web.sql", "").strip() == grant_sql.strip(),
              "ConfigMap claimline-web-grants: grant-web.sql differs from deploy/compose/grant-web.sql")
        jc = job["spec"]["template"]["spec"]["containers"][0]
        jenv = {e["name"]: e for e in jc.get("env", [])}
        jref = jenv.get("MIGRATE_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(jref.get("name") == "claimline-migrate", "grants Job: runs with the owner's URL (claimline-migrate)")
        check("grant-web.sql" in " ".join(jc.get("command", []) + jc.get("args", [])), "grants Job: runs grant-web.sql")
        jlabels = job["spec"]["template"]["metadata"]["labels"]
        if np_:
            exprs = {e["key"]: set(e["values"]) for e in np_["spec"]["podSelector"].get("matchExpressions", [])}
            check(jlabels.get("app.kubernetes.io/component") in exprs.get("app.kubernetes.io/component", set()),
                  "NetworkPolicy claimline-web: must also wall off the grants Job's pods")
