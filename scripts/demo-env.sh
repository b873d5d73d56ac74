#!/usr/bin/env bash
# Prints `make demo`'s settings for this checkout as shell assignments
# (KEY=value, one a line; scripts/demo.sh writes them to .run/demo.env).
# Every value is derived from the checkout's absolute path, so two checkouts
# on one machine get their own database, consumer group and ports:
#   id          the first 8 hex digits of the sha256 of the path
#   database    claimline_demo_<id>     consumer group  claimline-demo-<id>
#   ports       one slot (0-3999) from the id: broker 20000+slot, metrics
#               24000+slot, web view 28000+slot (reserved for `claimline
#               web`). All below Linux's ephemeral range (32768-60999), so
#               an outgoing connection never holds one of them.
# DEMO_BROKER_PORT, DEMO_METRICS_PORT and DEMO_WEB_PORT override the ports.
# Nothing is started or checked here: scripts/demo.sh checks the ports.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd -P)"
id="$(printf '%s' "$root" | sha256sum | cut -c1-8)"
slot=$(( 16#$id % 4000 ))
port() { # NAME OVERRIDE DEFAULT
  local p="${2:-$3}"
  if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
    echo "demo-env: $1=$p is not a port number (1-65535)" >&2; exit 2
  fi
  echo "$p"
}
broker="$(port DEMO_BROKER_PORT "${DEMO_BROKER_PORT:-}" $((20000 + slot)))"
metrics="$(port DEMO_METRICS_PORT "${DEMO_METRICS_PORT:-}" $((24000 + slot)))"
web="$(port DEMO_WEB_PORT "${DEMO_WEB_PORT:-}" $((28000 + slot)))"

echo "# make demo's settings for this checkout, derived from its path by scripts/demo-env.sh."
echo "# In a shell: . .run/demo.env; then e.g."
echo "#   target/release/claimline read --bootstrap-servers \"127.0.0.1:\$CLAIMLINE_DEMO_BROKER_PORT\" --topic encounters.dlq"
printf 'CLAIMLINE_DEMO_CHECKOUT=%q\n' "$root"
echo "CLAIMLINE_DEMO_ID=$id"
echo "CLAIMLINE_DEMO_DB=claimline_demo_$id"
echo "CLAIMLINE_DEMO_GROUP_ID=claimline-demo-$id"
echo "CLAIMLINE_DEMO_BROKER_PORT=$broker"
echo "CLAIMLINE_DEMO_METRICS_PORT=$metrics"
echo "CLAIMLINE_DEMO_WEB_PORT=$web"
