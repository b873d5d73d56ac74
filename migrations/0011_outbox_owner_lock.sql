-- An outbox row whose owner proves it is alive by holding a session-level
-- advisory lock on its instance id (on a connection of its own): once
-- another instance can take that lock, the owner's session is gone and its
-- rows are taken over at once rather than when their lease lapses. Rows
-- written by a version that holds no such lock keep waiting for the lease.
ALTER TABLE claim_line_outbox
    ADD COLUMN owner_locked boolean NOT NULL DEFAULT false;
