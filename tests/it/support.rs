//! A real Postgres database and real broker topics per test, and the real
//! `claimline run` binary driven as a process.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use sqlx::PgPool;

pub fn admin_url() -> String {
    std::env::var("CLAIMLINE_TEST_DATABASE_URL")
        .expect("CLAIMLINE_TEST_DATABASE_URL is set by `make test`")
}

pub fn bootstrap() -> String {
    std::env::var("CLAIMLINE_TEST_KAFKA").expect("CLAIMLINE_TEST_KAFKA is set by `make test`")
}

/// Drops, once per test process, the databases earlier runs' tests left
/// on the shared server (named by `unique` with another process id):
/// hundreds of them slow the server for everyone, benchmarks included.
async fn drop_earlier_runs(admin: &PgPool) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let mine = format!("_{}_", std::process::id());
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname ~ '^[a-z0-9-]+_[0-9]+_[0-9]+_[0-9]+$'",
        )
        .fetch_all(admin)
        .await
        .unwrap_or_default();
        // Without FORCE: a database another test run is using stays.
        for name in names.iter().filter(|n| !n.contains(&mine)) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .execute(admin)
                .await;
        }
    })
    .await;
}

fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap()
    }
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.as_str())
    }
}

/// One test's world: its own database, topics and consumer group.
pub struct TestEnv {
    pub db_url: String,
    pub pool: PgPool,
    pub input: String,
    pub output: String,
    pub review: String,
    pub dlq: String,
    pub group: String,
}

impl TestEnv {
    pub async fn new(name: &str, partitions: i32) -> TestEnv {
        let name = unique(name);
        let admin = PgPool::connect(&admin_url()).await.unwrap();
        drop_earlier_runs(&admin).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = url_with_db(&admin_url(), &name);
        let pool = PgPool::connect(&url).await.unwrap();
        let env = TestEnv {
            input: format!("{name}.encounters"),
            output: format!("{name}.claim-lines"),
            review: format!("{name}.claim-lines.review"),
            dlq: format!("{name}.encounters.dlq"),
            group: format!("{name}.group"),
            db_url: url,
            pool,
        };
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .unwrap();
        let topics: Vec<NewTopic> = [&env.input, &env.output, &env.review, &env.dlq]
            .iter()
            .map(|t| {
                NewTopic::new(
                    t,
                    if *t == &env.input { partitions } else { 1 },
                    TopicReplication::Fixed(1),
                )
            })
            .collect();
        for r in admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .unwrap()
        {
            r.unwrap();
        }
        env
    }

    pub fn service(&self) -> Service {
        self.service_with(&self.db_url, &[])
    }

