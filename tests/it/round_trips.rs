//! Issue 24, item 2, on the wire: a batch costs a fixed number of
//! sequential round trips to Postgres whatever its size. A proxy between
//! the service and Postgres reads (a copy of) what the service sends and
//! counts, per committed batch transaction, its round trips: every simple
//! Query (BEGIN and COMMIT included) and every Sync that ends an Execute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{event, free_port, host_port, stream, via_port, TestEnv};

const T: Duration = Duration::from_secs(120);

/// A committed transaction as the client sent it.
#[derive(Debug, Clone, Default)]
struct Txn {
    /// The proxy's number for the connection.
    conn: usize,
    /// Simple Queries (BEGIN and COMMIT included) and Syncs after an
    /// Execute: the round trips that run statements.
    round_trips: u32,
    /// Syncs after only Parse/Describe/Close: sqlx preparing a statement
    /// (once per connection and statement) or closing one it evicted.
    prep_syncs: u32,
    /// Binds of the batch load (`claimline_lock_and_load`).
    loads: u32,
    /// Binds of the payload load (a day with more than one encounter).
    payloads: u32,
    /// The encounters bound to the (first) batch load.
    size: Option<usize>,
    /// The message just before BEGIN was a bare Sync: sqlx's ping of a
    /// connection taken from the pool.
    pinged: bool,
}

impl Txn {
    fn batch(&self) -> bool {
        self.loads > 0
    }
}

#[derive(Debug, Default)]
struct Wire {
    committed: Vec<Txn>,
    connections: usize,
    /// Connections whose protocol could not be read (TLS).
    unread: usize,
    /// Bare Syncs (pings), anywhere.
    pings: u32,
    /// Preparation Syncs outside a transaction.
    prep_syncs_outside: u32,
}

/// A TCP proxy in front of Postgres that forwards every byte unchanged
/// and reads the client's messages on the side.
struct WireProxy {
    port: u16,
    wire: Arc<Mutex<Wire>>,
    task: tokio::task::JoinHandle<()>,
}

impl WireProxy {
    async fn start(upstream: &str) -> WireProxy {
        let port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let wire = Arc::new(Mutex::new(Wire::default()));
        let upstream = upstream.to_owned();
        let w = wire.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (upstream, wire) = (upstream.clone(), w.clone());
                conns.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let id = {
                        let mut w = wire.lock().unwrap();
                        w.connections += 1;
                        w.connections
                    };
                    let (mut sr, mut sw) = outbound.into_split();
                    let (mut cr, mut cw) = inbound.into_split();
                    let up = async {
                        let mut reader = Frontend::new(id);
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            // Read before forwarding, so that a COMMIT is
                            // recorded before the server can make it
                            // visible to the test.
                            reader.feed(&buf[..n], &wire);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut sr, &mut cw);
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        WireProxy { port, wire, task }
    }

    /// `db_url` through the proxy, in plain text so it can be read.
    fn url(&self, db_url: &str) -> String {
        format!("{}?sslmode=disable", via_port(db_url, self.port))
    }

    fn committed(&self) -> Vec<Txn> {
        self.wire.lock().unwrap().committed.clone()
    }
}

impl Drop for WireProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Statement {
    Load,
    Payloads,
    Other,
}

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// One connection's client-to-server stream: the startup message (no type
/// byte), then `[type][length incl. itself][body]` messages.
struct Frontend {
    conn: usize,
    buf: Vec<u8>,
    started: bool,
    /// An SSLRequest was sent: what follows is TLS (unreadable) unless it
    /// is a startup message (the server said no).
    after_ssl_request: bool,
    unreadable: bool,
    statements: HashMap<Vec<u8>, Statement>,
    /// Since the last Sync or Query: any extended-protocol message, an
    /// Execute.
    pending: bool,
    executed: bool,
    last_bare_sync: bool,
    tx: Option<Txn>,
}

impl Frontend {
    fn new(conn: usize) -> Frontend {
        Frontend {
            conn,
            buf: Vec::new(),
            started: false,
            after_ssl_request: false,
            unreadable: false,
            statements: HashMap::new(),
            pending: false,
            executed: false,
            last_bare_sync: false,
            tx: None,
        }
    }

