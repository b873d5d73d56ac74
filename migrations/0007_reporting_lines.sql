-- Issue 26: reporting by when lines were processed, not by date of service,
-- so back-dated documentation shows on the dashboard; with the payer's plan
-- and the discipline to filter on. Views only: nothing is added to what a
-- batch writes, not even an index on created_at (every batch would pay for
-- it), so a panel scans the lines in force; at scale, point Grafana at a
-- read replica.

-- One row per claim line in force (void lines excluded), for the Grafana
-- panels to aggregate. No patient, encounter or line identifier and no
-- diagnosis: what the read-only reporting role may see.
--   processed_at  when the line was produced (a reissued line: when reissued)
--   plan          the payer's plan from the event that produced the line
--                 ('unknown' where its payload is not kept: before 0006).
--                 Read by a pattern, not by a jsonb cast: an event that
--                 serde accepts may hold what jsonb refuses (a lone
--                 surrogate escape in an unknown field), and one such
--                 payload must not break every panel; encode(..., 'escape')
--                 never fails on bytes.
--   discipline    PT / OT / SLP from the line's GP / GO / GN modifier
--   billable      validated with more than 0 units (a 0-unit line is not)
--   held          needs_review
--   kx            carries the KX modifier (Medicare: past the threshold)
--   kx_review     past the targeted medical review amount (KX_THRESHOLD warning)
--   error_flags   the codes of the error flags that hold the line
CREATE VIEW reporting_lines AS
SELECT c.created_at                                      AS processed_at,
       c.date_of_service,
       c.payer_id,
       coalesce(substring(encode(p.payload, 'escape')
                          FROM '"payer"\s*:\s*\{[^}]*"plan"\s*:\s*"(medicare|medicaid|commercial|other)"'),
                'unknown')                               AS plan,
       CASE WHEN 'GP' = ANY (c.modifiers) THEN 'PT'
            WHEN 'GO' = ANY (c.modifiers) THEN 'OT'
            WHEN 'GN' = ANY (c.modifiers) THEN 'SLP'
            ELSE 'unknown' END                           AS discipline,
       c.provider_npi,
       c.code,
       c.status,
       c.units,
       c.minutes,
       c.expected_payment_cents,
       (c.status = 'validated' AND c.units > 0)          AS billable,
       (c.status = 'needs_review')                       AS held,
       c.kx_group,
       ('KX' = ANY (c.modifiers))                        AS kx,
       (c.flags @> '[{"code": "KX_THRESHOLD", "severity": "warning"}]') AS kx_review,
       ARRAY(SELECT f ->> 'code' FROM jsonb_array_elements(c.flags) AS f
             WHERE f ->> 'severity' = 'error')           AS error_flags,
       c.rules_version
FROM claim_lines c
LEFT JOIN encounter_payloads p ON p.event_id = c.event_id COLLATE "C"
WHERE c.status <> 'void';
