-- Views for revenue-cycle dashboards (Grafana reads them through a
-- read-only Postgres data source). Void lines are excluded from billing.

-- Units and expected payment by code, provider and day.
CREATE VIEW billing_by_code_provider_day AS
SELECT date_of_service,
       code,
       provider_npi,
       count(*)                                   AS lines,
       sum(units)                                 AS units,
       sum(coalesce(expected_payment_cents, 0))::bigint AS expected_payment_cents,
       count(*) FILTER (WHERE status = 'needs_review') AS lines_held
FROM claim_lines
WHERE status <> 'void'
GROUP BY date_of_service, code, provider_npi;

-- Lines held for review, by the error flag that holds them.
CREATE VIEW lines_held_by_flag AS
SELECT f.flag ->> 'code'                        AS flag,
       count(DISTINCT c.claim_line_id)          AS lines,
       sum(c.units)                             AS units,
       sum(coalesce(c.expected_payment_cents, 0))::bigint AS expected_payment_cents
FROM claim_lines c
CROSS JOIN LATERAL jsonb_array_elements(c.flags) AS f(flag)
WHERE c.status = 'needs_review' AND f.flag ->> 'severity' = 'error'
GROUP BY f.flag ->> 'code';

-- Dead-lettered messages by reason and day.
CREATE VIEW dead_letters_by_reason AS
SELECT received_at::date AS day, reason, count(*) AS messages
FROM dead_letters
GROUP BY received_at::date, reason;

-- Event outcomes by day (processed, voided, stale).
CREATE VIEW events_by_outcome_day AS
SELECT processed_at::date AS day, event_type, outcome, count(*) AS events
FROM encounter_events
GROUP BY processed_at::date, event_type, outcome;
