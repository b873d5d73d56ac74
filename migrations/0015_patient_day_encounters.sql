-- Cheaper batch writes (issue 24): claim_lines_patient_day was an index
-- entry for every claim line in force (about four an event), on the
-- patient id in the database's collation. Its readers, the batch load's
-- year-to-date amounts and a day's other encounters, need the encounters
-- of a patient's days, not each line: one entry an encounter and day does.
--
-- patient_day_encounters holds (patient, date of service, encounter) for
-- every encounter that has had lines in force on that patient's day. The
-- batch write adds an entry with an encounter's first lines on a day; no
-- entry is ever removed, so an entry may be stale (the encounter amended to
-- another day or patient, or voided), and the readers take only the lines
-- in force that match the day. What the table promises: every line in
-- force has its (patient_id, date_of_service, encounter_id) entry.
--
-- Measured here on the bench's 412,000 claim lines of 103,000 encounters
-- (a database kept by BENCH_KEEP_DB; INSERT ... SELECT into empty copies):
-- the lines with the index 1.26-1.74 s, without it 1.12-1.26 s; the
-- 103,000 entries 0.16-0.22 s as the batch write adds them (NOT EXISTS),
-- 0.28-0.45 s with ON CONFLICT DO NOTHING instead.
CREATE TABLE patient_day_encounters (
    patient_id      text COLLATE "C" NOT NULL,
    date_of_service date NOT NULL,
    encounter_id    text COLLATE "C" NOT NULL,
    PRIMARY KEY (patient_id, date_of_service, encounter_id)
);

-- Rolling updates: a replica of an earlier release, still running, would
-- write lines in force without their entries, which the load below would
-- not find (wrong units, a missed KX). Every claimline session names the
-- newest migration its release knows (the startup option
-- claimline.schema_version, src/store/mod.rs); an insert of claim lines by
-- a session that knows none from 0015 on fails with SQLSTATE 55000, which
-- the earlier releases retry as transient: such a replica stands still
-- (nothing written, nothing dead-lettered) until the rollout replaces it.
-- One call a statement, not a row.
CREATE FUNCTION claimline_writer_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v text := current_setting('claimline.schema_version', true);
BEGIN
    IF v IS NULL OR v !~ '^[0-9]{1,9}$' OR v::int < 15 THEN
        RAISE EXCEPTION 'claim lines written by a claimline release before migration 0015 (they would lack their patient_day_encounters entries): upgrade this replica'
            USING ERRCODE = '55000';
    END IF;
    RETURN NULL;
END
$$;

-- Created before the lines are listed: it waits for the writers in flight
-- to commit and holds off new ones until this migration commits, so the
-- list below sees every line written before, and every line written after
-- comes from a writer that adds its entries.
CREATE TRIGGER claim_lines_writer_guard BEFORE INSERT ON claim_lines
    FOR EACH STATEMENT EXECUTE FUNCTION claimline_writer_guard();

INSERT INTO patient_day_encounters (patient_id, date_of_service, encounter_id)
SELECT DISTINCT patient_id, date_of_service, encounter_id FROM claim_lines WHERE status <> 'void';

DROP INDEX claim_lines_patient_day;

