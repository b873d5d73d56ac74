//! The world `claimline web`'s tests share: the demo's events (and a
//! patient past KX, and amended held encounters) put through the real
//! service, the app's read role, the app as a process, an HTTP client.

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
/// A payer id that is markup (the contract allows it).
pub const MARKUP_PAYER: &str = "<script>alert('x')</script>&";

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
        // Markup in a value from an event: held (no diagnosis), and shown
        // escaped.
        let mut markup = event("ENC-MARKUP-e1", "finalized", "ENC-MARKUP", 1);
        markup["encounter"]["payer"] = json!({"id": MARKUP_PAYER, "plan": "other"});
        markup["encounter"]["diagnoses"] = json!([]);
        events.push(markup);
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
        // Roles an earlier run left (a failed test skips its clean-up):
        // their databases were dropped when this run began, so they go.
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT rolname::text FROM pg_roles WHERE rolname ~ '^web_[0-9]+_[0-9]+$' AND rolname NOT LIKE $1",
        )
        .bind(format!("web_{}_%", std::process::id()))
        .fetch_all(pool)
        .await
        .unwrap_or_default();
        for r in stale {
            let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {r}"))
                .execute(pool)
                .await;
        }
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

    pub fn assert_headers(&self, what: &str) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(self.header("content-security-policy"), Some(CSP), "{what}");
    }
}

/// Cents as the page writes them.
pub fn dollars(cents: i64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("${grouped}.{:02}", cents % 100)
}
