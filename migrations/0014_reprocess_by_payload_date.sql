-- Cheaper batch writes (issue 24): claim_lines_date_in_force was an index
-- entry for every claim line written (about four an event) and served one
-- reader, `claimline reprocess`'s list of the encounters with lines in
-- force in a date range.
--
-- That list now starts from encounter_payloads_date (one entry an event,
-- there since 0006): every line in force came from a processed event whose
-- payload is stored with the line's date of service, so the encounters of
-- the range's payloads, kept where they have lines in force in the range
-- (read by a range of claim_lines' primary key), are the same encounters.
-- The exception is a line written before 0006 stored payloads: it has none
-- to re-evaluate, so reprocess had nothing to change on it either.
DROP INDEX claim_lines_date_in_force;

-- The list is now in byte order (encounter_payloads.encounter_id is
-- COLLATE "C"), where it was in the database's collation: an interrupted
-- run's "last encounter done" no longer marks the same place, so such a
-- run is not resumed (its fingerprint no longer matches any rule tables'):
-- the next `claimline reprocess` of its range starts over, and a second
-- pass changes nothing the first one changed.
UPDATE reprocess_runs SET rules_fingerprint = rules_fingerprint || ' (collation order, before 0014)'
WHERE finished_at IS NULL;
