#!/usr/bin/env bash
# make demo: Postgres and the Tansu broker (installed where missing), the
# service built and started, the shipped examples sent, and what comes out
# shown: claim lines from the topic, rows from Postgres, a metrics summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# On a first run the broker and claimline both compile: build claimline in
# the background meanwhile, so the two builds overlap.
mkdir -p .run
cargo build --release --quiet >.run/demo-build.log 2>&1 &
build=$!
admin_url="$(scripts/ensure-postgres.sh)"
bootstrap="$(BROKER_PORT="${DEMO_BROKER_PORT:-19094}" scripts/start-broker.sh)"
db_url="${admin_url%/*}/claimline_demo"
psql "$admin_url" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'claimline_demo'" | grep -q 1 \
  || psql "$admin_url" -qc "CREATE DATABASE claimline_demo"

echo "== building claimline"
wait "$build" || { cat .run/demo-build.log; exit 1; }
bin=target/release/claimline
port="${DEMO_METRICS_PORT:-9464}"

echo "== starting claimline run (logs: .run/claimline.log)"
[ -f .run/claimline.pid ] && kill "$(cat .run/claimline.pid)" 2>/dev/null || true
DATABASE_URL="$db_url" KAFKA_BOOTSTRAP_SERVERS="$bootstrap" CLAIMLINE_GROUP_ID=claimline-demo \
CLAIMLINE_METRICS_ADDR="127.0.0.1:$port" CLAIMLINE_CREATE_TOPICS=true CLAIMLINE_LOG_FORMAT=json \
  nohup "$bin" run >.run/claimline.log 2>&1 &
echo $! >.run/claimline.pid
for _ in $(seq 1 150); do
  curl -fsS "127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2
done
curl -fsS "127.0.0.1:$port/readyz" || { echo "claimline did not get ready; see .run/claimline.log"; exit 1; }

before=$(psql "$db_url" -qAtc "SELECT count(*) FROM encounter_events")
echo "== sending examples/encounters.jsonl to encounters"
"$bin" send --bootstrap-servers "$bootstrap" --topic encounters examples/encounters.jsonl
# Wait until the consumer has caught up (the metric counts every event, new or redelivered).
want=$(grep -c . examples/encounters.jsonl)
for _ in $(seq 1 150); do
  got=$(curl -fsS "127.0.0.1:$port/metrics" | awk '/^claimline_events_consumed_total/ {print $2}')
  [ "${got:-0}" -ge "$want" ] && break; sleep 0.2
done

echo; echo "== claim lines on claim-lines (validated and void)"
"$bin" read --bootstrap-servers "$bootstrap" --topic claim-lines --idle-secs 3 --format values \
  | python3 scripts/show-lines.py
echo; echo "== claim lines on claim-lines.review (held)"
"$bin" read --bootstrap-servers "$bootstrap" --topic claim-lines.review --idle-secs 3 --format values \
  | python3 scripts/show-lines.py

echo; echo "== rows in Postgres ($db_url)"
psql "$db_url" -P pager=off -c "SELECT event_id, encounter_id, encounter_version AS v, event_type, outcome, lines_produced AS lines, lines_voided AS voided FROM encounter_events ORDER BY processed_at, source_offset"
psql "$db_url" -P pager=off -c "SELECT claim_line_id, code, units, minutes, modifiers, status, expected_payment_cents AS cents FROM claim_lines ORDER BY encounter_id, encounter_version, line_no"
after=$(psql "$db_url" -qAtc "SELECT count(*) FROM encounter_events")
echo "events recorded before this run: $before, after: $after (a second run adds none: redelivery is idempotent)"

echo; echo "== summary from /metrics"
curl -fsS "127.0.0.1:$port/metrics" | python3 -c '
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
echo; echo "claimline keeps running (pid $(cat .run/claimline.pid)) on 127.0.0.1:$port; 'make stop' stops it and the broker."
