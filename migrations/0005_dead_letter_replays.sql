-- `claimline dlq replay` sends each dead letter back to the input topic once:
-- a row here per dead letter replayed (its position on the dead-letter topic).
CREATE TABLE dead_letter_replays (
    dlq_topic     text NOT NULL,
    dlq_partition integer NOT NULL,
    dlq_offset    bigint NOT NULL,
    reason        text NOT NULL,
    replayed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
