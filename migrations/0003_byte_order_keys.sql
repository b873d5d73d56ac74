-- Identifiers compare byte by byte. Under the database's locale (e.g.
-- C.UTF-8, which Postgres 15 does not treat as "C") every key comparison
-- goes through strcoll; with the "C" collation the primary keys and the
-- encounter index compare with memcmp, which makes the bulk inserts and
-- lookups of every batch cheaper. Ids have no linguistic order to keep.

-- The view reads claim_line_id; it is recreated unchanged.
DROP VIEW lines_held_by_flag;

ALTER TABLE claim_lines
    ALTER COLUMN claim_line_id TYPE text COLLATE "C";

ALTER TABLE encounter_events
    ALTER COLUMN event_id TYPE text COLLATE "C",
    ALTER COLUMN encounter_id TYPE text COLLATE "C";

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
