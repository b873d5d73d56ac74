-- Contract tables (section 4) and claimline's own bookkeeping.

-- One row per processed event_id: the idempotency record.
CREATE TABLE encounter_events (
    event_id           text PRIMARY KEY,
    encounter_id       text NOT NULL,
    encounter_version  integer NOT NULL,
    event_type         text NOT NULL CHECK (event_type IN ('finalized', 'amended', 'voided')),
    outcome            text NOT NULL CHECK (outcome IN ('processed', 'voided', 'stale')),
    lines_produced     integer NOT NULL DEFAULT 0,
    lines_voided       integer NOT NULL DEFAULT 0,
    occurred_at        timestamptz NOT NULL,
    processed_at       timestamptz NOT NULL DEFAULT now(),
    source_topic       text NOT NULL,
    source_partition   integer NOT NULL,
    source_offset      bigint NOT NULL
);
-- The newest version of an encounter is the highest of its events.
CREATE INDEX encounter_events_encounter ON encounter_events (encounter_id, encounter_version);

-- One row per produced line; a void sets status to 'void'.
CREATE TABLE claim_lines (
    claim_line_id           text PRIMARY KEY,
    encounter_id            text NOT NULL,
    encounter_version       integer NOT NULL,
    event_id                text NOT NULL,
    date_of_service         date NOT NULL,
    patient_id              text NOT NULL,
    provider_npi            text NOT NULL,
    payer_id                text NOT NULL,
    line_no                 integer NOT NULL CHECK (line_no >= 1),
    code                    text NOT NULL,
    units                   integer NOT NULL CHECK (units >= 0),
    minutes                 integer NOT NULL,
    modifiers               text[] NOT NULL,
    unit_method             text NOT NULL CHECK (unit_method IN ('cms_total_time', 'per_code')),
    status                  text NOT NULL CHECK (status IN ('validated', 'needs_review', 'void')),
    flags                   jsonb NOT NULL,
    diagnoses               text[] NOT NULL,
    expected_payment_cents  bigint,
    rules_version           text NOT NULL,
    voided_by_event_id      text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox: one row per batch listing, in publishing order,
-- the messages for the claim-line topics that the broker has not yet
-- acknowledged. It is written in the same transaction as the lines and
-- deleted once every message of the batch was acknowledged, so a line is
-- "published" when no row lists it. Each message is the claim_lines row
-- with the listed status (a void carries voided_by_event_id). Rows left
-- after a crash are sent again at start-up.
CREATE TABLE claim_line_outbox (
    id              bigserial PRIMARY KEY,
    claim_line_ids  text[] NOT NULL,
    statuses        text[] NOT NULL,
    topics          text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Every dead-lettered message, once per source position.
CREATE TABLE dead_letters (
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    reason            text NOT NULL,
    message           text NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
