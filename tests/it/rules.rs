//! Issue 11 through the CLI and the service, against the real Postgres and
//! broker: CMS files imported as effective-dated rule tables (picked up by
//! a running service), the KX threshold across encounters and instances,
//! twice-a-day re-allocation, and `claimline reprocess`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{bootstrap, event, metric, TestEnv};

const T: Duration = Duration::from_secs(90);

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cms")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

/// CMS's rows (tests/fixtures/cms/README.md): the 2026 Q2 MUE rows, RVU25D
/// and RVU26C, CMS's 2025 GPCIs, and the v32.3 PTP therapy rows (derived)
/// as four synthetic parts.
const FIXTURES: [&str; 8] = [
    "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
    "PPRRVU2025_Oct.csv",
    "PPRRVU2026_Jul_nonQPP.csv",
    "gpci/GPCI2025.csv",
    "ccipra-v323r0-f1.therapy-subset-DERIVED.txt",
    "ccipra-v323r0-f2.therapy-subset-DERIVED.txt",
    "ccipra-v323r0-f3.therapy-subset-DERIVED.txt",
    "ccipra-v323r0-f4.therapy-subset-DERIVED.txt",
];

/// The first 160 lines of CMS's v32.2 part 1 (no catalogue code in them).
const PTP_LAYOUT: &str = "ptp-layout/ccipra-v322r0-f1.excerpt.txt";

const BASE: &str = "claimline-rules-2026.12.2";

