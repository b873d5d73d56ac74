-- Lets claimline web's role read the views its pages show, and nothing
-- else. Run as the views' owner after the migrations, every time they run
-- (docker-compose.yml: service db-grants; Kubernetes: the same file);
-- idempotent. A view runs with its owner's rights, so claimline_web reads
-- what the pages show without any right on claim_lines, encounter_payloads
-- or encounter_events. These views show patient ids: a role of its own,
-- not Grafana's. scripts/check-deploy.sh checks that each is a view in
-- migrations/.
GRANT SELECT ON
    web_held_lines,
    web_kx_running,
    web_daily_totals
TO claimline_web;