-- Its readers, as in 0013 with the day's encounters from the new table.
CREATE OR REPLACE FUNCTION claimline_lock_and_load(
    p_encounters text[],
    p_events text[],
    p_py_patients text[],
    p_py_years int4[],
    p_day_patients text[],
    p_day_payers text[],
    p_day_dates date[],
    p_owner_space int4
) RETURNS TABLE (kind "char", t1 text, t2 text, i1 int8, i2 int8, j jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_known text[];
    v_versions int4[];
    v_lines claim_lines[];
    v_active text[];
BEGIN
    -- Transaction-scoped advisory locks in sorted order, so two instances
    -- cannot deadlock; a hash collision only serialises more.
    PERFORM count(pg_advisory_xact_lock(k)) FROM
        (SELECT hashtextextended(id, 0) AS k FROM unnest(p_encounters) WITH ORDINALITY AS u(id, n) ORDER BY n) AS keys;
    PERFORM count(pg_advisory_xact_lock(k1, k2)) FROM
        (SELECT hashtext(p) AS k1, y AS k2 FROM unnest(p_py_patients, p_py_years) AS u(p, y) ORDER BY 1, 2) AS keys;

    -- The year's encounters once each (an encounter moved to another day
    -- has an entry on both), then their lines in force of that year.
    RETURN QUERY
        SELECT 'y'::"char", u.p, c.kx_group, u.y::int8, sum(c.expected_payment_cents)::int8, NULL::jsonb
        FROM unnest(p_py_patients, p_py_years) AS u(p, y)
        CROSS JOIN LATERAL (SELECT DISTINCT d.encounter_id FROM patient_day_encounters d
                            WHERE d.patient_id = u.p
                              AND d.date_of_service >= make_date(u.y, 1, 1)
                              AND d.date_of_service < make_date(u.y + 1, 1, 1)) AS d
        CROSS JOIN LATERAL (SELECT kx_group, expected_payment_cents FROM claim_lines c
                            WHERE c.claim_line_id > (d.encounter_id || ':') COLLATE "C"
                              AND c.claim_line_id < (d.encounter_id || ';') COLLATE "C"
                              AND c.encounter_id = d.encounter_id AND c.patient_id = u.p
                              AND c.status <> 'void' AND c.kx_group IS NOT NULL
                              AND c.date_of_service >= make_date(u.y, 1, 1)
                              AND c.date_of_service < make_date(u.y + 1, 1, 1) OFFSET 0) AS c
        GROUP BY u.p, u.y, c.kx_group;

    -- One index probe per encounter, whatever the table's statistics say.
    SELECT coalesce(array_agg(u.id), '{}'), coalesce(array_agg(v.version), '{}')
      INTO v_known, v_versions
      FROM unnest(p_encounters) AS u(id)
      CROSS JOIN LATERAL (SELECT encounter_version AS version FROM encounter_events e
                          WHERE e.encounter_id = u.id ORDER BY encounter_version DESC LIMIT 1) AS v;
    RETURN QUERY
        SELECT 'v'::"char", u.id, NULL::text, u.version::int8, NULL::int8, NULL::jsonb
        FROM unnest(v_known, v_versions) AS u(id, version);

    RETURN QUERY
        SELECT 's'::"char", e.event_id::text, e.encounter_id::text, e.encounter_version::int8, NULL::int8, NULL::jsonb
        FROM encounter_events e WHERE e.event_id = ANY(p_events);

    -- The lines in force of the known encounters and of every encounter on
    -- the days. LATERAL ... OFFSET 0: index probes per encounter (a range
    -- of the primary key) and per day, whatever the table's statistics say.
    -- A day's entries may name an encounter whose lines in force are now on
    -- another day, of another patient or payer, or void: the conditions on
    -- the lines drop those.
    SELECT coalesce(array_agg(l), '{}') INTO v_lines FROM (
        SELECT c.* FROM unnest(v_known) AS u(id)
        CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                            WHERE c.claim_line_id > (u.id || ':') COLLATE "C"
                              AND c.claim_line_id < (u.id || ';') COLLATE "C"
                              AND c.encounter_id = u.id AND c.status <> 'void' OFFSET 0) AS c
        UNION ALL
        SELECT c.* FROM unnest(p_day_patients, p_day_payers, p_day_dates) AS u(p, pay, d)
        CROSS JOIN LATERAL (SELECT x.encounter_id FROM patient_day_encounters x
                            WHERE x.patient_id = u.p AND x.date_of_service = u.d
                              AND NOT (x.encounter_id = ANY(v_known)) OFFSET 0) AS x
        CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                            WHERE c.claim_line_id > (x.encounter_id || ':') COLLATE "C"
                              AND c.claim_line_id < (x.encounter_id || ';') COLLATE "C"
                              AND c.encounter_id = x.encounter_id AND c.patient_id = u.p
                              AND c.date_of_service = u.d AND c.payer_id = u.pay
                              AND c.status <> 'void' OFFSET 0) AS c
    ) AS l;
    RETURN QUERY
        SELECT 'l'::"char", NULL::text, NULL::text, NULL::int8, NULL::int8, to_jsonb(l)
        FROM unnest(v_lines) AS l;

    -- Unpublished outbox rows of those encounters, locked until the batch
    -- ends. Live: its lease holds and its owner still holds its owner lock
    -- (a lock this session can take belongs to a session that is gone).
    v_active := ARRAY(SELECT DISTINCT l.encounter_id::text FROM unnest(v_lines) AS l);
    RETURN QUERY
        SELECT 'o'::"char", o.owner, NULL::text, o.id,
               (o.lease_until > now()
                AND NOT (o.owner_locked
                         AND pg_try_advisory_xact_lock(p_owner_space, hashtext(split_part(o.owner, '/', 1)))))::int4::int8,
               NULL::jsonb
        FROM claim_line_outbox o
        WHERE o.encounter_ids && (v_known || v_active)
        ORDER BY o.id FOR UPDATE;

    RETURN QUERY
        SELECT 'r'::"char", NULL::text, NULL::text, count(*), coalesce(max(id), 0), NULL::jsonb
        FROM rule_tables;
END
$$;
