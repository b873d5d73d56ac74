//! Every SQL panel of the Grafana dashboard, run against the demo data:
//! `examples/encounters.jsonl` and `examples/bad-events.jsonl` through the
//! real service (broker and Postgres), then each panel's SQL with Grafana's
//! macros and variables substituted as Grafana does, as a role holding
//! only the grants of `deploy/compose/grant-reporting.sql`. Each panel
//! must return rows: the demo is dated March 2026 and processed now, so a
//! panel that filtered its time range on date of service would not.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sqlx::{Column, Row};

use crate::support::TestEnv;

const T: Duration = Duration::from_secs(60);

/// The demo's events, keyed by encounter id as `claimline send` does.
fn demo_messages() -> Vec<(Option<String>, Vec<u8>)> {
    let text = concat!(
        include_str!("../../examples/encounters.jsonl"),
        include_str!("../../examples/bad-events.jsonl")
    );
    // And one more event that the service accepts but whose payload jsonb
    // would refuse (a lone surrogate in an unknown field): the reporting
    // view must not break on it.
    let first = text.lines().next().unwrap();
    let odd = first
        .replacen(
            "\"event_type\"",
            r#""vendor_note": "\ud800", "event_type""#,
            1,
        )
        .replace("3f7c2a1e-5b4d-4c8e-9a0f-1d2e3f4a5b6c", "odd-event-1")
        .replace("ENC-000101", "ENC-ODD-1");
    assert_ne!(odd, first);
    text.lines()
        .chain([odd.as_str()])
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let key = serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["encounter"]["encounter_id"].as_str().map(str::to_owned));
            (key, l.as_bytes().to_vec())
        })
        .collect()
}

/// Grafana's SQL formatting of a variable's values: a multi-value or
/// include-all variable as a list of quoted strings, a single one as is.
fn format_values(var: &Value, values: &[String]) -> String {
    if var["multi"] == true || var["includeAll"] == true {
        values
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        values.first().cloned().unwrap_or_default()
    }
}

/// `sql` with Grafana's macros for the range `from`..`to` and the
/// variables' values substituted.
fn interpolate(sql: &str, from: &str, to: &str, vars: &BTreeMap<String, String>) -> String {
    let time_filter = time_filter(sql, from, to);
    let mut out = time_filter
        .replace("$__timeFrom()", &format!("'{from}'"))
        .replace("$__timeTo()", &format!("'{to}'"));
    // Longest names first, so $dos_from is not read as $dos.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out
            .replace(&format!("${{{name}}}"), &vars[name])
            .replace(&format!("${name}"), &vars[name]);
    }
    assert!(
        !out.contains('$'),
        "an unsubstituted macro or variable in {out}"
    );
    out
}

/// `$__timeFilter(expr)` -> `expr BETWEEN 'from' AND 'to'` (Grafana's
/// Postgres macro), `expr` up to its balanced closing parenthesis.
fn time_filter(sql: &str, from: &str, to: &str) -> String {
    const MACRO: &str = "$__timeFilter(";
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find(MACRO) {
        out.push_str(&rest[..i]);
        let after = &rest[i + MACRO.len()..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(j, _)| j)
            .expect("a closed $__timeFilter(");
        out.push_str(&format!("{} BETWEEN '{from}' AND '{to}'", &after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs `sql` (in the transaction, as its role); the rows as text cells.
async fn query(tx: &mut sqlx::PgConnection, sql: &str) -> Vec<Vec<String>> {
    let rows = sqlx::query(&format!("SELECT to_jsonb(q) FROM ({sql}) AS q"))
        .fetch_all(tx)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
    rows.iter()
        .map(|r| {
            assert_eq!(r.columns()[0].name(), "to_jsonb");
            let v: Value = r.get(0);
            v.as_object()
                .unwrap()
                .values()
                .map(|c| c.as_str().map(str::to_owned).unwrap_or(c.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sql_panel_returns_rows_for_the_demo_data() {
    let env = TestEnv::new("dashboard", 1).await;
    let svc = env.service();
    svc.wait_ready(T).await;
    env.send(&demo_messages()).await;
    // Every demo event is a good one (their own test says so), plus the odd one.
    let events = include_str!("../../examples/encounters.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as i64
        + 1;
    env.wait_count("SELECT count(*) FROM encounter_events", events, T)
        .await;
    env.wait_count("SELECT count(*) FROM dead_letters", 1, T)
        .await;

    // A role with the grants the compose stack gives Grafana, and no other,
    // made in a transaction that is rolled back (roles are the server's).
    let role = format!(
        "reader_{}",
        env.db_url.rsplit('/').next().unwrap().replace('-', "_")
    );
    let mut tx = env.pool.begin().await.unwrap();
    let grants = include_str!("../../deploy/compose/grant-reporting.sql")
        .replace("TO grafana_reader", &format!("TO \"{role}\""));
    sqlx::raw_sql(&format!(
        "CREATE ROLE \"{role}\" NOLOGIN; {grants}; SET LOCAL ROLE \"{role}\""
    ))
    .execute(&mut *tx)
    .await
    .unwrap();

    let dash: Value = serde_json::from_str(include_str!(
        "../../deploy/grafana/dashboards/claimline.json"
    ))
    .unwrap();
    let now = chrono::Utc::now();
    let (from, to) = (
        (now - chrono::Duration::hours(24)).to_rfc3339(),
        (now + chrono::Duration::minutes(1)).to_rfc3339(),
    );

    // Variables as Grafana resolves them with "All" selected.
    let mut vars = BTreeMap::new();
    for var in dash["templating"]["list"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let values: Vec<String> = match var["type"].as_str().unwrap() {
            "textbox" | "constant" => vec![var["query"].as_str().unwrap().to_owned()],
            "custom" => var["query"]
                .as_str()
                .unwrap()
                .split(',')
                .map(|v| v.trim().to_owned())
                .collect(),
            "query" => {
                let sql = interpolate(var["query"].as_str().unwrap(), &from, &to, &vars);
                query(&mut tx, &sql)
                    .await
                    .into_iter()
                    .map(|r| r[0].clone())
                    .collect()
            }
            other => panic!("variable {name}: type {other} not handled here"),
        };
        assert!(!values.is_empty(), "variable {name} has no value");
        vars.insert(name, format_values(var, &values));
    }
    assert!(vars["payer"].contains("'ACME-HEALTH'"), "{vars:?}");

    let mut ran = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let Some(sql) = target["rawSql"].as_str() else {
                continue;
            };
            let sql = interpolate(sql, &from, &to, &vars);
            let rows = query(&mut tx, &sql).await;
            assert!(
                !rows.is_empty(),
                "panel {} ({}) returned no rows: {sql}",
                panel["id"],
                panel["title"]
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "{ran} SQL panels ran");
    tx.rollback().await.unwrap();

    // Held and 0-unit lines are apart from the billable ones.
    let billable: i64 = env
        .count("SELECT count(*) FROM reporting_lines WHERE billable")
        .await;
    assert_eq!(
        billable,
        env.count("SELECT count(*) FROM claim_lines WHERE status = 'validated' AND units > 0")
            .await
    );
    assert!(
        env.count("SELECT count(*) FROM reporting_lines WHERE held")
            .await
            > 0
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM reporting_lines WHERE plan = 'unknown' OR discipline = 'unknown'"
        )
        .await,
        0,
        "every line has its plan and discipline"
    );
    assert!(
        env.count("SELECT count(*) FROM claim_lines WHERE encounter_id = 'ENC-ODD-1'")
            .await
            > 0,
        "the event with the odd unknown field was processed (and read by the view)"
    );
}
