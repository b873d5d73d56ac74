#!/usr/bin/env bash
# make demo, in six stages: the Tansu broker and Postgres (installed where
# missing), claimline built and started, the shipped examples sent (the good
# events, then one bad one) and what comes out shown: claim lines from the
# topics, the dead letter, rows from Postgres, a summary from /metrics; then
# `claimline web` over them (with examples/kx-watch.jsonl for its KX watch
# list), under a read role of its own, its address and credentials printed.
# Each checkout gets its own database, consumer group and ports, derived from
# its path (scripts/demo-env.sh) and written to .run/demo.env. Safe to rerun;
# `make stop` stops the service and the broker and drops the database.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
mkdir -p .run
env_file=.run/demo.env
good=examples/encounters.jsonl
bad=examples/bad-events.jsonl

die() { echo "demo: $*" >&2; exit 1; }
stage() { echo; echo "== [$1/6] $2"; }
# Something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Which program listens on port $1, as far as ss can tell.
holder() {
  local who
  who="$(ss -ltnpH "sport = :$1" 2>/dev/null \
    | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -1)" || true
  echo "${who:-another program}"
}
# The pid in file $1 is alive, runs a program called $2 and was started from
# this checkout (its working directory; a .run/ copied from elsewhere is not ours).
ours() {
  local pid
  [ -f "$1" ] && pid="$(cat "$1")" && [ -n "$pid" ] \
    && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$2" ] \
    && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null || pwd -P)" = "$(pwd -P)" ]
}
taken() { # PORT WHAT OVERRIDE
  die "port $1 ($2) is taken by $(holder "$1"), which this checkout did not start.
  Stop it, or choose another port: $3=<free port> make demo"
}
# Sets KEY=VALUE in .run/demo.env, replacing an earlier value.
record() {
  { grep -v "^$1=" "$env_file" || true; printf '%s=%q\n' "$1" "$2"; } >"$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
}

