#!/usr/bin/env bash
# Stops what the scripts started (the demo service and the brokers) and
# waits until they are gone. BROKER_PORT=N stops only the broker on that port.
cd "$(dirname "$0")/.."
files=(.run/claimline.pid .run/tansu-*.pid)
[ -n "${BROKER_PORT:-}" ] && files=(".run/tansu-$BROKER_PORT.pid")
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$f"
done
exit 0
