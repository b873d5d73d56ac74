#!/usr/bin/env bash
# Starts a Tansu broker with in-memory storage on 127.0.0.1:$PORT (default
# 19092) unless one already answers there (see BROKER_FRESH below), and
# waits until it accepts connections. Prints the bootstrap address. The broker is the prebuilt
# release build scripts/ensure-tansu.sh installs (the demo, the tests and the
# benchmark use the same one, on ports of their own).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
port="${BROKER_PORT:-19092}"
mkdir -p .run
up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
# BROKER_FRESH=1 (the benchmark, after stopping its own): a broker that
# already answers is not this checkout's to reuse. Its in-memory topics only
# grow (one left running by an interrupted run grew to 12 GB over a dozen
# benchmark runs, and the kernel's reclaim took most of a core).
if [ -n "${BROKER_FRESH:-}" ] && up; then
  echo "start-broker: a broker this checkout did not start already answers on" \
    "127.0.0.1:$port; the benchmark needs a fresh one: stop that process first" >&2
  exit 1
fi
if ! up; then
  tansu="$(scripts/ensure-tansu.sh)"
  echo "start-broker: starting $tansu on 127.0.0.1:$port" >&2
  nohup "$tansu" broker --storage-engine memory://tansu/ \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" >".run/tansu-$port.log" 2>&1 &
  echo $! >".run/tansu-$port.pid"
  for _ in $(seq 1 100); do up && break; sleep 0.1; done
  up || { echo "start-broker: tansu did not start; see .run/tansu-$port.log" >&2; exit 1; }
fi
echo "127.0.0.1:$port"
