#!/bin/bash
# Run once by the postgres image when it initialises an empty data directory
# (mounted at /docker-entrypoint-initdb.d by docker-compose.yml).
#
# Roles:
#   claimline       owns the database (so, from Postgres 15, its public
#                   schema): runs `claimline migrate` and the service.
#   grafana_reader  logs in, reads nothing yet. The reporting views do not
#                   exist at this point (the service's migrations create
#                   them later), so SELECT on them is granted by
#                   deploy/compose/grant-reporting.sql, which compose runs
#                   after every `claimline migrate` (a migration may drop and
#                   recreate a view, which drops its grants, as 0003 does).
#                   ALTER DEFAULT PRIVILEGES is not used: it cannot tell
#                   views from tables and would also open claim_lines and
#                   encounter_events, which hold patient ids.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" \
  -v owner_pw="${CLAIMLINE_DB_PASSWORD:?}" \
  -v reader_pw="${GRAFANA_DB_PASSWORD:?}" \
  -v web_pw="${WEB_DB_PASSWORD:?}" <<'SQL'
CREATE ROLE claimline LOGIN PASSWORD :'owner_pw';
ALTER DATABASE :"db" OWNER TO claimline;

CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_pw'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 8;
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
ALTER ROLE grafana_reader SET statement_timeout = '30s';

CREATE ROLE claimline_web LOGIN PASSWORD :'web_pw'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 8;
ALTER ROLE claimline_web SET default_transaction_read_only = on;
ALTER ROLE claimline_web SET statement_timeout = '30s';

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO claimline_web;
GRANT CONNECT ON DATABASE :"db" TO grafana_reader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