# This checkout's settings, kept with the database URLs an earlier run recorded
# (so `make stop` can drop the database even if this run stops early).
{
  scripts/demo-env.sh
  grep -E '^CLAIMLINE_DEMO_(ADMIN|DATABASE)_URL=' "$env_file" 2>/dev/null || true
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"
# shellcheck source=/dev/null
. "$env_file"
broker_port=$CLAIMLINE_DEMO_BROKER_PORT
metrics_port=$CLAIMLINE_DEMO_METRICS_PORT
web_port=$CLAIMLINE_DEMO_WEB_PORT
db=$CLAIMLINE_DEMO_DB
group=$CLAIMLINE_DEMO_GROUP_ID
echo "== claimline demo for $CLAIMLINE_DEMO_CHECKOUT (settings: $env_file)"
echo "   database        $db"
echo "   consumer group  $group"
echo "   broker          127.0.0.1:$broker_port"
echo "   metrics         http://127.0.0.1:$metrics_port/metrics"
echo "   web view        http://127.0.0.1:$web_port/ (claimline web)"
# Checked now rather than at stage 6, so a taken port stops the demo early.
if listening "$web_port" && ! ours .run/claimline-web.pid claimline; then
  taken "$web_port" "the demo's web view" DEMO_WEB_PORT
fi

stage 1 "broker: Tansu on 127.0.0.1:$broker_port (in memory; log .run/tansu-$broker_port.log)"
if listening "$broker_port"; then
  ours ".run/tansu-$broker_port.pid" tansu || taken "$broker_port" "the demo's broker" DEMO_BROKER_PORT
  echo "already running (pid $(cat ".run/tansu-$broker_port.pid")): reusing it"
fi
bootstrap="$(BROKER_PORT="$broker_port" scripts/start-broker.sh)"

stage 2 "database: Postgres, database $db"
admin_url="$(scripts/ensure-postgres.sh)"
db_url="${admin_url%/*}/$db"
record CLAIMLINE_DEMO_ADMIN_URL "$admin_url"
record CLAIMLINE_DEMO_DATABASE_URL "$db_url"
if psql "$admin_url" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  echo "$db exists on ${admin_url%/*}: reusing it (the service skips what it already has)"
else
  psql "$admin_url" -qc "CREATE DATABASE \"$db\""
  echo "created $db on ${admin_url%/*}"
fi

stage 3 "build: cargo build --release (the first build takes several minutes; later ones seconds)"
"${CARGO:-cargo}" build --release || die "cargo build --release failed (see above)"
bin="${CARGO_TARGET_DIR:-target}/release/claimline"

stage 4 "service: claimline run (metrics on 127.0.0.1:$metrics_port; log .run/claimline.log)"
if ours .run/claimline.pid claimline; then
  old="$(cat .run/claimline.pid)"
  echo "stopping the previous demo service (pid $old)"
  kill "$old" 2>/dev/null || true
  for _ in $(seq 1 250); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi
rm -f .run/claimline.pid
listening "$metrics_port" && taken "$metrics_port" "the demo's metrics" DEMO_METRICS_PORT
DATABASE_URL="$db_url" KAFKA_BOOTSTRAP_SERVERS="$bootstrap" CLAIMLINE_GROUP_ID="$group" \
CLAIMLINE_METRICS_ADDR="127.0.0.1:$metrics_port" CLAIMLINE_CREATE_TOPICS=true CLAIMLINE_RESUME_FROM_LOG_START=true CLAIMLINE_LOG_FORMAT=json \
  nohup "$bin" run >.run/claimline.log 2>&1 &
echo $! >.run/claimline.pid
for _ in $(seq 1 150); do
  curl -fsS "127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break; sleep 0.2
done
curl -fsS "127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 \
  || { tail -5 .run/claimline.log >&2; die "claimline did not get ready in 30 s; see .run/claimline.log"; }
echo "ready (pid $(cat .run/claimline.pid))"

n_good=$(grep -c . "$good")
n_bad=$(grep -c . "$bad")
stage 5 "examples: $n_good events from $good, then $n_bad bad one from $bad"
before=$(psql "$db_url" -qAtc "SELECT count(*) FROM encounter_events")
"$bin" send --bootstrap-servers "$bootstrap" --topic encounters "$good"
# send checks each line as the service would and refuses to send bad ones
# unless told to: here the bad one is meant to reach the service.
"$bin" send --bootstrap-servers "$bootstrap" --topic encounters --allow-invalid "$bad"
# Wait until the service has handled all of them (processed, whatever the
# outcome, or dead-lettered): the counters count redelivered events too.
want=$((n_good + n_bad))
handled() {
  curl -fsS "127.0.0.1:$metrics_port/metrics" 2>/dev/null \
    | awk '/^claimline_events_(processed|dead_lettered)_total[{ ]/ {s += $NF} END {print s + 0}'
}
for _ in $(seq 1 150); do
  [ "$(handled)" -ge "$want" ] && break; sleep 0.2
done
got="$(handled)"
[ "$got" -ge "$want" ] || echo "(only $got of $want events handled after 30 s; showing what there is)"

echo; echo "-- claim lines on claim-lines (validated and void)"
"$bin" read --bootstrap-servers "$bootstrap" --topic claim-lines --idle-secs 3 --format values \
  | python3 scripts/show-lines.py
echo; echo "-- claim lines on claim-lines.review (held)"
"$bin" read --bootstrap-servers "$bootstrap" --topic claim-lines.review --idle-secs 3 --format values \
  | python3 scripts/show-lines.py

echo; echo "-- dead letters on encounters.dlq (headers; the value is the original event, unchanged; one per run on this broker)"
"$bin" read --bootstrap-servers "$bootstrap" --topic encounters.dlq --idle-secs 3 --format full \
  | python3 -c '
import json, sys
for raw in sys.stdin:
    m = json.loads(raw)
    print("partition %s offset %s key %s" % (m.get("partition"), m.get("offset"), m.get("key")))
    for k, v in sorted(m.get("headers", {}).items()):
        print("    %-20s %s" % (k + ":", v))
'
echo "Dead letters are read with '$bin read --bootstrap-servers $bootstrap --topic encounters.dlq'" \
  "(error.reason and error.message are in the headers); the service also lists them in Postgres's dead_letters table."

echo; echo "-- rows in Postgres ($db_url)"
psql "$db_url" -P pager=off -c "SELECT event_id, encounter_id, encounter_version AS v, event_type, outcome, lines_produced AS lines, lines_voided AS voided FROM encounter_events ORDER BY processed_at, source_offset"
psql "$db_url" -P pager=off -c "SELECT claim_line_id, code, units, minutes, modifiers, status, expected_payment_cents AS cents FROM claim_lines ORDER BY encounter_id, encounter_version, line_no"
psql "$db_url" -P pager=off -c "SELECT source_partition AS partition, source_offset AS offset, reason, message, received_at FROM dead_letters ORDER BY received_at"
after=$(psql "$db_url" -qAtc "SELECT count(*) FROM encounter_events")
if [ "$after" -eq "$before" ]; then
  echo "this run added no events ($after recorded): every event was already there, and redelivery is idempotent"
else
  echo "this run added $((after - before)) events ($before recorded before, $after after); a second run adds none"
fi

echo; echo "-- summary from /metrics (since the service started)"
curl -fsS "127.0.0.1:$metrics_port/metrics" | python3 -c '
import sys, re
m = {}
buckets = []
for line in sys.stdin:
    if line.startswith("#"): continue
    name, value = line.rsplit(" ", 1)
    m[name] = float(value)
    b = re.match(r"claimline_processing_latency_seconds_bucket\{le=\"([^\"]+)\"\}", name)
    if b: buckets.append((float("inf") if b.group(1) == "+Inf" else float(b.group(1)), float(value)))
get = lambda k: int(m.get(k, 0))
print("events processed:", {o: get(f"claimline_events_processed_total{{outcome=\"{o}\"}}") for o in ["processed", "voided", "stale", "duplicate"]})
print("dead-lettered:   ", {r: get(f"claimline_events_dead_lettered_total{{reason=\"{r}\"}}") for r in ["invalid_json", "schema_violation", "too_large"]})
print("lines by status: ", {s: get(f"claimline_claim_lines_published_total{{status=\"{s}\"}}") for s in ["validated", "needs_review", "void"]})
total = buckets[-1][1] if buckets else 0
p99 = next((le for le, c in sorted(buckets) if total and c >= 0.99 * total), None)
print("p99 latency:      <=", f"{p99}s" if p99 is not None else "n/a (no lines published in this run)")
'
stage 6 "web view: claimline web on 127.0.0.1:$web_port (log .run/claimline-web.log)"
# A Medicare patient past the KX threshold and one within the margin below it.
kx=examples/kx-watch.jsonl
n_kx=$(grep -c . "$kx")
"$bin" send --bootstrap-servers "$bootstrap" --topic encounters "$kx"
want=$((want + n_kx))
for _ in $(seq 1 150); do
  [ "$(handled)" -ge "$want" ] && break; sleep 0.2
done
# Its own read role (SELECT on the web views only, deploy/compose/grant-web.sql),
# one per checkout; new passwords every run, kept in .run/ (mode 600).
web_role="claimline_demo_web_$CLAIMLINE_DEMO_ID"
umask 077
head -c 24 /dev/urandom | base64 | tr -d '/+=' >.run/web-password
role_password="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
psql "$admin_url" -v ON_ERROR_STOP=1 -q -v role="$web_role" -v pw="$role_password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOINHERIT', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" PASSWORD :'pw';
SQL
psql "$db_url" -v ON_ERROR_STOP=1 -q -c "GRANT CONNECT ON DATABASE \"$db\" TO \"$web_role\""
sed "s/claimline_web/\"$web_role\"/" deploy/compose/grant-web.sql | psql "$db_url" -v ON_ERROR_STOP=1 -q
record CLAIMLINE_DEMO_WEB_ROLE "$web_role"
if ours .run/claimline-web.pid claimline; then
  old="$(cat .run/claimline-web.pid)"
  echo "stopping the previous web view (pid $old)"
  kill "$old" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
fi
rm -f .run/claimline-web.pid
listening "$web_port" && taken "$web_port" "the demo's web view" DEMO_WEB_PORT
pg_host="${admin_url#*://}"; pg_host="${pg_host#*@}"; pg_host="${pg_host%%/*}"
DATABASE_URL="postgres://$web_role:$role_password@$pg_host/$db" CLAIMLINE_WEB_LISTEN="127.0.0.1:$web_port" \
CLAIMLINE_WEB_USER=revenue CLAIMLINE_WEB_PASSWORD_FILE=.run/web-password CLAIMLINE_LOG_FORMAT=json \
  nohup "$bin" web >.run/claimline-web.log 2>&1 &
echo $! >.run/claimline-web.pid
for _ in $(seq 1 100); do
  curl -fsS "127.0.0.1:$web_port/readyz" >/dev/null 2>&1 && break; sleep 0.1
done
curl -fsS "127.0.0.1:$web_port/readyz" >/dev/null 2>&1 \
  || { tail -5 .run/claimline-web.log >&2; die "claimline web did not get ready in 10 s; see .run/claimline-web.log"; }
echo "web view ready (pid $(cat .run/claimline-web.pid)): held lines, KX watch list, daily totals, CSV"
echo "   open      http://127.0.0.1:$web_port/"
echo "   user      revenue"
echo "   password  $(cat .run/web-password)   (also in .run/web-password)"

echo; echo "claimline keeps running (pid $(cat .run/claimline.pid)) on 127.0.0.1:$metrics_port, its web view on 127.0.0.1:$web_port;" \
  "'make stop' stops them and the broker and drops $db."
