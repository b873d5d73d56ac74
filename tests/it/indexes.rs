//! Migration 0013: an encounter's claim lines are read by a range of the
//! primary key ("{encounter_id}:{version}:{line_no}", byte order) instead
//! of an index of their own. The range is served by the primary key and
//! yields exactly the encounter's lines, not those of an encounter whose id
//! is the same text followed by a colon.
//!
//! Migration 0015: a patient's days are read from `patient_day_encounters`
//! instead of an index of every line; the migration lists the encounter of
//! every line in force on its day.

use crate::support::TestEnv;

/// `n` lines of `encounter` version `version`, in force.
fn lines(encounter: &str, version: i32, n: i32) -> String {
    format!(
        "INSERT INTO claim_lines (claim_line_id, encounter_id, encounter_version, event_id,
             date_of_service, patient_id, provider_npi, payer_id, line_no, code, units, minutes,
             modifiers, unit_method, status, flags, diagnoses, rules_version)
         SELECT '{encounter}:{version}:' || l, '{encounter}', {version}, 'ev-{encounter}-{version}',
             date '2026-11-02', 'PAT-' || '{encounter}', '1234567893', 'MEDICARE', l, '97530', 1,
             15, '{{GP}}', 'cms_total_time', 'validated', '[]', '{{M54.50}}', 'test'
         FROM generate_series(1, {n}) AS l"
    )
}

/// An encounter version's highest line number, by the range of
/// `src/store/load.rs`.
const VERSION_LINES: &str = "SELECT max(line_no) FROM claim_lines
     WHERE claim_line_id > ($1 || ':' || $2 || ':') COLLATE \"C\"
       AND claim_line_id < ($1 || ':' || $2 || ';') COLLATE \"C\"
       AND encounter_id = $1 AND encounter_version = $2";