fn claimline(env: &TestEnv, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args(args)
        .env("DATABASE_URL", &env.db_url)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
        .env("CLAIMLINE_OUTPUT_TOPIC", &env.output)
        .env("CLAIMLINE_REVIEW_TOPIC", &env.review)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn import_fixtures(env: &TestEnv) -> String {
    let (ok, _, err) = claimline(env, &["migrate"]);
    assert!(ok, "{err}");
    let files: Vec<String> = FIXTURES.iter().map(|f| fixture(f)).collect();
    let mut args = vec!["rules", "import"];
    args.extend(files.iter().map(String::as_str));
    let (ok, _, err) = claimline(env, &args);
    assert!(ok, "{err}");
    err
}

/// A visit on `dos`: services (code, start, end) as HH:MM that day.
fn visit(event_id: &str, enc: &str, dos: &str, services: &[(&str, &str, &str)]) -> Value {
    let mut ev = event(event_id, "finalized", enc, 1);
    ev["encounter"]["date_of_service"] = dos.into();
    ev["encounter"]["plan_of_care"]["certified_from"] = dos.into();
    ev["encounter"]["plan_of_care"]["certified_through"] = "2026-12-31".into();
    ev["encounter"]["services"] = services
        .iter()
        .enumerate()
        .map(|(i, (code, start, end))| {
            json!({
                "line_id": (i + 1).to_string(), "code": code, "one_on_one": true,
                "start": format!("{dos}T{start}:00Z"), "end": format!("{dos}T{end}:00Z"),
                "activities": ["stairs"]
            })
        })
        .collect();
    ev
}

async fn lines_of(env: &TestEnv, encounter: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(c) FROM claim_lines c WHERE encounter_id = $1 ORDER BY encounter_version, line_no",
    )
    .bind(encounter)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

fn has_flag(line: &Value, code: &str) -> bool {
    line["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == code)
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_files_import_once_list_and_refuse_a_bad_row_by_line() {
    let env = TestEnv::new("rules-import", 1).await;
    let (ok, _, err) = claimline(&env, &["migrate"]);
    assert!(ok, "{err}");
    // One part of a PTP quarter alone: kept, pending, not in force.
    let (ok, _, err) = claimline(&env, &["rules", "import", &fixture(FIXTURES[4])]);
    assert!(ok, "{err}");
    assert!(err.contains("pending: the 2026Q4 PTP table is not in force: CMS publishes it in four parts and parts f2, f3, f4 are missing"), "{err}");
    assert!(err.contains("1 PTP quarter(s) pending"), "{err}");
    let (ok, out, err) = claimline(&env, &["rules", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\tptp\t2026Q4\tf1\tpending, not in force (missing f2 f3 f4)\t2026-10-01\t"),
        "{out}"
    );
    assert!(
        !out.contains("+ptp.2026Q4+"),
        "a pending quarter names no rule set: {out}"
    );

    let err = import_fixtures(&env);
    for line in [
        "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv: mue 2026Q2 from 2026-04-01: 58 of 58 rows kept",
        "PPRRVU2025_Oct.csv: pfs 2025D from 2025-10-01: 50 of 58 rows kept",
        "PPRRVU2026_Jul_nonQPP.csv: pfs 2026C from 2026-07-01: 50 of 58 rows kept",
        "GPCI2025.csv: gpci 2025 from 2025-01-01: 109 of 109 rows kept",
        "ccipra-v323r0-f1.therapy-subset-DERIVED.txt: already loaded as table",
        "ccipra-v323r0-f2.therapy-subset-DERIVED.txt: ptp 2026Q4 part f2 from 2026-10-01:",
        "7 file(s) loaded, 1 already loaded, 0 PTP quarter(s) pending",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    assert!(!err.contains("pending:"), "{err}");
    assert_eq!(env.count("SELECT count(*) FROM rule_tables").await, 8);

    // The same file again changes nothing.
    let (ok, _, err) = claimline(&env, &["rules", "import", &fixture(FIXTURES[0])]);
    assert!(ok && err.contains("already loaded as table"), "{err}");
    assert_eq!(env.count("SELECT count(*) FROM rule_tables").await, 8);

    // A bad row: the file and line are named, and nothing is stored, not
    // even the good file (CMS's own v32.2 lines) read before it.
    let dir = std::env::temp_dir().join(format!("claimline-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read(fixture(FIXTURES[0])).unwrap();
    let bad = String::from_utf8_lossy(&good).replace("\n97140,6,", "\n97140,six,");
    assert_ne!(bad, String::from_utf8_lossy(&good), "the row is there");
    let bad_file = dir.join("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv");
    std::fs::write(&bad_file, bad).unwrap();
    let (ok, _, err) = claimline(
        &env,
        &[
            "rules",
            "import",
            &fixture(PTP_LAYOUT),
            bad_file.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv, line 43, column 2 (Practitioner Services MUE Values): the MUE value is not a whole number of units"),
        "{err}"
    );
    assert!(
        !err.contains("97140"),
        "no row content beyond the code: {err}"
    );
    assert_eq!(env.count("SELECT count(*) FROM rule_tables").await, 8);
    std::fs::remove_dir_all(&dir).ok();

    let (ok, out, err) = claimline(&env, &["rules", "list"]);
    assert!(ok, "{err}");
    for row in [
        "\tptp\t2026Q4\tf1\tcomplete\t2026-10-01\t",
        "\tptp\t2026Q4\tf4\tcomplete\t2026-10-01\t",
        "\tmue\t2026Q2\t-\tcomplete\t2026-04-01\t58\t58\t",
        "\tpfs\t2025D\t-\tcomplete\t2025-10-01\t50\t58\t",
        "\tpfs\t2026C\t-\tcomplete\t2026-07-01\t50\t58\t",
        "\tgpci\t2025\t-\tcomplete\t2025-01-01\t109\t109\t",
    ] {
        assert!(out.contains(row), "{row:?}\n{out}");
    }
    assert!(
        !out.contains("\tptp\t2026Q3\t"),
        "the v32.2 lines were not stored: {out}"
    );
    for period in [
        format!("from 2025-10-01\t{BASE}+ptp.2026Q4-subset+pfs.2025D+gpci.2025\n"),
        format!("from 2026-10-01\t{BASE}+ptp.2026Q4+mue.2026Q2+pfs.2026C\n"),
    ] {
        assert!(out.contains(&period), "{period:?}\n{out}");
    }
}

/// 97530 for 25 minutes and 97150 (group therapy) for 30 on `dos`.
fn with_group(event_id: &str, enc: &str, dos: &str) -> Value {
    let mut ev = visit(event_id, enc, dos, &[("97530", "09:00", "09:25")]);
    ev["encounter"]["services"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "line_id": "2", "code": "97150", "minutes": 30, "activities": ["group balance class"] }));
    ev
}

#[tokio::test(flavor = "multi_thread")]
async fn each_date_of_service_gets_the_rules_in_force_and_an_import_applies_without_restart() {
    let env = TestEnv::new("rules-live", 1).await;
    let svc = env.service_with(&env.db_url, &[("CLAIMLINE_RULES_POLL_SECS", "1")]);
    svc.wait_ready(T).await;
    env.send_events(&[with_group("b1", "ENC-B1", "2026-10-01")])
        .await;
    env.wait_count("SELECT count(*) FROM encounter_events", 1, T)
        .await;
    // The shipped tables: their PTP rows cover pairs of 8 codes, not 97150.
    let before = lines_of(&env, "ENC-B1").await;
    let shipped = format!("{BASE}+ptp.2026Q4-subset+mue.2026Q2+pfs.2026C");
    let imported = format!("{BASE}+ptp.2026Q4+mue.2026Q2+pfs.2026C");
    assert_eq!(before[0]["rules_version"], shipped);
    assert_eq!(before[1]["code"], "97150");
    assert!(has_flag(&before[0], "NCCI_NOT_CHECKED"), "{}", before[0]);
    assert!(has_flag(&before[1], "NCCI_NOT_CHECKED"), "{}", before[1]);

    import_fixtures(&env);
    svc.wait_metric("claimline_rules_reloads_total", |v| v >= 1.0, T)
        .await;
    assert!(svc.log().contains("rule set in force changed"), "logged");

    // Either side of the imported Q4 table's start.
    env.send_events(&[
        with_group("q3", "ENC-Q3", "2026-09-30"),
        with_group("q4", "ENC-Q4", "2026-10-01"),
    ])
    .await;
    env.wait_count("SELECT count(*) FROM encounter_events", 3, T)
        .await;
    let q3 = lines_of(&env, "ENC-Q3").await;
    let q4 = lines_of(&env, "ENC-Q4").await;
    // The shipped PTP subset is labelled so: rules_version tells it from
    // the imported quarter, and the coverage changes with it.
    for l in &q3 {
        assert_eq!(l["rules_version"], shipped, "{l}");
    }
    for l in &q4 {
        assert_eq!(l["rules_version"], imported, "{l}");
    }
    assert!(
        has_flag(&q3[0], "NCCI_NOT_CHECKED"),
        "still the shipped rows: {}",
        q3[0]
    );
    assert!(has_flag(&q3[1], "NCCI_NOT_CHECKED"), "{}", q3[1]);
    for l in &q4 {
        assert!(!has_flag(l, "NCCI_NOT_CHECKED"), "every pair covered: {l}");
        assert!(
            !has_flag(l, "NCCI_PTP"),
            "v32.3 has no 97530/97150 edit: {l}"
        );
        assert_eq!(l["status"], "validated");
    }
    // RVU26C either way (the imported file is the shipped excerpt): the
    // same payment, 2 units of 97530 = $35.07 + $25.05 (the second unit's
    // PE halved).
    assert_eq!(q4[0]["units"], 2);
    assert_eq!(q4[0]["expected_payment_cents"], 6012);
    assert_eq!(
        q4[0]["expected_payment_cents"],
        before[0]["expected_payment_cents"]
    );
    let scrape = svc.get("/metrics").await.unwrap().1;
    assert_eq!(
        metric(&scrape, "claimline_rule_tables"),
        Some(FIXTURES.len() as f64)
    );
}

/// Encounters of one patient, each on its own day (another payer id): the
/// year-to-date amount grows across them, on two instances at once.
#[tokio::test(flavor = "multi_thread")]
async fn kx_is_not_missed_by_concurrent_encounters_of_one_patient() {
    let env = TestEnv::new("rules-kx", 2).await;
    let a = env.service();
    let b = env.service();
    a.wait_ready(T).await;
    b.wait_ready(T).await;
    let n = 50;
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let mut ev = visit(
                &format!("k{i}"),
                &format!("ENC-K{i}"),
                "2026-06-01",
                &[("97530", "09:00", "09:25"), ("97110", "09:30", "09:55")],
            );
            ev["encounter"]["patient"]["id"] = "PAT-KX".into();
            ev["encounter"]["payer"]["id"] = format!("MEDICARE-{i}").into();
            ev
        })
        .collect();
    env.send_events(&events).await;
    env.wait_count("SELECT count(*) FROM encounter_events", n, T)
        .await;
    let (total, unmarked, marked): (i64, i64, i64) = sqlx::query_as(
        "SELECT sum(expected_payment_cents)::int8,
                coalesce(sum(expected_payment_cents) FILTER (WHERE NOT 'KX' = ANY(modifiers)), 0)::int8,
                count(*) FILTER (WHERE 'KX' = ANY(modifiers))
         FROM claim_lines WHERE patient_id = 'PAT-KX' AND status <> 'void'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        total > 248_000,
        "the test must cross the threshold: {total}"
    );
    // Serialised per patient-year: the lines without KX are those before
    // the crossing, in commit order, so they add up to at most $2,480.
    assert!(unmarked <= 248_000, "{unmarked} billed without KX");
    assert!(unmarked > 248_000 - 20_000, "{unmarked}: KX came too early");
    assert!(marked > 0);
    let groups: i64 = env
        .count(
            "SELECT count(*) FROM claim_lines WHERE patient_id = 'PAT-KX' AND kx_group = 'pt_slp'",
        )
        .await;
    assert_eq!(groups, 2 * n);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_visit_the_same_day_reallocates_and_an_amendment_of_the_first_again() {
    let env = TestEnv::new("rules-day", 1).await;
    let svc = env.service();
    svc.wait_ready(T).await;
    let day = |e: &str, enc: &str, start: &str, end: &str| {
        let mut ev = visit(e, enc, "2026-03-02", &[("97530", start, end)]);
        ev["encounter"]["patient"]["id"] = "PAT-DAY".into();
        ev
    };
    env.send_events(&[day("am", "ENC-AM", "09:00", "09:07")])
        .await;
    env.wait_count("SELECT count(*) FROM encounter_events", 1, T)
        .await;
    env.send_events(&[day("pm", "ENC-PM", "15:00", "15:07")])
        .await;
    env.wait_count("SELECT count(*) FROM encounter_events", 2, T)
        .await;
    // 14 minutes on the day: one unit, to the morning (reissued as line 2).
    let am = lines_of(&env, "ENC-AM").await;
    assert_eq!(
        am.iter()
            .map(|l| (
                l["claim_line_id"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
                l["units"].as_i64().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("ENC-AM:1:1", "void", 0), ("ENC-AM:1:2", "validated", 1)]
    );
    assert_eq!(am[0]["voided_by_event_id"], "pm");

    // The morning amended to 3 minutes after the afternoon was processed.
    let mut amended = day("am2", "ENC-AM", "09:00", "09:03");
    amended["event_type"] = "amended".into();
    amended["encounter"]["version"] = 2.into();
    env.send_events(&[amended]).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 3, T)
        .await;
    let units: i64 = env
        .count("SELECT sum(units)::int8 FROM claim_lines WHERE patient_id = 'PAT-DAY' AND status <> 'void'")
        .await;
    assert_eq!(units, 1, "10 minutes on the day: one unit");
    let pm = lines_of(&env, "ENC-PM").await;
    let pm: Vec<(&str, &str, i64)> = pm
        .iter()
        .map(|l| {
            (
                l["claim_line_id"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
                l["units"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pm,
        [("ENC-PM:1:1", "void", 0), ("ENC-PM:1:2", "validated", 1)]
    );

    // On the topic, each void after the line it cancels, each replacement
    // after its void.
    let out = env.read(&env.output, 8, T).await;
    let seq: Vec<String> = out
        .iter()
        .map(|m| {
            let v = m.json();
            format!(
                "{} {}",
                v["claim_line_id"].as_str().unwrap(),
                v["status"].as_str().unwrap()
            )
        })
        .collect();
    let at = |s: &str| {
        seq.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} not in {seq:?}"))
    };
    assert!(at("ENC-AM:1:1 validated") < at("ENC-AM:1:1 void"));
    assert!(at("ENC-AM:1:1 void") < at("ENC-AM:1:2 validated"));
    assert!(at("ENC-AM:1:2 validated") < at("ENC-AM:1:2 void"));
    assert!(at("ENC-PM:1:1 void") < at("ENC-PM:1:2 validated"));
    assert_eq!(seq.len(), 8, "{seq:?}");
}

/// The batch load finds a patient's day and year through
/// `patient_day_encounters` (migration 0015), whose entries stay when an
/// encounter moves: ENC-A, amended from 2026-06-01 to 2026-06-02, has an
/// entry on both days, but its lines in force are on the second day only,
/// and count once toward the year.
#[tokio::test(flavor = "multi_thread")]
async fn a_patients_day_and_year_take_each_encounter_once_by_its_lines_in_force() {
    let env = TestEnv::new("rules-days", 1).await;
    let mut svc = env.service();
    svc.wait_ready(T).await;
    let of_patient = |mut ev: Value| {
        ev["encounter"]["patient"]["id"] = "PAT-D".into();
        ev
    };
    let mut moved = of_patient(with_group("a2", "ENC-A", "2026-06-02"));
    moved["event_type"] = "amended".into();
    moved["encounter"]["version"] = 2.into();
    let b = visit("b1", "ENC-B", "2026-06-01", &[("97530", "10:00", "10:25")]);
    // One at a time, so that ENC-A's first lines are written in force.
    for (n, ev) in [
        of_patient(with_group("a1", "ENC-A", "2026-06-01")),
        moved,
        of_patient(b),
    ]
    .into_iter()
    .enumerate()
    {
        env.send_events(&[ev]).await;
        env.wait_count("SELECT count(*) FROM encounter_events", n as i64 + 1, T)
            .await;
    }
    assert_eq!(svc.terminate(Duration::from_secs(30)), Some(0));
    let entries: Vec<(String, String)> = sqlx::query_as(
        "SELECT date_of_service::text, encounter_id FROM patient_day_encounters
         WHERE patient_id = 'PAT-D' ORDER BY 1, 2",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let entry = |d: &str, e: &str| (d.to_owned(), e.to_owned());
    assert_eq!(
        entries,
        [
            entry("2026-06-01", "ENC-A"),
            entry("2026-06-01", "ENC-B"),
            entry("2026-06-02", "ENC-A")
        ]
    );

    // The load of ENC-B with its day and year, as a batch asks for them.
    let load = |date: &'static str| {
        sqlx::query_as::<_, (String, Option<String>, Option<i64>)>(
            "SELECT kind::text, coalesce(j ->> 'claim_line_id', t2), i2
             FROM claimline_lock_and_load(ARRAY['ENC-B'], '{}', ARRAY['PAT-D'], ARRAY[2026],
                 ARRAY['PAT-D'], ARRAY['MEDICARE-B'], ARRAY[$1::date], 1)
             WHERE kind IN ('l', 'y') ORDER BY 1, 2",
        )
        .bind(date)
        .fetch_all(&env.pool)
    };
    let ytd = env
        .count(
            "SELECT sum(expected_payment_cents)::int8 FROM claim_lines
             WHERE patient_id = 'PAT-D' AND status <> 'void' AND kx_group IS NOT NULL",
        )
        .await;
    assert!(ytd > 0, "{ytd}");
    let lines_of_day = |rows: &[(String, Option<String>, Option<i64>)]| {
        let mut ids: Vec<String> = rows
            .iter()
            .filter(|r| r.0 == "l")
            .map(|r| r.1.clone().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let year = |rows: &[(String, Option<String>, Option<i64>)]| -> i64 {
        rows.iter()
            .filter(|r| r.0 == "y")
            .map(|r| r.2.unwrap())
            .sum()
    };
    let ids = |encounter: &str| {
        let sql = format!(
            "SELECT string_agg(claim_line_id, ' ' ORDER BY claim_line_id) FROM claim_lines
             WHERE encounter_id = '{encounter}' AND status <> 'void'"
        );
        let pool = env.pool.clone();
        async move {
            let s: String = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
            s.split(' ').map(str::to_owned).collect::<Vec<_>>()
        }
    };
    let (a, b) = (ids("ENC-A").await, ids("ENC-B").await);
    assert!(!a.is_empty() && !b.is_empty());
    // 2026-06-01: ENC-B's own lines, not ENC-A's, whose entry there is stale.
    let first = load("2026-06-01").await.unwrap();
    assert_eq!(lines_of_day(&first), b);
    assert_eq!(year(&first), ytd, "ENC-A counts once toward 2026");
    // 2026-06-02: ENC-A's lines in force besides ENC-B's.
    let second = load("2026-06-02").await.unwrap();
    let mut both = [a.clone(), b.clone()].concat();
    both.sort();
    assert_eq!(lines_of_day(&second), both);
    assert_eq!(year(&second), ytd);
}

/// `reprocess` lists an encounter by the date of its lines in force. Its
/// list starts from the stored payloads' dates (migration 0014), and an
/// encounter amended from 2026-10-01 to 2026-10-02 keeps a payload dated
/// 2026-10-01: it is in the second day's run, not in the first's.
#[tokio::test(flavor = "multi_thread")]
async fn reprocess_lists_an_encounter_by_the_date_of_its_lines_in_force() {
    let env = TestEnv::new("rules-moved", 1).await;
    let mut svc = env.service();
    svc.wait_ready(T).await;
    let mut moved = with_group("m2", "ENC-M", "2026-10-02");
    moved["event_type"] = "amended".into();
    moved["encounter"]["version"] = 2.into();
    env.send_events(&[
        with_group("m1", "ENC-M", "2026-10-01"),
        moved,
        with_group("n1", "ENC-N", "2026-10-01"),
    ])
    .await;
    env.wait_count("SELECT count(*) FROM encounter_events", 3, T)
        .await;
    assert_eq!(svc.terminate(Duration::from_secs(30)), Some(0));
    assert_eq!(
        env.count("SELECT count(*) FROM encounter_payloads WHERE date_of_service = '2026-10-01'")
            .await,
        2
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM claim_lines WHERE encounter_id = 'ENC-M' AND status <> 'void'
               AND date_of_service = '2026-10-02'"
        )
        .await,
        2
    );
    let listed_with = |since: &str, until: &str, page: &str, code: &[&str]| {
        let mut args = vec![
            "reprocess",
            "--since",
            since,
            "--until",
            until,
            "--page-size",
            page,
            "--dry-run",
        ];
        args.extend(code);
        let (ok, out, err) = claimline(&env, &args);
        assert!(ok, "{err}");
        out.split(' ').next().unwrap().parse::<u32>().unwrap()
    };
    let listed = |since: &str, until: &str, page: &str| listed_with(since, until, page, &[]);
    assert_eq!(listed("2026-10-01", "2026-10-01", "200"), 1, "ENC-N alone");
    assert_eq!(listed("2026-10-02", "2026-10-02", "200"), 1, "ENC-M alone");
    assert_eq!(listed("2026-09-01", "2026-09-30", "200"), 0);
    // A page at a time, from where the last stopped: each once.
    assert_eq!(listed("2026-10-01", "2026-10-02", "200"), 2);
    assert_eq!(listed("2026-10-01", "2026-10-02", "1"), 2);
    // `--code`: only encounters with a line of that code in force.
    let code = |c| listed_with("2026-10-01", "2026-10-02", "1", &["--code", c]);
    assert_eq!(code("97150"), 2);
    assert_eq!(code("97110"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn reprocess_applies_new_rules_is_resumable_and_changes_nothing_twice() {
    let env = TestEnv::new("rules-reprocess", 1).await;
    let mut svc = env.service();
    svc.wait_ready(T).await;
    let events: Vec<Value> = (0..3)
        .map(|i| with_group(&format!("r{i}"), &format!("ENC-R{i}"), "2026-10-01"))
        .chain([with_group("s0", "ENC-S0", "2026-09-30")])
        .collect();
    env.send_events(&events).await;
    env.wait_count("SELECT count(*) FROM encounter_events", 4, T)
        .await;
    assert_eq!(svc.terminate(Duration::from_secs(30)), Some(0));
    let lines_before = env.count("SELECT count(*) FROM claim_lines").await;
    let published_before = env
        .read(&env.output, 100, Duration::from_secs(5))
        .await
        .len()
        + env
            .read(&env.review, 100, Duration::from_secs(3))
            .await
            .len();

    // Nothing to change under the same rules.
    let (ok, out, err) = claimline(
        &env,
        &[
            "reprocess",
            "--since",
            "2026-09-30",
            "--until",
            "2026-10-01",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("4 encounter(s) re-evaluated, 0 changed"),
        "{out}"
    );
    assert!(err.contains("finished"), "{err}");

    // The imported Q4 PTP table covers every pair from 2026-10-01: the
    // NCCI_NOT_CHECKED flags of 97530/97150 go, on both lines; units and
    // payments stay (RVU26C either way).
    import_fixtures(&env);
    let range = [
        "reprocess",
        "--since",
        "2026-10-01",
        "--until",
        "2026-10-01",
    ];
    let (ok, out, err) = claimline(&env, &[&range[..], &["--dry-run"]].concat());
    assert!(ok, "{err}");
    assert!(
        out.starts_with("3 encounter(s) re-evaluated, 3 changed: 6 line(s) voided, 6 issued"),
        "{out}"
    );
    assert!(out.contains("\n97150\t3\t3\t42.09\t42.09\n"), "{out}");
    assert!(out.contains("\n97530\t6\t6\t180.36\t180.36\n"), "{out}");
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines").await,
        lines_before,
        "a dry run writes nothing"
    );
    // 2026-09-30 is still judged by the shipped rows: nothing to change.
    let (ok, out, err) = claimline(
        &env,
        &[
            "reprocess",
            "--since",
            "2026-09-30",
            "--until",
            "2026-09-30",
            "--dry-run",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("1 encounter(s) re-evaluated, 0 changed"),
        "{out}"
    );

    // Interrupted after one page of one encounter, then resumed.
    let (ok, _, err) = claimline(
        &env,
        &[&range[..], &["--page-size", "1", "--max-pages", "1"]].concat(),
    );
    assert!(ok && err.contains("stopped before the end"), "{err}");
    assert_eq!(
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'void'")
            .await,
        2
    );
    let (ok, out, err) = claimline(&env, &[&range[..], &["--page-size", "1"]].concat());
    assert!(ok && err.contains("finished"), "{err}");
    assert!(
        out.starts_with("2 encounter(s) re-evaluated, 2 changed"),
        "{out}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM reprocess_runs WHERE finished_at IS NOT NULL")
            .await,
        2
    );

    for enc in ["ENC-R0", "ENC-R1", "ENC-R2"] {
        let lines = lines_of(&env, enc).await;
        let ids: Vec<(&str, &str, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l["claim_line_id"].as_str().unwrap(),
                    l["code"].as_str().unwrap(),
                    l["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                (&*format!("{enc}:1:1"), "97530", "void"),
                (&*format!("{enc}:1:2"), "97150", "void"),
                (&*format!("{enc}:1:3"), "97530", "validated"),
                (&*format!("{enc}:1:4"), "97150", "validated")
            ]
        );
        for (old, new) in [(&lines[0], &lines[2]), (&lines[1], &lines[3])] {
            assert!(has_flag(old, "NCCI_NOT_CHECKED"), "{old}");
            assert!(!has_flag(new, "NCCI_NOT_CHECKED"), "{new}");
            assert_eq!(old["units"], new["units"]);
            assert_eq!(old["expected_payment_cents"], new["expected_payment_cents"]);
            assert!(old["voided_by_event_id"]
                .as_str()
                .unwrap()
                .starts_with("reprocess-"));
        }
    }
    // The Q3 encounter was outside the range.
    assert_eq!(
        env.count(
            "SELECT count(*) FROM claim_lines WHERE encounter_id = 'ENC-S0' AND status = 'void'"
        )
        .await,
        0
    );
    assert_eq!(
        env.count("SELECT count(*) FROM claim_line_outbox").await,
        0,
        "all published"
    );
    let published = env
        .read(&env.output, 100, Duration::from_secs(5))
        .await
        .len()
        + env
            .read(&env.review, 100, Duration::from_secs(3))
            .await
            .len();
    assert_eq!(published, published_before + 12, "6 voids and 6 new lines");

    // Again: nothing changes.
    let (ok, out, _) = claimline(&env, &range);
    assert!(
        ok && out.starts_with("3 encounter(s) re-evaluated, 0 changed"),
        "{out}"
    );
}
