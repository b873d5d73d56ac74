//! `claimline web` over demo data put through the real service: pages and
//! CSV asserted against what the pipeline wrote, read through the app's own
//! role (SELECT on its views only); no data without signing in; a database
//! outage is a 503 page, not a hang.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{event, free_port, Service, TestEnv};

pub const PASSWORD: &str = "web-test-password-1";
pub const USER: &str = "revenue";
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// The Medicare patient whose visits pass the KX threshold and the review
/// amount, and how many visits (each $82.33 under the 2026 fee schedule).
pub const KX_PATIENT: &str = "PAT-KX-1";
const KX_VISITS: u32 = 38;

/// The demo's events (examples/encounters.jsonl), a patient past KX, and
/// two held encounters amended later (one still held, one cleared), all
/// through the real service; returns once every event is processed.
pub struct Demo {
    pub env: TestEnv,
    pub _service: Service,
    role: std::sync::Mutex<Option<String>>,
}

fn amended_pair(enc: &str, cleared: bool) -> (serde_json::Value, serde_json::Value) {
    let mut v1 = event(&format!("{enc}-e1"), "finalized", enc, 1);
    v1["encounter"]["diagnoses"] = json!([]);
    let mut v2 = event(&format!("{enc}-e2"), "amended", enc, 2);
    if !cleared {
        v2["encounter"]["diagnoses"] = json!([]);
    }
    (v1, v2)
}

impl Demo {
    pub async fn load(name: &str) -> Demo {
        let env = TestEnv::new(name, 1).await;
        let service = env.service();
        service.wait_ready(Duration::from_secs(60)).await;
        let mut events: Vec<serde_json::Value> = include_str!("../../examples/encounters.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for i in 0..KX_VISITS {
            let enc = format!("ENC-KX-{i:03}");
            let mut e = event(&format!("{enc}-e1"), "finalized", &enc, 1);
            e["encounter"]["patient"]["id"] = KX_PATIENT.into();
            let day = chrono::NaiveDate::from_ymd_opt(2026, 2, 21).unwrap()
                + chrono::Duration::days(i64::from(i));
            e["encounter"]["date_of_service"] = day.to_string().into();
            for s in e["encounter"]["services"].as_array_mut().unwrap() {
                for k in ["start", "end"] {
                    let t = s[k]
                        .as_str()
                        .unwrap()
                        .replacen("2026-03-02", &day.to_string(), 1);
                    s[k] = t.into();
                }
            }
            events.push(e);
        }
        let (still1, still2) = amended_pair("ENC-HELD-AMENDED", false);
        let (clear1, clear2) = amended_pair("ENC-HELD-CLEARED", true);
        events.push(still1);
        events.push(clear1);
        let first = events.len() as i64;
        env.send_events(&events).await;
        let count = "SELECT count(*) FROM encounter_events";
        env.wait_count(count, first, Duration::from_secs(90)).await;
        // The amendments in a later batch (a later created_at), so "held
        // since" must reach back to the first version's lines.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        env.send_events(&[still2, clear2]).await;
        env.wait_count(count, first + 2, Duration::from_secs(60))
            .await;
        Demo {
            env,
            _service: service,
            role: Default::default(),
        }
    }

    /// A login role that may read what the web app shows and nothing else,
    /// granted by deploy/compose/grant-web.sql; returns its database URL.
    pub async fn web_role(&self) -> String {
        let role = format!("web_{}_{}", std::process::id(), free_port());
        let pool = &self.env.pool;
        let db: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .unwrap();
        for sql in [
            format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' NOSUPERUSER NOINHERIT"),
            format!("REVOKE ALL ON DATABASE \"{db}\" FROM PUBLIC"),
            format!("GRANT CONNECT ON DATABASE \"{db}\" TO {role}"),
            include_str!("../../deploy/compose/grant-web.sql").replace("claimline_web", &role),
        ] {
            sqlx::raw_sql(&sql).execute(pool).await.unwrap();
        }
        *self.role.lock().unwrap() = Some(role.clone());
        let (scheme, rest) = self.env.db_url.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
        format!("{scheme}://{role}:{PASSWORD}@{host}")
    }
}

impl Demo {
    /// Drops the role `web_role` made (roles outlive the test's database).
    pub async fn drop_web_role(&self) {
        let Some(role) = self.role.lock().unwrap().take() else {
            return;
        };
        let _ = sqlx::raw_sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
            .execute(&self.env.pool)
            .await;
    }
}

/// A running `claimline web`; killed on drop; its stderr collected.
pub struct WebApp {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl WebApp {
    pub async fn start(db_url: &str) -> WebApp {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_claimline"))
            .arg("web")
            .env("DATABASE_URL", db_url)
            .env("CLAIMLINE_WEB_LISTEN", format!("127.0.0.1:{port}"))
            .env("CLAIMLINE_WEB_USER", USER)
            .env("CLAIMLINE_WEB_PASSWORD", PASSWORD)
            .env("CLAIMLINE_WEB_QUERY_TIMEOUT_SECS", "3")
            .env("CLAIMLINE_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("claimline web starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let app = WebApp { child, port, log };
        let start = Instant::now();
        while app.request("GET", "/healthz", None, None).await.is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "web did not start: {}",
                app.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// One HTTP/1.1 request: (status, headers lower-cased, body).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> Option<Reply> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: {c}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
            .await
            .expect("a reply within 60 s")
            .ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Reply {
            status,
            headers,
            body: body.to_owned(),
        })
    }

    pub async fn get(&self, path: &str, cookie: &str) -> Reply {
        self.request("GET", path, Some(cookie), None).await.unwrap()
    }

    /// Signs in; the session cookie ("name=value").
    pub async fn sign_in(&self) -> String {
        let r = self
            .request(
                "POST",
                "/login",
                None,
                Some(&format!("user={USER}&password={PASSWORD}")),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 303, "{}", r.body);
        let cookie = r.header("set-cookie").unwrap();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        cookie.split(';').next().unwrap().to_owned()
    }
}

impl Drop for WebApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn assert_headers(&self, what: &str) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(self.header("content-security-policy"), Some(CSP), "{what}");
    }
}

/// Cents as the page writes them.
pub fn dollars(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("${grouped}.{:02}", cents % 100)
}

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
    let demo = Demo::load("web_pages").await;
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
async fn web_says_the_database_is_not_answering_instead_of_hanging() {
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
    assert!(!web.log().contains(PASSWORD));
}