/// Runs `sql` as a session of this release writes (migration 0015's guard
/// refuses claim lines from a session that does not say so).
async fn exec(env: &TestEnv, sql: &str) {
    sqlx::raw_sql(&format!(
        "BEGIN; SET LOCAL claimline.schema_version = '15'; {sql}; COMMIT"
    ))
    .execute(&env.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encounters_lines_are_read_by_a_primary_key_range() {
    let env = TestEnv::new("pkrange", 1).await;
    env.migrate();
    assert_eq!(
        env.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'claim_lines_encounter'")
            .await,
        0
    );
    // Many other encounters, so that a scan of the table is not the cheap
    // plan; then E (versions 1 and 10) and E:1, whose line ids start with
    // "E:1:" like E's version 1.
    exec(
        &env,
        "INSERT INTO claim_lines (claim_line_id, encounter_id, encounter_version, event_id,
             date_of_service, patient_id, provider_npi, payer_id, line_no, code, units, minutes,
             modifiers, unit_method, status, flags, diagnoses, rules_version)
         SELECT 'ENC-' || e || ':1:' || l, 'ENC-' || e, 1, 'ev-' || e, date '2026-11-02',
             'PAT-' || e, '1234567893', 'MEDICARE', l, '97530', 1, 15, '{GP}', 'cms_total_time',
             'validated', '[]', '{M54.50}', 'test'
         FROM generate_series(1, 5000) AS e, generate_series(1, 4) AS l",
    )
    .await;
    exec(&env, &lines("E", 1, 3)).await;
    exec(&env, &lines("E", 10, 2)).await;
    exec(&env, &lines("E:1", 1, 4)).await;
    for (event, encounter, version) in [("ev-E", "E", 10), ("ev-E1", "E:1", 1)] {
        sqlx::query(
            "INSERT INTO encounter_events (event_id, encounter_id, encounter_version, event_type,
                 outcome, occurred_at, source_topic, source_partition, source_offset)
             VALUES ($1, $2, $3, 'finalized', 'processed', now(), 't', 0, 0)",
        )
        .bind(event)
        .bind(encounter)
        .bind(version)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    exec(&env, "ANALYZE claim_lines").await;

    // The batch load's lines of E: its 5, none of E:1's 4.
    let pool = &env.pool;
    let load = |encounter: &'static str| async move {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT j ->> 'claim_line_id' FROM claimline_lock_and_load(
                 ARRAY[$1], '{}', '{}', '{}', '{}', '{}', '{}', 1)
             WHERE kind = 'l' ORDER BY (j ->> 'claim_line_id') COLLATE \"C\"",
        )
        .bind(encounter)
        .fetch_all(pool)
        .await
        .unwrap();
        ids
    };
    assert_eq!(
        load("E").await,
        ["E:10:1", "E:10:2", "E:1:1", "E:1:2", "E:1:3"]
    );
    assert_eq!(
        load("E:1").await,
        ["E:1:1:1", "E:1:1:2", "E:1:1:3", "E:1:1:4"]
    );

    // The same range, as the reissue's line count writes it, is an index
    // scan of the primary key, and finds version 1's highest line.
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {VERSION_LINES}"))
        .bind("E")
        .bind(1i32)
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("claim_lines_pkey"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    let max: Option<i32> = sqlx::query_scalar(VERSION_LINES)
        .bind("E")
        .bind(1i32)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(max, Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn migration_0015_lists_the_encounter_and_day_of_every_line_in_force() {
    let env = TestEnv::new("patientdays", 1).await;
    // The schema as it was before 0015, with lines written then.
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 15)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&env.pool).await.unwrap();
    let line = |id: &str, encounter: &str, date: &str, patient: &str, status: &str| {
        format!(
            "INSERT INTO claim_lines (claim_line_id, encounter_id, encounter_version, event_id,
                 date_of_service, patient_id, provider_npi, payer_id, line_no, code, units, minutes,
                 modifiers, unit_method, status, flags, diagnoses, rules_version)
             VALUES ('{id}', '{encounter}', 1, 'ev-{id}', date '{date}', '{patient}', '1234567893',
                 'MEDICARE', 1, '97530', 1, 15, '{{GP}}', 'cms_total_time', '{status}', '[]',
                 '{{M54.50}}', 'test')"
        )
    };
    for sql in [
        // E1: two lines in force; E2: void only; E3: moved from 11-01 to
        // 11-02 (the first day's line void).
        line("E1:1:1", "E1", "2026-11-02", "PAT-1", "validated"),
        line("E1:1:2", "E1", "2026-11-02", "PAT-1", "needs_review"),
        line("E2:1:1", "E2", "2026-11-02", "PAT-1", "void"),
        line("E3:1:1", "E3", "2026-11-01", "PAT-3", "void"),
        line("E3:1:2", "E3", "2026-11-02", "PAT-3", "validated"),
    ] {
        exec(&env, &sql).await;
    }
    env.migrate();
    assert_eq!(
        env.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'claim_lines_patient_day'")
            .await,
        0
    );
    // A session of a release before 0015 (which would write lines without
    // their entries) is refused with 55000: not one of the content errors
    // that dead-letter (classes 22, 23, 54), so that release retries, and
    // writes nothing until it is replaced. So is one that names an older
    // schema, or nonsense.
    let mut session = env.pool.acquire().await.unwrap();
    for setting in [
        "",
        "SET LOCAL claimline.schema_version = '14';",
        "SET LOCAL claimline.schema_version = 'x';",
    ] {
        let refused = sqlx::raw_sql(&format!(
            "BEGIN; {setting} {}; COMMIT",
            line("E4:1:1", "E4", "2026-11-02", "PAT-4", "validated")
        ))
        .execute(&mut *session)
        .await
        .unwrap_err();
        let code = refused.as_database_error().and_then(|e| e.code()).unwrap();
        assert_eq!(code, "55000", "{setting}: {refused}");
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *session)
            .await
            .unwrap();
    }
    drop(session);
    let entries: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT patient_id, date_of_service::text, encounter_id FROM patient_day_encounters ORDER BY 1, 2, 3",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let entry = |p: &str, d: &str, e: &str| (p.to_owned(), d.to_owned(), e.to_owned());
    assert_eq!(
        entries,
        [
            entry("PAT-1", "2026-11-02", "E1"),
            entry("PAT-3", "2026-11-02", "E3")
        ]
    );
    // A batch's load of PAT-1's day finds E1's lines through them.
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT j ->> 'claim_line_id' FROM claimline_lock_and_load(
             '{}', '{}', '{}', '{}', ARRAY['PAT-1'], ARRAY['MEDICARE'], ARRAY[date '2026-11-02'], 1)
         WHERE kind = 'l' ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(ids, ["E1:1:1", "E1:1:2"]);
}
