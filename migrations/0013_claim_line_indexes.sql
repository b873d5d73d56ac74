-- Cheaper batch writes (issue 24): every index entry a claim line adds is
-- work and WAL on the hot path.
--
-- An encounter's lines are found by a range of the primary key instead of
-- an index of their own. claim_line_id is "{encounter_id}:{version}:{line_no}"
-- (contract section 2) compared byte by byte (COLLATE "C", migration 0003),
-- so every line of encounter E lies strictly between 'E:' and 'E;' (';'
-- follows ':'); the range also holds the lines of an encounter whose own id
-- starts with 'E:', which the encounter_id condition beside it drops.
-- claim_lines_encounter was four index entries per four-line event, about
-- an eighth of the claim lines' insert time (measured here: 400,000 lines
-- in batches of 1,320, 2.8 s with it and 2.4 s without).
DROP INDEX claim_lines_encounter;

-- Its readers, as in 0012 and 0008 with the range added.
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
    -- the days. LATERAL ... OFFSET 0: index probes per encounter (a range
    -- of the primary key) and per day, whatever the table's statistics say.
    SELECT coalesce(array_agg(l), '{}') INTO v_lines FROM (
        SELECT c.* FROM unnest(v_known) AS u(id)
        CROSS JOIN LATERAL (SELECT * FROM claim_lines c
                            WHERE c.claim_line_id > (u.id || ':') COLLATE "C"
                              AND c.claim_line_id < (u.id || ';') COLLATE "C"
                              AND c.encounter_id = u.id AND c.status <> 'void' OFFSET 0) AS c
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

CREATE OR REPLACE VIEW web_held_lines AS
SELECT c.claim_line_id,
       c.encounter_id,
       c.encounter_version,
       c.date_of_service,
       c.patient_id,
       c.provider_npi,
       coalesce(p.encounter -> 'provider' ->> 'discipline',
                CASE WHEN 'GP' = ANY (c.modifiers) THEN 'PT'
                     WHEN 'GO' = ANY (c.modifiers) THEN 'OT'
                     WHEN 'GN' = ANY (c.modifiers) THEN 'SLP' END) AS discipline,
       c.payer_id,
       p.encounter -> 'payer' ->> 'plan' AS plan,
       c.line_no,
       c.code,
       c.units,
       c.modifiers,
       c.expected_payment_cents,
       c.flags,
       coalesce((SELECT min(h.created_at)
                 FROM claim_lines h
                 WHERE h.claim_line_id > (c.encounter_id || ':') COLLATE "C"
                   AND h.claim_line_id < (c.encounter_id || ';') COLLATE "C"
                   AND h.encounter_id = c.encounter_id
                   AND h.code = c.code
                   AND h.flags @> '[{"severity": "error"}]'),
                c.created_at) AS held_since
FROM claim_lines c
LEFT JOIN LATERAL (
    SELECT convert_from(e.payload, 'UTF8')::jsonb -> 'encounter' AS encounter
    FROM encounter_payloads e
    WHERE e.event_id = c.event_id
) p ON true
WHERE c.status = 'needs_review';

-- The outbox row's arrays (a batch's line ids, statuses, topics and
-- encounters: tens of kB) are compressed when stored; lz4 costs a fraction
-- of pglz's time. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE claim_line_outbox
        ALTER COLUMN claim_line_ids SET COMPRESSION lz4,
        ALTER COLUMN statuses SET COMPRESSION lz4,
        ALTER COLUMN topics SET COMPRESSION lz4,
        ALTER COLUMN encounter_ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available: the outbox keeps pglz';
END
$$;
