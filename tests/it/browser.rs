//! `claimline web` in a real browser: headless Chromium (Debian's
//! `chromium`, driven through `chromedriver` over the W3C WebDriver
//! protocol; scripts/ensure-tools.sh installs both) signs in, filters,
//! checks rows and totals against Postgres, downloads a CSV and saves a
//! screenshot (target/browser/web-held-lines.png; docs/ keeps one).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::free_port;
use crate::web_support::{dollars, Demo, WebApp, KX_PATIENT, PASSWORD, USER};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

fn tool(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: scripts/ensure-tools.sh installs Debian's chromium and chromium-driver",
        path.display()
    );
    path
}

/// One HTTP/1.1 exchange with chromedriver; the JSON reply's `value`.
/// chromedriver keeps connections open whatever the request says, so the
/// reply ends at its Content-Length.
async fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 65536];
        loop {
            let text = String::from_utf8_lossy(&buf);
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let len = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                if len.is_some_and(|n| rest.len() >= n) {
                    return Ok::<_, String>((head.to_owned(), rest[..len.unwrap()].to_owned()));
                }
            }
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                let text = String::from_utf8_lossy(&buf).into_owned();
                let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP reply")?;
                return Ok((head.to_owned(), rest.to_owned()));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let (head, body) = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| format!("chromedriver: no answer to {method} {path} in 60 s"))??;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{method} {path}: {}", v["value"]));
    }
    Ok(v["value"].clone())
}

/// How long a page may take to load after a click or a navigation: the
/// bound of [`Browser::wait_url`] and [`Browser::find`] (a liveness bound).
const PAGE_LOAD: Duration = Duration::from_secs(20);

