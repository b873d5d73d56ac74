#!/usr/bin/env bash
# Prints a Postgres admin URL on stdout. Uses the server on 127.0.0.1:5432
# when one answers; otherwise starts a private cluster under .run/pg (port
# 55432), installing Postgres from Debian's packages if initdb is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "ensure-postgres: $*" >&2; }

# FORCE_PRIVATE_PG=1 skips the shared server (to exercise the private path).
if [ -z "${FORCE_PRIVATE_PG:-}" ] && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null \
   && psql "postgres://postgres@127.0.0.1:5432/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "postgres://postgres@127.0.0.1:5432/postgres"
  exit 0
fi

port=55432
dir="$PWD/.run/pg"
url="postgres://postgres@127.0.0.1:$port/postgres"
if pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then echo "$url"; exit 0; fi

bin=""
for cand in "$(command -v initdb 2>/dev/null || true)" /usr/lib/postgresql/*/bin/initdb; do
  [ -x "$cand" ] && bin="$(dirname "$cand")" && break
done
if [ -z "$bin" ]; then
  log "no Postgres here; installing it from Debian's packages"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")"
fi

# initdb refuses to run as root: run the private cluster as the postgres user.
run_as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
  run_as=(runuser -u postgres --)
fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
  log "creating a private cluster in $dir"
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >&2
fi
# TLS like a real server (the tests connect with sslmode=require): a
# self-signed certificate made once for the private cluster.
if [ ! -f "$dir/data/server.key" ]; then
  log "making a self-signed certificate for the private cluster"
  openssl req -new -x509 -days 3650 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >/dev/null 2>&1
  chmod 600 "$dir/data/server.key"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/data/server.key" "$dir/data/server.crt"
fi
log "starting the private cluster on port $port"
"${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c ssl=on" start >&2
echo "$url"