    pub fn service_with(&self, db_url: &str, extra: &[(&str, &str)]) -> Service {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_claimline"));
        cmd.arg("run")
            .env("DATABASE_URL", db_url)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
            .env("CLAIMLINE_GROUP_ID", &self.group)
            .env("CLAIMLINE_INPUT_TOPIC", &self.input)
            .env("CLAIMLINE_OUTPUT_TOPIC", &self.output)
            .env("CLAIMLINE_REVIEW_TOPIC", &self.review)
            .env("CLAIMLINE_DLQ_TOPIC", &self.dlq)
            .env("CLAIMLINE_METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("CLAIMLINE_LOG", "debug")
            // The test broker is Tansu 0.6.0 with memory storage: a fetch
            // inside a stored batch skips it (README, the broker note).
            .env("CLAIMLINE_RESUME_FROM_LOG_START", "true")
            .env("KAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("KAFKA_MAX_POLL_INTERVAL_MS", "10000")
            .env("KAFKA_TOPIC_METADATA_REFRESH_INTERVAL_MS", "1000")
            .env("KAFKA_STATISTICS_INTERVAL_MS", "500")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("claimline starts");
        Service {
            child: Some(child),
            port,
            log: std::sync::Arc::default(),
        }
        .with_log_reader()
    }

    pub async fn send(&self, messages: &[(Option<String>, Vec<u8>)]) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("message.max.bytes", "8388608")
            .create()
            .unwrap();
        let mut futures = Vec::new();
        for (key, value) in messages {
            let mut r = FutureRecord::to(&self.input).payload(value);
            if let Some(k) = key {
                r = r.key(k);
            }
            futures.push(producer.send_result(r).map_err(|(e, _)| e).unwrap());
        }
        for f in futures {
            f.await.unwrap().map_err(|(e, _)| e).unwrap();
        }
    }

    pub async fn send_events(&self, events: &[serde_json::Value]) {
        let messages: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e["encounter"]["encounter_id"].as_str().map(str::to_owned),
                    e.to_string().into_bytes(),
                )
            })
            .collect();
        self.send(&messages).await;
    }

    /// Reads a topic from the start until `n` messages or the timeout.
    pub async fn read(&self, topic: &str, n: usize, timeout: Duration) -> Vec<Received> {
        self.read_until(topic, timeout, Duration::ZERO, |read| read.len() >= n)
            .await
    }

    /// The distinct claim line ids on the output topic, read from the start
    /// until `n` of them were seen or the timeout: a test of "every line
    /// reached the topic" that stops as soon as it holds, however many
    /// duplicates a redelivery added, and waits no longer than it must.
    pub async fn published_line_ids(
        &self,
        n: usize,
        timeout: Duration,
    ) -> std::collections::HashSet<String> {
        let mut ids = std::collections::HashSet::new();
        self.read_until(&self.output, timeout, Duration::ZERO, |read| {
            if let Some(m) = read.last() {
                ids.insert(m.json()["claim_line_id"].as_str().unwrap().to_owned());
            }
            ids.len() >= n
        })
        .await;
        ids
    }

    /// Reads a topic from the start until `enough` says so (it sees the
    /// messages read so far, after each one), then on while messages keep
    /// coming within `grace` of each other (what came after, such as a
    /// duplicate), or until the timeout.
    pub async fn read_until(
        &self,
        topic: &str,
        timeout: Duration,
        grace: Duration,
        mut enough: impl FnMut(&[Received]) -> bool,
    ) -> Vec<Received> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", unique("reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut quiet_until: Option<tokio::time::Instant> = None;
        loop {
            if quiet_until.is_none() && enough(&out) {
                if grace.is_zero() {
                    break;
                }
                quiet_until = Some(tokio::time::Instant::now() + grace);
            }
            let until = quiet_until.map_or(deadline, |q| q.min(deadline));
            match tokio::time::timeout_at(until, consumer.recv()).await {
                Ok(Ok(m)) => out.push(Received {
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_owned(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                Ok(Err(_)) => {}
                Err(_) => break,
            }
            if let Some(q) = quiet_until.as_mut() {
                *q = tokio::time::Instant::now() + grace;
            }
        }
        out
    }

    /// `claimline migrate` on this test's database; the test fails if it
    /// does.
    pub fn migrate(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
            .arg("migrate")
            .env("DATABASE_URL", &self.db_url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Waits until `sql` counts `expected`, or fails the test.
    pub async fn wait_count(&self, sql: &str, expected: i64, timeout: Duration) {
        self.wait_count_where(sql, |n| n == expected, timeout).await;
    }

    /// Polls until the count is at least `least`.
    pub async fn wait_until_count(&self, sql: &str, least: i64, timeout: Duration) {
        self.wait_count_where(sql, |n| n >= least, timeout).await;
    }

    async fn wait_count_where(&self, sql: &str, ok: impl Fn(i64) -> bool, timeout: Duration) {
        let start = Instant::now();
        loop {
            let n: i64 = sqlx::query_scalar(sql)
                .fetch_one(&self.pool)
                .await
                .unwrap_or(-1);
            if ok(n) {
                return;
            }
            assert!(start.elapsed() < timeout, "{sql}: {n} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The admin URL with its database replaced by `db`.
fn url_with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a postgres://host/db URL");
    format!("{base}/{db}")
}

/// A running `claimline run`; killed on drop. Its stderr is collected.
pub struct Service {
    child: Option<Child>,
    pub port: u16,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Service {
    fn with_log_reader(mut self) -> Self {
        let stderr = self.child.as_mut().unwrap().stderr.take().unwrap();
        let log = self.log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// GET a path on the metrics address: (status, body).
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    }

    /// Scrapes /metrics until the metric `name` (with labels) satisfies
    /// `ok`, or fails the test; returns the last scrape.
    pub async fn wait_metric(
        &self,
        name: &str,
        ok: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> String {
        let start = Instant::now();
        loop {
            let scrape = self.get("/metrics").await.map(|r| r.1).unwrap_or_default();
            if metric(&scrape, name).is_some_and(&ok) {
                return scrape;
            }
            assert!(
                start.elapsed() < timeout,
                "{name} = {:?} after {timeout:?}:\n{}",
                metric(&scrape, name),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_status("/readyz", 200, timeout).await;
    }

    /// Polls `path` until it answers `status`, or fails the test; returns
    /// the body.
    pub async fn wait_status(&self, path: &str, status: u16, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some((code, body)) = self.get(path).await {
                if code == status {
                    return body;
                }
            }
            assert!(
                start.elapsed() < timeout,
                "{path} not {status} after {timeout:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let c = self.child.as_ref()?;
        unsafe_sigterm(c.id());
        self.wait_exit(timeout)
    }

    /// The exit code once the process ends on its own; killed after
    /// `timeout` (`None`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if start.elapsed() > timeout {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An event for encounter `enc` (version `version`), valid unless changed.
pub fn event(event_id: &str, event_type: &str, enc: &str, version: u32) -> serde_json::Value {
    let mut ev: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/hip-fracture.json")).unwrap();
    ev["event_id"] = event_id.into();
    ev["event_type"] = event_type.into();
    ev["encounter"]["encounter_id"] = enc.into();
    ev["encounter"]["version"] = version.into();
    // A patient per encounter: encounters of one patient, provider and
    // payer on one date are one day for the units (tested on their own).
    ev["encounter"]["patient"]["id"] = format!("PAT-{enc}").into();
    if event_type == "voided" {
        ev["encounter"]["services"] = serde_json::json!([]);
    }
    ev
}

/// A TCP proxy in front of Postgres that a test can cut and restore, so
/// the shared server keeps running while the service loses it.
pub struct Proxy {
    pub port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
    lose_commit_reply: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let mut p = Proxy {
            port: free_port(),
            upstream: upstream.to_owned(),
            task: None,
            lose_commit_reply: Default::default(),
        };
        p.restore().await;
        p
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// The next COMMIT reaches the server, but its reply never reaches the
    /// client: the connection closes instead (an ambiguous COMMIT). Needs
    /// a plain-text connection (sslmode=disable) to see the reply.
    pub fn lose_next_commit_reply(&self) {
        self.lose_commit_reply
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let upstream = self.upstream.clone();
        let lose = self.lose_commit_reply.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                let lose = lose.clone();
                conns.spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let (mut server_read, mut server_write) = outbound.into_split();
                        let (mut client_read, mut client_write) = inbound.into_split();
                        let up = tokio::io::copy(&mut client_read, &mut server_write);
                        let down = forward_replies(&mut server_read, &mut client_write, &lose);
                        tokio::select! {
                            _ = up => {}
                            _ = down => {}
                        }
                    }
                });
            }
        }));
    }

    /// `db_url` with its host and port replaced by the proxy's.
    pub fn url(&self, db_url: &str) -> String {
        via_port(db_url, self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Server-to-client Postgres messages (type byte, length, body), passed on
/// one by one (TLS connections are passed through unread), except that a CommandComplete "COMMIT" while `lose` is set
/// ends the connection instead.
async fn forward_replies(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    lose: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The answer to an SSLRequest comes first, one byte: 'S' (TLS follows:
    // pass it through unread) or 'N' (plain text continues).
    let mut first = [0u8; 1];
    from.read_exact(&mut first).await?;
    if matches!(first[0], b'S' | b'N') {
        to.write_all(&first).await?;
        if first[0] == b'S' {
            tokio::io::copy(from, to).await?;
            return Ok(());
        }
        from.read_exact(&mut first).await?;
    }
    let mut pending_first = Some(first[0]);
    loop {
        let mut head = [0u8; 5];
        match pending_first.take() {
            Some(b) => {
                head[0] = b;
                from.read_exact(&mut head[1..]).await?;
            }
            None => {
                from.read_exact(&mut head).await?;
            }
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        from.read_exact(&mut body).await?;
        if head[0] == b'C'
            && body.starts_with(b"COMMIT")
            && lose.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        to.write_all(&head).await?;
        to.write_all(&body).await?;
    }
}

/// host:port of a postgres:// URL.
pub fn host_port(db_url: &str) -> String {
    let rest = db_url.split_once("://").unwrap().1;
    let authority = rest.split_once('/').map(|(a, _)| a).unwrap_or(rest);
    let hp = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:5432")
    }
}

/// The value of one metric line (exact name with labels) in a scrape.
pub fn metric(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// `n` first versions of `n` encounters, ids `{tag}-{i}`.
pub fn stream(n: usize, tag: &str) -> Vec<serde_json::Value> {
    stream_of(tag, 0..n)
}

/// First versions of the encounters `{tag}-{i}`, `i` in `range`.
pub fn stream_of(tag: &str, range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
    range
        .map(|i| {
            event(
                &format!("{tag}-{i}"),
                "finalized",
                &format!("ENC-{tag}-{i}"),
                1,
            )
        })
        .collect()
}

/// `db_url` with its host and port replaced by 127.0.0.1:`port` (a proxy's).
pub fn via_port(db_url: &str, port: u16) -> String {
    let (scheme, rest) = db_url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}/{path}")
}
