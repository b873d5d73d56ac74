//! `claimline web` over demo data put through the real service: pages and
//! CSV asserted against what the pipeline wrote, read through the app's own
//! role (SELECT on its views only); no data without signing in; a database
//! outage is a 503 page, not a hang.

use std::time::{Duration, Instant};

use crate::support::{free_port, TestEnv};
use crate::web_support::{dollars, Demo, WebApp, KX_PATIENT, MARKUP_PAYER, PASSWORD, USER};

async fn held_totals(env: &TestEnv, filter: &str) -> (i64, i64) {
    sqlx::query_as(&format!(
        "SELECT count(*), coalesce(sum(expected_payment_cents), 0)::bigint FROM claim_lines c
         WHERE status = 'needs_review' {filter}"
    ))
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn web_pages_show_what_the_pipeline_wrote_to_a_signed_in_reader_only() {
    let demo = Demo::load("web-pages").await;
    let env = &demo.env;
    let role_url = demo.web_role().await;
    let web = WebApp::start(&role_url).await;

    // No session: every data path sends to the sign-in page, with no data.
    for path in [
        "/",
        "/held",
        "/held.csv",
        "/kx",
        "/kx.csv",
        "/daily",
        "/daily.csv",
    ] {
        let r = web.request("GET", path, None, None).await.unwrap();
        r.assert_headers(path);
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/login"), "{path}");
        assert!(
            !r.body.contains("PAT-") && !r.body.contains("ENC-"),
            "{path}: {}",
            r.body
        );
    }
    let forged = web.get("/held", "claimline_session=99999999999.00").await;
    assert_eq!(forged.status, 303, "a forged cookie");
    let wrong = web
        .request(
            "POST",
            "/login",
            None,
            Some(&format!("user={USER}&password=nope-nope-nope")),
        )
        .await
        .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    wrong.assert_headers("failed sign-in");

    let cookie = web.sign_in().await;
    let held = web.get("/held", &cookie).await;
    held.assert_headers("/held");
    assert_eq!(held.status, 200, "{}", held.body);
    let (lines, cents) = held_totals(env, "").await;
    assert!(lines >= 20, "the demo holds lines: {lines}");
    assert!(
        held.body.contains(&format!(
            "<strong id=\"total-amount\">{}</strong>",
            dollars(cents)
        )),
        "{}",
        held.body
    );
    assert!(held
        .body
        .contains(&format!("<strong id=\"total-lines\">{lines}</strong>")));
    let held_encounters: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT encounter_id FROM claim_lines WHERE status = 'needs_review'",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for enc in &held_encounters {
        assert!(held.body.contains(&format!("{enc} v")), "{enc} missing");
    }
    assert_eq!(
        held.body.matches("<section class=\"encounter\">").count(),
        held_encounters.len()
    );
    let held_flags: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT f ->> 'code' FROM claim_lines, jsonb_array_elements(flags) f
         WHERE status = 'needs_review'",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    for f in &held_flags {
        assert!(
            held.body
                .contains(&format!("<span class=\"flag\">{f}</span>")),
            "{f}"
        );
    }
    // Cleared by its amendment, or validated: not in the queue.
    assert!(held.body.contains("ENC-MARKUP v"));
    assert!(!held.body.contains(MARKUP_PAYER) && !held.body.contains("<script"));
    assert!(
        held.body.contains("&lt;script&gt;"),
        "the payer id, escaped"
    );
    for gone in ["ENC-HELD-CLEARED", "ENC-000101 v", "ENC-000103 v"] {
        assert!(!held.body.contains(gone), "{gone} is not held");
    }

    // Filters: plan (from the event), flag, provider, DOS, held longer.
    let r = web.get("/held?plan=commercial", &cookie).await;
    let (n, c) = held_totals(
        env,
        "AND encounter_id IN ('ENC-000102', 'ENC-000105', 'ENC-000304')",
    )
    .await;
    assert!(
        r.body
            .contains(&format!("<strong id=\"total-lines\">{n}</strong>")),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!(
        "<strong id=\"total-amount\">{}</strong>",
        dollars(c)
    )));
    assert!(r.body.contains("ENC-000102 v") && !r.body.contains("ENC-000106 v"));
    let r = web
        .get("/held?flag=SHARED_MINUTES&discipline=PT", &cookie)
        .await;
    let (n, _) = held_totals(env, "AND flags @> '[{\"code\": \"SHARED_MINUTES\"}]'").await;
    assert!(n > 0);
    assert!(
        r.body
            .contains(&format!("<strong id=\"total-lines\">{n}</strong>")),
        "{}",
        r.body
    );
    let r = web
        .get(
            "/held?from=2026-03-05&to=2026-03-08&npi=1234567893",
            &cookie,
        )
        .await;
    let (n, _) = held_totals(
        env,
        "AND date_of_service BETWEEN '2026-03-05' AND '2026-03-08' AND provider_npi = '1234567893'",
    )
    .await;
    assert!(
        r.body
            .contains(&format!("<strong id=\"total-lines\">{n}</strong>")),
        "{}",
        r.body
    );
    let r = web.get("/held?held_days=1", &cookie).await;
    assert!(
        r.body.contains("<strong id=\"total-lines\">0</strong>"),
        "nothing is a day old"
    );
    let bad = web.get("/held?from=yesterday", &cookie).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("YYYY-MM-DD"));

    // Sort by amount: the encounter holding the most comes first.
    let r = web.get("/held?sort=amount", &cookie).await;
    let top: String = sqlx::query_scalar(
        "SELECT encounter_id FROM claim_lines WHERE status = 'needs_review'
         GROUP BY encounter_id ORDER BY sum(coalesce(expected_payment_cents, 0)) DESC, encounter_id LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let first = r.body.find("<span class=\"enc\">").unwrap();
    assert!(
        r.body[first..].starts_with(&format!("<span class=\"enc\">{top} v")),
        "{top}"
    );

    // Held since the first held version, across the amendment.
    let csv = web.get("/held.csv?payer=MEDICARE-B", &cookie).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    csv.assert_headers("/held.csv");
    let mut rd = csv::Reader::from_reader(csv.body.as_bytes());
    let head = rd.headers().unwrap().clone();
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    let (n, _) = held_totals(env, "AND payer_id = 'MEDICARE-B'").await;
    assert_eq!(rows.len() as i64, n);
    let first_held: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT min(created_at) FROM claim_lines WHERE encounter_id = 'ENC-HELD-AMENDED'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let current: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT min(created_at) FROM claim_lines WHERE encounter_id = 'ENC-HELD-AMENDED' AND status = 'needs_review'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(current > first_held, "the amendment came in a later batch");
    let amended: Vec<_> = rows
        .iter()
        .filter(|r| &r[col("encounter_id")] == "ENC-HELD-AMENDED")
        .collect();
    assert!(!amended.is_empty());
    for r in amended {
        assert_eq!(r[col("encounter_version")].to_owned(), "2");
        let since = chrono::DateTime::parse_from_rfc3339(&r[col("held_since")]).unwrap();
        assert_eq!(since, first_held, "held since version 1");
    }

    // KX watch list: the patient past both amounts, with the crossing dates.
    let kx = web.get("/kx?year=2026", &cookie).await;
    assert_eq!(kx.status, 200, "{}", kx.body);
    let ytd: i64 = sqlx::query_scalar(
        "SELECT sum(expected_payment_cents)::bigint FROM claim_lines
         WHERE patient_id = $1 AND status <> 'void' AND kx_group = 'pt_slp'",
    )
    .bind(KX_PATIENT)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(ytd > 300_000, "{ytd}");
    let row = kx
        .body
        .split("<tr>")
        .find(|r| r.contains(KX_PATIENT))
        .expect("the KX patient is listed");
    assert!(
        row.contains(&dollars(ytd)) && row.contains("past review amount"),
        "{row}"
    );
    let kx_line_dos: chrono::NaiveDate = sqlx::query_scalar(
        "SELECT date_of_service FROM claim_lines WHERE patient_id = $1 AND 'KX' = ANY(modifiers)
         ORDER BY created_at, claim_line_id LIMIT 1",
    )
    .bind(KX_PATIENT)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        row.contains(&kx_line_dos.to_string()),
        "crossed on {kx_line_dos}: {row}"
    );
    assert!(!kx.body.contains("PAT-77812"), "far below the threshold");
    let kx_csv = web.get("/kx.csv?year=2026&margin=0", &cookie).await;
    assert!(
        kx_csv.body.lines().nth(1).unwrap().contains(KX_PATIENT),
        "{}",
        kx_csv.body
    );
    assert_eq!(kx_csv.body.lines().count(), 2, "{}", kx_csv.body);

    // Daily totals: held and validated apart, 0-unit lines not billable.
    let daily = web
        .get("/daily?from=2026-03-01&to=2026-03-31", &cookie)
        .await;
    let (billable, zero): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE units > 0), count(*) FILTER (WHERE units = 0) FROM claim_lines
         WHERE status = 'needs_review' AND date_of_service BETWEEN '2026-03-01' AND '2026-03-31'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(zero > 0, "the demo has NO_UNITS lines");
    assert!(
        daily
            .body
            .contains(&format!("<strong id=\"held-lines\">{billable}</strong>")),
        "{}",
        daily.body
    );
    let d_csv = web.get("/daily.csv?payer=ACME-HEALTH", &cookie).await;
    let mut rd = csv::Reader::from_reader(d_csv.body.as_bytes());
    let sum: i64 = rd
        .records()
        .map(|r| r.unwrap()[4].parse::<i64>().unwrap())
        .sum();
    let want: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM claim_lines WHERE payer_id = 'ACME-HEALTH' AND status <> 'void' AND units = 0",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(sum, want, "not-billable lines of ACME-HEALTH");

    // The role reads the views and nothing else.
    let role = sqlx::PgPool::connect(&role_url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM web_held_lines")
        .fetch_one(&role)
        .await
        .unwrap();
    assert_eq!(n, lines);
    for table in [
        "claim_lines",
        "encounter_payloads",
        "encounter_events",
        "dead_letters",
    ] {
        let e = sqlx::query(&format!("SELECT 1 FROM {table} LIMIT 1"))
            .execute(&role)
            .await
            .expect_err(table);
        assert!(e.to_string().contains("permission denied"), "{table}: {e}");
    }
    role.close().await;
    let log = web.log();
    for secret in [KX_PATIENT, "PAT-77812", PASSWORD] {
        assert!(!log.contains(secret), "the log names {secret}:\n{log}");
    }
    drop(web);
    demo.drop_web_role().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_says_the_database_is_not_answering_and_limits_failed_sign_ins() {
    // Nothing listens on this port: every read fails at once or at its
    // deadline (3 s), and the page says so.
    let web = WebApp::start(&format!(
        "postgres://nobody:{PASSWORD}@127.0.0.1:{}/nowhere",
        free_port()
    ))
    .await;
    let cookie = web.sign_in().await;
    for path in ["/held", "/kx", "/daily", "/held.csv"] {
        let start = Instant::now();
        let r = web.get(path, &cookie).await;
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        r.assert_headers(path);
        assert!(r.body.contains("The database is not answering"), "{path}");
        // Liveness bound: the deadline is 3 s, the pool's acquire 3 s.
        assert!(start.elapsed() < Duration::from_secs(30), "{path}");
    }
    let ready = web.request("GET", "/readyz", None, None).await.unwrap();
    assert_eq!(ready.status, 503);

    // Failed sign-ins are limited: past 10 from one address, even the right
    // password is refused (without being checked) until the window ends.
    for _ in 0..10 {
        let r = web
            .request(
                "POST",
                "/login",
                None,
                Some(&format!("user={USER}&password=guess-guess-guess")),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 401);
    }
    let r = web
        .request(
            "POST",
            "/login",
            None,
            Some(&format!("user={USER}&password={PASSWORD}")),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("set-cookie").is_none());
    assert!(!web.log().contains(PASSWORD));
}
