-- The outbox has an owner (contract section 2). The instance that writes a
-- batch publishes its row while it renews the lease; when the lease lapses
-- (that instance died or is stuck) any instance's sweep claims the row.
-- encounter_ids lets a batch find the unpublished rows of its encounters,
-- which must go out before its own voids and replacements.
ALTER TABLE claim_line_outbox
    ADD COLUMN encounter_ids text[] NOT NULL DEFAULT '{}',
    ADD COLUMN owner text NOT NULL DEFAULT '',
    ADD COLUMN lease_until timestamptz NOT NULL DEFAULT '-infinity';

-- A batch looks up the unpublished rows of its encounters (&&): without an
-- index every row's array would be compared element by element.
CREATE INDEX claim_line_outbox_encounters ON claim_line_outbox USING gin (encounter_ids);

-- Rows written before this migration: their encounters from their line ids
-- ("{encounter_id}:{version}:{line_no}"); their lease has lapsed.
UPDATE claim_line_outbox o SET encounter_ids = ARRAY(
    SELECT DISTINCT regexp_replace(c, ':[^:]*:[^:]*$', '') FROM unnest(o.claim_line_ids) AS c);

-- Dead-letter values the broker would not take (contract section 2): the
-- dead letter goes out with its headers and an empty value, and the
-- original bytes stay here. They may be PHI: same protections as
-- claim_lines.
CREATE TABLE dead_letter_payloads (
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    key              bytea,
    value            bytea NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
