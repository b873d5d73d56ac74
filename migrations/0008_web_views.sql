-- Issue 25: the views `claimline web` reads. Its role (claimline_web,
-- deploy/compose/grant-web.sql) is granted SELECT on these views only; a
-- view runs with its owner's rights, so the role needs no right on
-- claim_lines, encounter_payloads or encounter_events. Nothing here is on
-- the service's batch write path except one small partial index.

-- Every line held for review and still in force, with what the queue shows.
-- The plan and the discipline are not claim_lines columns: they come from
-- the event that produced the line (its stored payload); the discipline
-- falls back to the line's GP/GO/GN. held_since: when this encounter and
-- code were first held, across reissues and amendments (a voided line keeps
-- its flags, so an earlier held version counts).
CREATE VIEW web_held_lines AS
SELECT c.claim_line_id,
       c.encounter_id,
       c.encounter_version,
       c.date_of_service,
       c.patient_id,
       c.provider_npi,
       coalesce(p.encounter -> 'provider' ->> 'discipline',
                CASE WHEN 'GP' = ANY (c.modifiers) THEN 'PT'
                     WHEN 'GO' = ANY (c.modifiers) THEN 'OT'
                     WHEN 'GN' = ANY (c.modifiers) THEN 'SLP' END) AS discipline,
       c.payer_id,
       p.encounter -> 'payer' ->> 'plan' AS plan,
       c.line_no,
       c.code,
       c.units,
       c.modifiers,
       c.expected_payment_cents,
       c.flags,
       coalesce((SELECT min(h.created_at)
                 FROM claim_lines h
                 WHERE h.encounter_id = c.encounter_id
                   AND h.code = c.code
                   AND h.flags @> '[{"severity": "error"}]'),
                c.created_at) AS held_since
FROM claim_lines c
LEFT JOIN LATERAL (
    SELECT convert_from(e.payload, 'UTF8')::jsonb -> 'encounter' AS encounter
    FROM encounter_payloads e
    WHERE e.event_id = c.event_id
) p ON true
WHERE c.status = 'needs_review';

-- The queue reads the held lines alone: a partial index keeps that a small
-- scan whatever the size of claim_lines.
CREATE INDEX claim_lines_held ON claim_lines (date_of_service) WHERE status = 'needs_review';

-- Medicare lines in force with the running year-to-date amount of their
-- patient, year and therapy group (PT and SLP together, OT alone), in the
-- order processed, as the service adds them up for KX.
CREATE VIEW web_kx_running AS
SELECT patient_id,
       extract(year FROM date_of_service)::int AS year,
       kx_group,
       date_of_service,
       claim_line_id,
       created_at,
       coalesce(expected_payment_cents, 0) AS cents,
       sum(coalesce(expected_payment_cents, 0)) OVER (
           PARTITION BY patient_id, extract(year FROM date_of_service)::int, kx_group
           ORDER BY created_at, claim_line_id)::bigint AS ytd_cents
FROM claim_lines
WHERE status <> 'void' AND kx_group IS NOT NULL;

-- Lines, units and expected amounts by date of service, payer and status
-- (held and validated apart). A 0-unit line (NO_UNITS) is not billable:
-- counted apart, and neither its units nor its amount are billable.
CREATE VIEW web_daily_totals AS
SELECT date_of_service,
       payer_id,
       status,
       count(*) FILTER (WHERE units > 0) AS billable_lines,
       count(*) FILTER (WHERE units = 0) AS not_billable_lines,
       coalesce(sum(units), 0)::bigint AS units,
       coalesce(sum(expected_payment_cents) FILTER (WHERE units > 0), 0)::bigint AS expected_payment_cents
FROM claim_lines
WHERE status <> 'void'
GROUP BY date_of_service, payer_id, status;
