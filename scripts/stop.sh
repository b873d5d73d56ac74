#!/usr/bin/env bash
# make stop: stops what this checkout's scripts started (the demo service and
# every broker with a pid file in .run/: the demo's, and the tests' and the
# benchmark's on 19092 / 19193), waits until they are gone, then drops this
# checkout's demo database (named in .run/demo.env; see scripts/demo-env.sh).
# BROKER_PORT=N stops only the broker on that port and touches nothing else.
# A pid whose process runs in another directory (a .run/ copied from another
# checkout, or a reused pid) is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"
env_file=.run/demo.env

stop_pid_file() {
  local f=$1 pid cwd
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
  if [ -n "$cwd" ] && [ "$cwd" != "$root" ]; then
    echo "stop: pid $pid ($f) runs in $cwd, not in this checkout: left alone" >&2
  elif [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 250); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop: pid $pid ($f) is still running after 25 s" >&2
    else
      echo "stop: stopped pid $pid ($f)" >&2
    fi
  fi
  rm -f "$f"
}

if [ -n "${BROKER_PORT:-}" ]; then
  stop_pid_file ".run/tansu-$BROKER_PORT.pid"
  exit 0
fi

# The web view and the service first (it drains to the broker and Postgres),
# then the brokers.
stop_pid_file .run/claimline-web.pid
stop_pid_file .run/claimline.pid
for f in .run/tansu-*.pid; do stop_pid_file "$f"; done

# The demo database, if a demo run got as far as creating it: its name and
# the admin URL scripts/ensure-postgres.sh gave are in .run/demo.env.
[ -f "$env_file" ] || exit 0
unset CLAIMLINE_DEMO_DB CLAIMLINE_DEMO_ADMIN_URL CLAIMLINE_DEMO_ID
# shellcheck source=/dev/null
. "$env_file"
db="${CLAIMLINE_DEMO_DB:-}"
admin_url="${CLAIMLINE_DEMO_ADMIN_URL:-}"
[ -n "$db" ] && [ -n "$admin_url" ] || exit 0
ours="$(scripts/demo-env.sh | sed -n 's/^CLAIMLINE_DEMO_DB=//p')"
if [ "$db" != "$ours" ]; then
  echo "stop: $env_file names the database $db, but this checkout's is $ours" \
    "($env_file copied from another checkout?): not dropping it" >&2
  exit 1
fi
if psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; then
  echo "stop: dropped the demo database $db (${admin_url%/*})" >&2
  # The web view's read role (its only grants were on that database).
  psql "$admin_url" -qc "DROP ROLE IF EXISTS \"claimline_demo_web_${CLAIMLINE_DEMO_ID:-none}\"" >/dev/null || true
  grep -vE '^CLAIMLINE_DEMO_(ADMIN|DATABASE)_URL=' "$env_file" >"$env_file.tmp" || true
  mv "$env_file.tmp" "$env_file"
else
  echo "stop: could not drop the demo database $db at ${admin_url%/*} (is Postgres up?);" \
    "'make stop' again drops it" >&2
  exit 1
fi