    fn feed(&mut self, bytes: &[u8], wire: &Mutex<Wire>) {
        if self.unreadable {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            if !self.started {
                if self.after_ssl_request && self.buf.first() == Some(&0x16) {
                    // A TLS handshake record.
                    self.unreadable = true;
                    self.buf.clear();
                    wire.lock().unwrap().unread += 1;
                    return;
                }
                if self.buf.len() < 8 {
                    return;
                }
                let len = be32(&self.buf[0..4]) as usize;
                if self.buf.len() < len {
                    return;
                }
                let code = be32(&self.buf[4..8]);
                self.buf.drain(..len);
                if code == SSL_REQUEST || code == GSSENC_REQUEST {
                    self.after_ssl_request = true;
                } else {
                    self.started = true;
                }
                continue;
            }
            if self.buf.len() < 5 {
                return;
            }
            let len = be32(&self.buf[1..5]) as usize;
            if self.buf.len() < 1 + len {
                return;
            }
            let kind = self.buf[0];
            let body: Vec<u8> = self.buf[5..1 + len].to_vec();
            self.buf.drain(..1 + len);
            self.message(kind, &body, wire);
        }
    }

    fn message(&mut self, kind: u8, body: &[u8], wire: &Mutex<Wire>) {
        match kind {
            b'Q' => {
                let text = String::from_utf8_lossy(cstr(body).0)
                    .trim()
                    .to_ascii_uppercase();
                if text.starts_with("BEGIN") {
                    self.tx = Some(Txn {
                        conn: self.conn,
                        round_trips: 1,
                        pinged: self.last_bare_sync,
                        ..Txn::default()
                    });
                } else if text.starts_with("COMMIT") {
                    if let Some(mut tx) = self.tx.take() {
                        tx.round_trips += 1;
                        wire.lock().unwrap().committed.push(tx);
                    }
                } else if text.starts_with("ROLLBACK") {
                    self.tx = None;
                } else if let Some(tx) = &mut self.tx {
                    tx.round_trips += 1;
                }
                self.pending = false;
                self.executed = false;
                self.last_bare_sync = false;
            }
            b'P' => {
                let (name, rest) = cstr(body);
                let query = String::from_utf8_lossy(cstr(rest).0);
                let statement = if query.contains("claimline_lock_and_load") {
                    Statement::Load
                } else if query.contains("FROM encounter_payloads") {
                    Statement::Payloads
                } else {
                    Statement::Other
                };
                self.statements.insert(name.to_vec(), statement);
                self.pending = true;
            }
            b'B' => {
                let (_portal, rest) = cstr(body);
                let (name, rest) = cstr(rest);
                let statement = self.statements.get(name).copied();
                if let Some(tx) = &mut self.tx {
                    match statement {
                        Some(Statement::Load) => {
                            tx.loads += 1;
                            tx.size = tx.size.or_else(|| first_array_len(rest));
                        }
                        Some(Statement::Payloads) => tx.payloads += 1,
                        _ => {}
                    }
                }
                self.pending = true;
            }
            b'E' => {
                self.pending = true;
                self.executed = true;
            }
            b'C' => {
                if body.first() == Some(&b'S') {
                    self.statements.remove(cstr(&body[1..]).0);
                }
                self.pending = true;
            }
            b'S' => {
                self.last_bare_sync = false;
                if self.executed {
                    if let Some(tx) = &mut self.tx {
                        tx.round_trips += 1;
                    }
                } else if self.pending {
                    match &mut self.tx {
                        Some(tx) => tx.prep_syncs += 1,
                        None => wire.lock().unwrap().prep_syncs_outside += 1,
                    }
                } else {
                    wire.lock().unwrap().pings += 1;
                    self.last_bare_sync = true;
                }
                self.pending = false;
                self.executed = false;
            }
            _ => self.pending = true,
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A NUL-terminated string and what follows it.
fn cstr(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|c| *c == 0) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

/// The element count of a Bind's first parameter, a one-dimensional array
/// in binary format. `rest` starts at the parameter format codes.
fn first_array_len(rest: &[u8]) -> Option<usize> {
    let i16_at = |at: usize| -> Option<i16> {
        Some(i16::from_be_bytes(rest.get(at..at + 2)?.try_into().ok()?))
    };
    let i32_at = |at: usize| -> Option<i32> {
        Some(i32::from_be_bytes(rest.get(at..at + 4)?.try_into().ok()?))
    };
    let formats = i16_at(0)? as usize;
    let mut at = 2 + 2 * formats;
    if i16_at(at)? < 1 {
        return None;
    }
    at += 2;
    if i32_at(at)? < 0 {
        return None;
    }
    at += 4;
    // ndim, has-null flag, element type, then (size, lower bound) per dim.
    match i32_at(at)? {
        0 => Some(0),
        1 => Some(i32_at(at + 12)? as usize),
        _ => None,
    }
}

/// A day's event: one patient, payer and date (the example's) for every
/// encounter of `tag`'s day.
fn day_event(tag: &str, enc: &str) -> serde_json::Value {
    let mut ev = event(tag, "finalized", enc, 1);
    ev["encounter"]["patient"]["id"] = "PAT-SHARED-DAY".into();
    ev
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_costs_four_round_trips_whatever_its_size() {
    let env = TestEnv::new("round_trips", 1).await;
    let proxy = WireProxy::start(&host_port(&env.db_url)).await;
    let svc = env.service_with(
        &proxy.url(&env.db_url),
        &[
            ("CLAIMLINE_BATCH_LINGER_MS", "300"),
            ("CLAIMLINE_BATCH_SIZE", "2000"),
        ],
    );
    svc.wait_ready(T).await;

    // Each phase's events, then its batches settled (no outbox row left
    // for the next batch to claim). A COMMIT is recorded before the
    // server sees it, so each phase's transactions are recorded by then.
    let mut phases: Vec<(&str, usize, usize)> = Vec::new();
    let mut processed = 0;
    let mut run = async |name: &'static str, events: Vec<serde_json::Value>| {
        let from = proxy.committed().len();
        processed += events.len() as i64;
        env.send_events(&events).await;
        env.wait_count("SELECT count(*) FROM encounter_events", processed, T)
            .await;
        env.wait_count("SELECT count(*) FROM claim_line_outbox", 0, T)
            .await;
        phases.push((name, from, proxy.committed().len()));
        events.len()
    };
    run("one event", stream(1, "one")).await;
    run("burst of 500", stream(500, "burst")).await;
    // The second encounter of the day finds the first in force: its batch
    // loads that one's payload to judge the day again.
    run("day, 1st encounter", vec![day_event("day-a", "ENC-DAY-A")]).await;
    run("day, 2nd encounter", vec![day_event("day-b", "ENC-DAY-B")]).await;

    let committed = proxy.committed();
    let wire = proxy.wire.lock().unwrap();
    println!(
        "connections {}, pings {}, preparation syncs outside transactions {}",
        wire.connections, wire.pings, wire.prep_syncs_outside
    );
    assert_eq!(wire.unread, 0, "a connection in TLS: sslmode=disable?");
    let other = committed.iter().filter(|t| !t.batch()).count();
    println!("other committed transactions: {other}");
    let mut by_phase = HashMap::new();
    for (name, from, to) in &phases {
        let batches: Vec<&Txn> = committed[*from..*to].iter().filter(|t| t.batch()).collect();
        println!("{name}: {} batch transaction(s)", batches.len());
        for t in &batches {
            println!(
                "  conn {} size {:?}: {} round trips ({} loads, {} payload loads), \
                 {} preparation syncs, pinged before BEGIN: {}",
                t.conn, t.size, t.round_trips, t.loads, t.payloads, t.prep_syncs, t.pinged
            );
        }
        by_phase.insert(*name, batches);
    }
    let expected = [
        ("one event", 1),
        ("burst of 500", 500),
        ("day, 1st encounter", 1),
        ("day, 2nd encounter", 1),
    ];
    for (name, events) in expected {
        let sizes: usize = by_phase[name].iter().map(|t| t.size.unwrap_or(0)).sum();
        assert_eq!(sizes, events, "{name}: the batches' encounters");
    }
    let batches: Vec<&Txn> = committed.iter().filter(|t| t.batch()).collect();
    for t in &batches {
        assert_eq!(t.loads, 1, "a batch load rerun: {t:?}");
        let want = if t.payloads > 0 { 5 } else { 4 };
        assert_eq!(t.round_trips, want, "{t:?}");
    }
    let max = batches.iter().map(|t| t.round_trips).max().unwrap();
    assert!(max <= 5, "a batch of {max} round trips");
    let burst = &by_phase["burst of 500"];
    assert!(
        burst.iter().all(|t| t.round_trips == 4 && t.payloads == 0),
        "{burst:?}"
    );
    assert!(burst.len() <= 10, "500 events in {} batches", burst.len());
    let shared = &by_phase["day, 2nd encounter"];
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].payloads, 1, "{shared:?}");
    assert_eq!(shared[0].round_trips, 5, "{shared:?}");
    assert!(
        by_phase["day, 1st encounter"]
            .iter()
            .all(|t| t.payloads == 0 && t.round_trips == 4),
        "the day's first encounter has nothing to load"
    );
    drop(wire);
    drop(svc);
}
