-- Issue 11: CMS tables as effective-dated rule data, year-to-date KX
-- tracking, and the original payloads that reprocessing re-evaluates.

-- One imported CMS file (`claimline rules import`), reduced to the codes of
-- claimline's catalogue. Files of one kind and label (CMS splits the PTP
-- table into four) make one table, in force from valid_from until the next
-- table of that kind. Re-importing a file (same kind, same bytes) changes
-- nothing.
CREATE TABLE rule_tables (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('ptp', 'mue', 'pfs')),
    label        text NOT NULL,
    valid_from   date NOT NULL,
    file_name    text NOT NULL,
    file_sha256  text NOT NULL,
    rows_read    integer NOT NULL,
    rows_kept    integer NOT NULL,
    content      jsonb NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, file_sha256)
);

-- The original bytes of every processed event: what `claimline reprocess`
-- re-evaluates. They are PHI: same protections as claim_lines.
CREATE TABLE encounter_payloads (
    event_id           text COLLATE "C" PRIMARY KEY,
    encounter_id       text COLLATE "C" NOT NULL,
    encounter_version  integer NOT NULL,
    date_of_service    date NOT NULL,
    payload            bytea NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX encounter_payloads_date ON encounter_payloads (date_of_service, encounter_id);

-- The Medicare therapy group a line's payment counts toward for the KX
-- threshold: 'pt_slp' (PT and SLP together) or 'ot'; null for payers that
-- do not track it. Year-to-date totals sum the non-void lines.
ALTER TABLE claim_lines ADD COLUMN kx_group text CHECK (kx_group IN ('pt_slp', 'ot'));

-- A patient's lines in force by date: the year-to-date amounts (KX), and
-- the other encounters of a day (one patient, provider and payer on one
-- date of service are one day for the units).
CREATE INDEX claim_lines_patient_day ON claim_lines (patient_id, date_of_service)
    WHERE status <> 'void';

-- An encounter's lines: a reissue (a later visit the same day, a
-- reprocess) adds line numbers to an encounter version, so the lines in
-- force are looked up by encounter rather than derived from the event's
-- line count, and a reissue numbers above the version's highest, voided
-- lines included.
CREATE INDEX claim_lines_encounter ON claim_lines (encounter_id);

-- `claimline reprocess`: the encounters with lines in force in a date range.
CREATE INDEX claim_lines_date_in_force ON claim_lines (date_of_service, encounter_id)
    WHERE status <> 'void';

-- `claimline reprocess` runs: what they cover and how far they got, so an
-- interrupted run resumes after the last encounter it finished.
CREATE TABLE reprocess_runs (
    id             bigserial PRIMARY KEY,
    since          date NOT NULL,
    until          date NOT NULL,
    code           text,
    -- The rule tables it runs under ("count:newest id"): a run resumes only
    -- under the same ones.
    rules_fingerprint text NOT NULL,
    last_encounter text,
    encounters     integer NOT NULL DEFAULT 0,
    changed        integer NOT NULL DEFAULT 0,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
