-- The batch transaction's first step in one round trip: lock the batch's
-- encounters, then its patient-years (each set in sorted order, encounters
-- first, as before), then read everything the ledger needs. A PL/pgSQL
-- function, not one statement: each query in it takes a new snapshot (READ
-- COMMITTED), so the reads after the locks see what the transaction that
-- held them committed. A statement that locked and read at once would read
-- from a snapshot older than its locks.
--
-- Rows, by kind:
--   'y' year-to-date: t1 patient, t2 kx_group, i1 year, i2 cents
--   'v' newest version of a batch encounter: t1 encounter, i1 version
--   's' an event processed before: t1 event, t2 encounter, i1 version
--   'l' a line in force (of the batch's encounters and of every encounter on
--       their days): j the claim_lines row as jsonb
--   'o' an unpublished outbox row of those encounters, locked (FOR UPDATE):
--       t1 owner, i1 id, i2 1 when live (its lease holds and its owner's
--       lock is held), else 0
--   'r' the imported rule tables: i1 count, i2 newest id
CREATE FUNCTION claimline_lock_and_load(
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

    RETURN QUERY
        SELECT 'y'::"char", u.p, c.kx_group, u.y::int8, sum(c.expected_payment_cents)::int8, NULL::jsonb
        FROM unnest(p_py_patients, p_py_years) AS u(p, y)
        CROSS JOIN LATERAL (SELECT kx_group, expected_payment_cents FROM claim_lines
                            WHERE patient_id = u.p AND status <> 'void' AND kx_group IS NOT NULL
                              AND date_of_service >= make_date(u.y, 1, 1)
                              AND date_of_service < make_date(u.y + 1, 1, 1) OFFSET 0) AS c
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
    -- the days. LATERAL ... OFFSET 0: index probes per encounter and per
    -- day, whatever the table's statistics say.
    SELECT coalesce(array_agg(l), '{}') INTO v_lines FROM (
        SELECT c.* FROM unnest(v_known) AS u(id)
        CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                            WHERE c.encounter_id = u.id AND c.status <> 'void' OFFSET 0) AS c
        UNION ALL
        SELECT c.* FROM unnest(p_day_patients, p_day_payers, p_day_dates) AS u(p, pay, d)
        CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                            WHERE c.patient_id = u.p AND c.date_of_service = u.d AND c.status <> 'void'
                              AND c.payer_id = u.pay
                              AND NOT (c.encounter_id = ANY(v_known)) OFFSET 0) AS c
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
