-- Cheaper batch writes (issue 24): claim_lines_date_in_force was an index
-- entry for every claim line written (about four an event) and served one
-- reader, `claimline reprocess`'s list of the encounters with lines in
-- force in a date range. Measured here on the bench's 412,000 claim lines
-- (INSERT ... SELECT into an empty copy of the table, three runs each):
-- 1.8-1.9 s without it, 2.4-2.5 s with it.
--
-- That list now reads encounter_payloads_date (one entry an event, there
-- since 0006): every line in force came from a processed event whose
-- payload is stored with the line's date of service, and an encounter's
-- lines in force share one date, so the range's payloads whose encounter
-- has lines in force on the payload's date are each encounter once. The
-- exception is a line written before 0006 stored payloads: it has no
-- payload to re-evaluate, so reprocess changed nothing on it either.
DROP INDEX claim_lines_date_in_force;

-- The list is read in that index's order, (date of service, encounter id
-- in bytes), a page at a time from where the last one stopped: a run's
-- pages read the range once between them, where each page used to read
-- the whole range again. A run records the date of its last encounter
-- beside it.
ALTER TABLE reprocess_runs ADD COLUMN last_date date;

-- An interrupted run's "last encounter done" was a place in the old order
-- (encounter id in the database's collation): such a run is not resumed
-- (its fingerprint no longer matches any rule tables'). The next
-- `claimline reprocess` of its range starts over, and a second pass changes
-- nothing the first one changed.
UPDATE reprocess_runs SET rules_fingerprint = rules_fingerprint || ' (list order before 0014)'
WHERE finished_at IS NULL;