impl Browser {
    async fn start(downloads: &Path) -> Browser {
        let chromium = tool("chromium");
        let port = free_port();
        let driver = Command::new(tool("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let start = Instant::now();
        while call(port, "GET", "/status", None)
            .await
            .map(|v| v["ready"] != json!(true))
            .unwrap_or(true)
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver is not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1100"],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false
                }
            }
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
        };
        let session = browser.call("POST", "/session", Some(caps)).await;
        browser.session = session["sessionId"].as_str().unwrap().to_owned();
        // Headless Chromium takes downloads only where told (CDP).
        let _ = browser
            .cmd(
                "POST",
                "goog/cdp/execute",
                json!({"cmd": "Browser.setDownloadBehavior",
                       "params": {"behavior": "allow", "downloadPath": downloads}}),
            )
            .await;
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(self.port, method, path, body).await.unwrap()
    }

    async fn cmd(&self, method: &str, what: &str, body: Value) -> Result<Value, String> {
        let path = format!("/session/{}/{what}", self.session);
        let body = (method == "POST").then_some(body);
        call(self.port, method, &path, body).await
    }

    async fn go(&self, url: &str) {
        self.cmd("POST", "url", json!({"url": url})).await.unwrap();
    }

    async fn url(&self) -> String {
        self.cmd("GET", "url", Value::Null)
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the address contains `part` (a navigation may still be
    /// under way when a click returns).
    async fn wait_url(&self, part: &str) {
        let start = Instant::now();
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return;
            }
            assert!(start.elapsed() < PAGE_LOAD, "{url} has no {part}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element, looked for again while it is not there yet (a form's
    /// submit may still be loading the next page when a click returns).
    async fn find(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            let found = self
                .cmd(
                    "POST",
                    "element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            match found {
                Ok(v) => return v[ELEMENT].as_str().unwrap().to_owned(),
                Err(e) if e.contains("no such element") && start.elapsed() < PAGE_LOAD => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{css}: {e}"),
            }
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.cmd(
            "POST",
            "elements",
            json!({"using": "css selector", "value": css}),
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .len()
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        let v = self
            .cmd("GET", &format!("element/{e}/text"), Value::Null)
            .await
            .unwrap();
        v.as_str().unwrap().to_owned()
    }

    async fn css(&self, css: &str, property: &str) -> String {
        let e = self.find(css).await;
        let v = self
            .cmd("GET", &format!("element/{e}/css/{property}"), Value::Null)
            .await
            .unwrap();
        v.as_str().unwrap().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("element/{e}/value"), json!({"text": text}))
            .await
            .unwrap();
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("element/{e}/click"), json!({}))
            .await
            .unwrap();
    }

    async fn screenshot(&self, to: &Path) {
        let v = self.cmd("GET", "screenshot", Value::Null).await.unwrap();
        std::fs::write(to, base64_decode(v.as_str().unwrap())).unwrap();
    }
}

/// Standard base64 (the screenshot), without a crate for one call.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, c)| {
            acc | (u32::from(val(*c)) << (18 - 6 * i))
        });
        let take = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ends the browser; chromedriver is killed after it.
            let port = self.port;
            let path = format!("/session/{}", self.session);
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(call(port, "DELETE", &path, None))
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revenue_cycle_user_works_the_held_queue_in_chromium() {
    let demo = Demo::load("web-browser").await;
    let web = WebApp::start(&demo.web_role().await).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{}", web.port));
    let downloads = out.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = Browser::start(&downloads).await;
    let base = format!("http://127.0.0.1:{}", web.port);

    // Not signed in: the queue sends to the sign-in form.
    browser.go(&format!("{base}/held")).await;
    browser.wait_url("/login").await;
    browser.type_into("#user", USER).await;
    browser.type_into("#password", "not the password").await;
    browser.click("#signin").await;
    assert!(browser
        .text("#signin-error")
        .await
        .contains("Wrong user or password"));
    browser.type_into("#user", USER).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#signin").await;
    browser.wait_url("/held").await;

    // The stylesheet applies under the CSP (no inline style anywhere).
    assert_eq!(
        browser.css("header.top", "background-color").await,
        "rgba(22, 33, 58, 1)"
    );

    let (lines, cents): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(expected_payment_cents), 0)::bigint FROM claim_lines
         WHERE status = 'needs_review'",
    )
    .fetch_one(&demo.env.pool)
    .await
    .unwrap();
    assert_eq!(browser.text("#total-lines").await, lines.to_string());
    assert_eq!(browser.text("#total-amount").await, dollars(cents));
    assert_eq!(browser.count("tr.line").await as i64, lines);
    browser.screenshot(&out.join("web-held-lines.png")).await;

    // Filter: Medicare, PT, held for SHARED_MINUTES.
    browser
        .click("select[name=plan] option[value=medicare]")
        .await;
    browser
        .click("select[name=discipline] option[value=PT]")
        .await;
    browser
        .type_into("input[name=flag]", "SHARED_MINUTES")
        .await;
    browser.click("#apply").await;
    browser.wait_url("plan=medicare").await;
    let (want_lines, want_cents, want_encounters): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(expected_payment_cents), 0)::bigint, count(DISTINCT c.encounter_id)
         FROM claim_lines c JOIN encounter_payloads p USING (event_id)
         WHERE c.status = 'needs_review' AND c.flags @> '[{\"code\": \"SHARED_MINUTES\"}]'
           AND convert_from(p.payload, 'UTF8')::jsonb #>> '{encounter,payer,plan}' = 'medicare'
           AND convert_from(p.payload, 'UTF8')::jsonb #>> '{encounter,provider,discipline}' = 'PT'",
    )
    .fetch_one(&demo.env.pool)
    .await
    .unwrap();
    assert!(
        want_lines > 0 && want_lines < lines,
        "{want_lines} of {lines}"
    );
    assert_eq!(browser.text("#total-lines").await, want_lines.to_string());
    assert_eq!(browser.text("#total-amount").await, dollars(want_cents));
    assert_eq!(
        browser.count("section.encounter").await as i64,
        want_encounters
    );
    assert_eq!(browser.count("tr.line").await as i64, want_lines);

    // The CSV under the same filters.
    browser.click("#csv").await;
    let file = downloads.join("held-lines.csv");
    let start = Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no download in {}",
            downloads.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut rd = csv::Reader::from_path(&file).unwrap();
    let head = rd.headers().unwrap().clone();
    let plan = head.iter().position(|h| h == "plan").unwrap();
    let flags = head.iter().position(|h| h == "flags").unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as i64, want_lines);
    assert!(rows
        .iter()
        .all(|r| &r[plan] == "medicare" && r[flags].contains("SHARED_MINUTES")));

    // The other views are a click away.
    browser.click("nav a[href='/kx']").await;
    assert!(browser.text("#kx").await.contains(KX_PATIENT));
    browser.click("nav a[href='/daily']").await;
    assert!(browser.count("#daily tr").await > 1);
    browser.click(".signout button").await;
    browser.wait_url("/login").await;
    browser.go(&format!("{base}/held")).await;
    assert!(browser.url().await.ends_with("/login"), "signed out");
    drop(browser);
    drop(web);
    demo.drop_web_role().await;
}
