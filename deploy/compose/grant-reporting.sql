-- Lets the read-only Grafana role read the reporting views, and nothing
-- else. Run as the views' owner after the migrations, every time they run
-- (docker-compose.yml: service db-grants, after migrate); idempotent.
-- A view runs with its owner's rights, so grafana_reader reads the
-- aggregates without any right on claim_lines or encounter_events.
-- scripts/check-deploy.sh checks that this list covers every relation the
-- dashboard's SQL panels read, and that each is a view in migrations/.
GRANT SELECT ON
    billing_by_code_provider_day,
    lines_held_by_flag,
    dead_letters_by_reason,
    events_by_outcome_day,
    reporting_lines
TO grafana_reader;
