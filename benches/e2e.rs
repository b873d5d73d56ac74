//! End-to-end throughput of `claimline run` against the real broker and
//! Postgres, next to a bare passthrough consumer on the same messages.
//!
//! `make bench-e2e` (or `cargo bench --bench e2e` with
//! CLAIMLINE_TEST_DATABASE_URL and CLAIMLINE_TEST_KAFKA set): loads
//! BENCH_EVENTS events (default 100,000, 4 services each) into a fresh
//! topic, runs the release service until every event's claim lines are on
//! `claim-lines`, and prints events/s, p50/p99 latency from the event's
//! broker timestamp to its claim line's, the service's peak memory (with
//! where it sat at the highest sample: `MemoryAtPeak`), and the
//! ratio to an rdkafka consumer that copies the same messages to another
//! topic without parsing them, and the CPU the service, Postgres and the
//! broker used while the backlog drained. Floors (issue 24, by the steady
//! clock; raised in sessions 8, 12 and 13): >= 19,000 events/s steady, peak RSS < 110 MiB, p99 < 250 ms,
//! service / database ceiling >= 0.7; with `BENCH_DB_LATENCY_MS=200
//! BENCH_EVENTS=10000`, >= 1,000 events/s steady.
//! It then writes the same rows the service wrote with one COPY per table
//! per batch (the database ceiling; see `database_ceiling`), and times
//! `claimline reprocess --dry-run` over all the encounters it wrote.
//!
//! `BENCH_DB_LATENCY_MS=200` puts a proxy between the service and Postgres
//! that delays every packet by half that each way (a distant database:
//! every round trip costs 200 ms); `BENCH_EVENTS=10000` with it measures
//! how fast a backlog drains.
//!
//! `BENCH_KEEP_DB=1` keeps the bench's database (its name is printed) for
//! experiments on the rows the service wrote, instead of dropping it.
//!
//! `BENCH_SERVICE_LD_PRELOAD=/usr/lib/heaptrack/libheaptrack_preload.so
//! DUMP_HEAPTRACK_OUTPUT=/tmp/ht.raw` records the service's allocations
//! (then `/usr/lib/heaptrack/libexec/heaptrack_interpret < /tmp/ht.raw >
//! /tmp/ht && heaptrack_print -f /tmp/ht`).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

const PARTITIONS: i32 = 4;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `make bench-e2e`"))
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

async fn create_topics(bootstrap: &str, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = config(bootstrap).create().unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

async fn load(bootstrap: &str, topic: &str, n: usize) {
    load_with(bootstrap, topic, n, "B", None).await
}

/// Sends `n` events keyed `ENC-{tag}-i`, at `per_second` if given.
async fn load_with(bootstrap: &str, topic: &str, n: usize, tag: &str, per_second: Option<u32>) {
    let template: serde_json::Value =
        serde_json::from_str(include_str!("event-4-services.json")).unwrap();
    let pad = pad_bytes();
    let producer: FutureProducer = config(bootstrap)
        .set("message.max.bytes", "8388608")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    let started = tokio::time::Instant::now();
    for i in 0..n {
        if let Some(rate) = per_second {
            tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / f64::from(rate)))
                .await;
        }
        let mut ev = template.clone();
        let enc = format!("ENC-{tag}-{i}");
        ev["event_id"] = format!("bench-{tag}-{i}").into();
        ev["encounter"]["encounter_id"] = enc.clone().into();
        // A patient per encounter, as in a hospital's stream (one patient's
        // visits of a day are re-allocated together: not this bench's case).
        ev["encounter"]["patient"]["id"] = format!("PAT-{tag}-{i}").into();
        if pad > 0 {
            // An unknown field: ignored by the service, but the bytes travel.
            ev["pad"] = "x".repeat(pad).into();
        }
        let payload = ev.to_string();
        loop {
            match producer.send_result(FutureRecord::to(topic).key(&enc).payload(&payload)) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, _)) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        if pending.len() >= 20_000 {
            for f in pending.drain(..) {
                f.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// Reads `n` messages from `topic`: key and broker timestamp of each.
async fn drain(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> Vec<(String, i64)> {
    let consumer: StreamConsumer = config(bootstrap)
        .set("group.id", format!("bench-reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => out.push((
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                m.timestamp().to_millis().unwrap_or(0),
            )),
            Ok(Err(_)) => {}
            Err(_) => break,
        }
    }
    out
}

/// The baseline: consume and copy every message to `to`, no parsing.
async fn passthrough(bootstrap: &str, from: &str, to: &str, n: usize) -> Duration {
    let consumer: StreamConsumer = config(bootstrap)
        .set("group.id", format!("bench-passthrough-{from}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .create()
        .unwrap();
    let producer: FutureProducer = config(bootstrap)
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "8388608")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    consumer.subscribe(&[from]).unwrap();
    let start = Instant::now();
    let mut done = 0;
    let mut pending = Vec::new();
    while done < n {
        let m = consumer.recv().await.unwrap();
        let f = producer
            .send_result(
                FutureRecord::to(to)
                    .key(m.key().unwrap_or_default())
                    .payload(m.payload().unwrap_or_default()),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        pending.push(f);
        consumer.store_offset_from_message(&m).unwrap();
        done += 1;
        if pending.len() >= 500 {
            for f in pending.drain(..) {
                f.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    start.elapsed()
}

async fn scrape(port: u16) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// Waits until `n` events are recorded and every claim line acknowledged,
/// calling `each` on every poll.
async fn wait_done(pool: &sqlx::PgPool, n: usize, started: Instant, mut each: impl FnMut()) {
    loop {
        each();
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM encounter_events")
            .fetch_one(pool)
            .await
            .unwrap_or(0);
        let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM claim_line_outbox")
            .fetch_one(pool)
            .await
            .unwrap_or(1);
        if done as usize >= n && unpublished == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the service did not finish"
        );
        // Not more often: each poll counts rows on the server under test.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Seconds from the first to the last of some broker timestamps (ms).
fn span_secs(ts: impl Iterator<Item = i64>) -> f64 {
    let (lo, hi) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    ((hi - lo).max(1)) as f64 / 1000.0
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Where the service's resident memory sat at its highest, from
/// /proc/<pid>/smaps, so that a run that peaks high says what grew: the
/// mimalloc arena (Rust's heap: its reservations are the anonymous regions
/// of 256 MiB or more), glibc's thread arenas (librdkafka's and TLS's
/// heap: anonymous regions that start on a 64 MiB boundary), glibc's main
/// heap, the binary and libraries, and the rest (thread stacks, and the
/// blocks glibc maps on their own: 128 KiB and more, see src/main.rs);
/// with the thread count.
#[derive(Default)]
struct MemoryAtPeak {
    rss_kib: u64,
    mimalloc_kib: u64,
    glibc_arenas_kib: u64,
    glibc_arenas: usize,
    heap_kib: u64,
    files_kib: u64,
    other_kib: u64,
    threads: usize,
}

impl MemoryAtPeak {
    fn read(pid: u32) -> Option<MemoryAtPeak> {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
        let mut m = MemoryAtPeak {
            threads: std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.count(),
            ..Default::default()
        };
        // Each region: a header line, then fields; Rss is one of them.
        let mut region: Option<(u64, u64, String)> = None;
        for line in smaps.lines() {
            let mut f = line.split_whitespace();
            let first = f.next().unwrap_or_default();
            if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
                let (a, b) = (
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(b, 16).ok()?,
                );
                region = Some((a, b - a, f.nth(4).unwrap_or_default().to_owned()));
            } else if first == "Rss:" {
                let kib: u64 = f.next()?.parse().ok()?;
                let (start, size, name) = region.as_ref()?;
                m.rss_kib += kib;
                match name.as_str() {
                    "" if *size >= 256 << 20 => m.mimalloc_kib += kib,
                    "" if start % (64 << 20) == 0 && kib > 0 => {
                        m.glibc_arenas_kib += kib;
                        m.glibc_arenas += 1;
                    }
                    "[heap]" => m.heap_kib += kib,
                    n if n.starts_with('/') => m.files_kib += kib,
                    _ => m.other_kib += kib,
                }
            }
        }
        Some(m)
    }
}

impl std::fmt::Display for MemoryAtPeak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "{:.1} MiB resident: mimalloc {:.1}, glibc thread arenas {:.1} ({}), glibc main heap {:.1}, binary and libraries {:.1}, other anonymous (thread stacks, blocks glibc mapped on their own) {:.1}; {} threads",
            mib(self.rss_kib),
            mib(self.mimalloc_kib),
            mib(self.glibc_arenas_kib),
            self.glibc_arenas,
            mib(self.heap_kib),
            mib(self.files_kib),
            mib(self.other_kib),
            self.threads
        )
    }
}

/// Follows the service's resident memory every 20 ms until `stop`, and
/// returns its split ([`MemoryAtPeak`]) at the highest sample. Sampling
/// can miss a peak between two samples, which VmHWM does not.
fn watch_memory(
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Option<MemoryAtPeak>> {
    std::thread::spawn(move || {
        let mut peak: Option<MemoryAtPeak> = None;
        let mut highest = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Only a new high (by 256 KiB) reads the whole smaps.
            if let Some(rss) = status_kib(pid, "VmRSS").filter(|r| *r > highest + 256) {
                highest = rss;
                if let Some(m) = MemoryAtPeak::read(pid) {
                    peak = Some(m);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

/// A `field` of /proc/<pid>/status (VmHWM, VmRSS), in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn peak_rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmHWM").map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// CPU time used so far (clock ticks, utime + stime from /proc/<pid>/stat)
/// by the service, by every Postgres process (with the reaped children the
/// postmaster counts: backends that ended), and by the broker (`tansu`
/// processes listening on the bench's bootstrap address); and the whole
/// machine's busy ticks (/proc/stat), which shows what other sessions use.
#[derive(Clone, Copy, Default)]
struct Cpu {
    service: u64,
    postgres: u64,
    broker: u64,
    machine: u64,
}

fn cpu_now(service: u32, broker: &str) -> Cpu {
    let mut cpu = Cpu::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        // Fields 14-17 (utime, stime, cutime, cstime) counted from 1;
        // the rest after comm starts at field 3.
        let f: Vec<u64> = stat[close + 1..]
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if f.len() < 4 {
            continue;
        }
        if pid == service {
            cpu.service += f[0] + f[1];
        } else if comm.starts_with("postgres") {
            cpu.postgres += f.iter().sum::<u64>();
        } else if comm.starts_with("tansu")
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(broker))
        {
            cpu.broker += f[0] + f[1];
        }
    }
    // cpu  user nice system idle iowait irq softirq steal ...: busy is all
    // but idle and iowait.
    if let Ok(s) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = s.lines().next() {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .take(8)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            cpu.machine = v
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 3 && *i != 4)
                .map(|(_, x)| x)
                .sum();
        }
    }
    cpu
}

/// Clock ticks a second (`getconf CLK_TCK`; 100, Linux's USER_HZ, if that
/// fails).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Checkpoints the server has begun so far (timed and requested), where it
/// says. A run's Postgres CPU varies by a fifth and more run to run on the
/// shared server; a checkpoint writing out the buffers meanwhile is one
/// thing that differs, so the bench counts them.
async fn checkpoints(pool: &sqlx::PgPool) -> Option<i64> {
    // Postgres 17 moved the counters to pg_stat_checkpointer.
    for q in [
        "SELECT (checkpoints_timed + checkpoints_req)::int8 FROM pg_stat_bgwriter",
        "SELECT (num_timed + num_requested)::int8 FROM pg_stat_checkpointer",
    ] {
        if let Ok(n) = sqlx::query_scalar::<_, i64>(q).fetch_one(pool).await {
            return Some(n);
        }
    }
    None
}

/// "service 3.4 s (35% of a core), Postgres ..." for the ticks between two
/// samples over `wall`.
fn cpu_line(from: Cpu, to: Cpu, wall: Duration) -> String {
    let tck = clock_ticks();
    let wall = wall.as_secs_f64().max(1e-3);
    let part = |name: &str, a: u64, b: u64| {
        let s = b.saturating_sub(a) as f64 / tck;
        format!("{name} {s:.1} s ({:.0}% of a core)", 100.0 * s / wall)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{}, {}, {}; machine {} ({cores} cores, over {wall:.1} s wall)",
        part("service", from.service, to.service),
        part("Postgres", from.postgres, to.postgres),
        part("broker", from.broker, to.broker),
        part("all busy", from.machine, to.machine),
    )
}

/// How many lines of the benchmark's event go to the claim-lines topic
/// (validated ones; held ones go to the review topic), by the same rules.
fn validated_lines_per_event() -> usize {
    let event = include_str!("event-4-services.json");
    let enc = claimline::codec::decode(event.as_bytes()).expect("the bench event decodes");
    let rules = claimline::cms::shipped::rules_for(enc.date_of_service);
    claimline::domain::evaluate(&enc, rules)
        .iter()
        .filter(|l| l.status == claimline::domain::Status::Validated)
        .count()
}

/// BENCH_EVENT_PAD_BYTES=N pads every event with N bytes of an unknown
/// field (e.g. 1000000 for the 1 MiB-event memory check).
fn pad_bytes() -> usize {
    std::env::var("BENCH_EVENT_PAD_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A TCP proxy on 127.0.0.1 to `upstream` that holds every chunk for
/// `delay` in each direction, in order: a round trip costs 2 x `delay`.
/// Its port.
async fn latency_proxy(upstream: String, delay: Duration) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(delayed(cr, sw, delay));
                tokio::spawn(delayed(sr, cw, delay));
            });
        }
    });
    port
}

async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at + delay).await;
            if to.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0
            || tx
                .send((tokio::time::Instant::now(), buf[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}/{path}")
}

/// The database's own limit for what the service wrote: the same batches
/// (`batch_events` events each, in processing order), each written as one
/// COPY per table (events, payloads, claim lines, the patients' days'
/// encounters) in one transaction, into empty copies of those tables (same
/// columns, indexes and checks). No rules, locks, look-ups or outbox.
/// Events per second of write time, and the CPU those writes took
/// (`cpu_line`).
async fn database_ceiling(pool: &sqlx::PgPool, batch_events: usize, broker: &str) -> (f64, String) {
    use futures_util::TryStreamExt;
    // Each table's rows of a batch (`{list}`: its event ids). An encounter's
    // day entries go with the batch of its first event.
    const TABLES: [(&str, &str); 4] = [
        ("encounter_events", "event_id IN ({list})"),
        ("encounter_payloads", "event_id IN ({list})"),
        ("claim_lines", "event_id IN ({list})"),
        (
            "patient_day_encounters",
            "encounter_id IN (SELECT e.encounter_id FROM encounter_events e
                 WHERE e.event_id IN ({list}) AND NOT EXISTS (
                     SELECT 1 FROM encounter_events f WHERE f.encounter_id = e.encounter_id
                       AND (f.processed_at, f.event_id) < (e.processed_at, e.event_id)))",
        ),
    ];
    for (t, _) in TABLES {
        sqlx::query(&format!(
            "CREATE TABLE ceiling_{t} (LIKE {t} INCLUDING ALL)"
        ))
        .execute(pool)
        .await
        .unwrap();
    }
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM encounter_events ORDER BY processed_at, event_id")
            .fetch_all(pool)
            .await
            .unwrap();
    // Read every batch's rows first (as COPY text), so that only the
    // writes are timed.
    let mut batches: Vec<Vec<Vec<u8>>> = Vec::new();
    for chunk in ids.chunks(batch_events.max(1)) {
        // The bench's own event ids: [A-Za-z0-9-] only.
        let list = chunk
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",");
        let mut tables = Vec::new();
        for (t, rows) in TABLES {
            let rows = rows.replace("{list}", &list);
            let mut conn = pool.acquire().await.unwrap();
            let data: Vec<u8> = conn
                .copy_out_raw(&format!("COPY (SELECT * FROM {t} WHERE {rows}) TO STDOUT"))
                .await
                .unwrap()
                .try_fold(Vec::new(), |mut acc, b| async move {
                    acc.extend_from_slice(&b);
                    Ok(acc)
                })
                .await
                .unwrap();
            tables.push(data);
        }
        batches.push(tables);
    }
    let cpu_started = cpu_now(0, broker);
    let started = Instant::now();
    for tables in &batches {
        let mut tx = pool.begin().await.unwrap();
        for ((t, _), data) in TABLES.iter().zip(tables) {
            let mut copy = tx
                .copy_in_raw(&format!("COPY ceiling_{t} FROM STDIN"))
                .await
                .unwrap();
            copy.send(data.as_slice()).await.unwrap();
            copy.finish().await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let wall = started.elapsed();
    (
        ids.len() as f64 / wall.as_secs_f64(),
        cpu_line(cpu_started, cpu_now(0, broker), wall),
    )
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let bootstrap = env("CLAIMLINE_TEST_KAFKA");
    let admin_url = env("CLAIMLINE_TEST_DATABASE_URL");
    let tag = format!("bench{}", std::process::id());
    let (input, output, review, dlq, copy) = (
        format!("{tag}.encounters"),
        format!("{tag}.claim-lines"),
        format!("{tag}.review"),
        format!("{tag}.dlq"),
        format!("{tag}.copy"),
    );
    create_topics(&bootstrap, &[&input, &output, &review, &dlq, &copy]).await;
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{tag}\""))
        .execute(&admin)
        .await
        .unwrap();
    let db_url = format!("{}/{tag}", admin_url.rsplit_once('/').unwrap().0);

    println!(
        "loading {n} events (4 services each, {} bytes of padding) into {input} ({PARTITIONS} partitions)...",
        pad_bytes()
    );
    let t = Instant::now();
    load(&bootstrap, &input, n).await;
    println!("  loaded in {:.1}s", t.elapsed().as_secs_f64());

    let base = passthrough(&bootstrap, &input, &copy, n).await;
    let base_eps = n as f64 / base.as_secs_f64();
    let copies = drain(&bootstrap, &copy, n, Duration::from_secs(120)).await;
    let base_steady = n as f64 / span_secs(copies.iter().map(|(_, ts)| *ts));
    println!(
        "passthrough (consume + produce, no parsing): {base_eps:.0} events/s from start, {base_steady:.0} events/s steady"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let latency_ms: u64 = std::env::var("BENCH_DB_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let service_db_url = if latency_ms > 0 {
        let authority = db_url
            .split_once("://")
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap();
        let upstream = authority.rsplit('@').next().unwrap().to_owned();
        let port = latency_proxy(upstream, Duration::from_millis(latency_ms / 2)).await;
        println!("the service reaches Postgres through a proxy adding {latency_ms} ms to every round trip");
        via_port(&db_url, port)
    } else {
        db_url.clone()
    };
    // The broker's process: the one listening on the bootstrap address.
    let broker_addr = bootstrap.split(',').next().unwrap_or_default().to_owned();
    let cpu_started = cpu_now(0, &broker_addr);
    let started = Instant::now();
    let mut service = Command::new(env!("CARGO_BIN_EXE_claimline"));
    // A heap profiler's preload library (heaptrack's), for the service only.
    if let Ok(lib) = std::env::var("BENCH_SERVICE_LD_PRELOAD") {
        service.env("LD_PRELOAD", lib);
    }
    let mut child = service
        .arg("run")
        .env("DATABASE_URL", &service_db_url)
        .env("KAFKA_BOOTSTRAP_SERVERS", &bootstrap)
        .env("CLAIMLINE_GROUP_ID", format!("{tag}.service"))
        .env("CLAIMLINE_INPUT_TOPIC", &input)
        .env("CLAIMLINE_OUTPUT_TOPIC", &output)
        .env("CLAIMLINE_REVIEW_TOPIC", &review)
        .env("CLAIMLINE_DLQ_TOPIC", &dlq)
        .env("CLAIMLINE_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "CLAIMLINE_LOG",
            std::env::var("BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("claimline starts");
    let stop_watch = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let memory_watch = watch_memory(child.id(), stop_watch.clone());
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let checkpoints_before = checkpoints(&pool).await;
    let mut rss = 0.0f64;
    wait_done(&pool, n, started, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the service exited ({status}) before the backlog drained");
        }
        rss = rss.max(peak_rss_mib(child.id()))
    })
    .await;
    let service = started.elapsed();
    let cpu_backlog = cpu_line(cpu_started, cpu_now(child.id(), &broker_addr), service);
    let checkpoints_during = match (checkpoints_before, checkpoints(&pool).await) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => "unknown".into(),
    };
    // Latency under load: with the backlog done, events at a steady rate.
    let (paced, rate) = (3_000usize, 1_000u32);
    load_with(&bootstrap, &input, paced, "P", Some(rate)).await;
    wait_done(&pool, n + paced, started, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the service exited ({status}) before the paced events were done");
        }
    })
    .await;
    rss = rss.max(peak_rss_mib(child.id()));
    let mut batch_events = 1_000usize;
    if let Ok(scrape) = scrape(port).await {
        let v = |name: &str| {
            scrape
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
                .and_then(|x| x.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let batches = v("claimline_batch_size_events_count");
        let each = v("claimline_batch_size_events_sum") / batches;
        if each.is_finite() && each >= 1.0 {
            batch_events = each.round() as usize;
        }
        println!(
            "  {batches} batches, {:.0} events each; database {:.1} ms a batch",
            v("claimline_batch_size_events_sum") / batches,
            1000.0 * v("claimline_db_batch_duration_seconds_sum")
                / v("claimline_db_batch_duration_seconds_count")
        );
    }
    stop_watch.store(true, std::sync::atomic::Ordering::Relaxed);
    let memory_at_peak = memory_watch.join().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    let eps = n as f64 / service.as_secs_f64();

    // Latency: input broker timestamp to the last claim line of that event.
    let inputs: HashMap<String, i64> =
        drain(&bootstrap, &input, n + paced, Duration::from_secs(120))
            .await
            .into_iter()
            .collect();
    let mut last_line: HashMap<String, i64> = HashMap::with_capacity(n);
    let lines = drain(
        &bootstrap,
        &output,
        validated_lines_per_event() * (n + paced),
        Duration::from_secs(300),
    )
    .await;
    let steady = n as f64
        / span_secs(
            lines
                .iter()
                .filter(|(k, _)| k.starts_with("ENC-B-"))
                .map(|(_, ts)| *ts),
        );
    for (key, ts) in lines {
        let e = last_line.entry(key).or_insert(ts);
        *e = (*e).max(ts);
    }
    let mut latencies: Vec<i64> = last_line
        .iter()
        .filter(|(k, _)| k.starts_with("ENC-P-"))
        .filter_map(|(k, out)| Some(out - inputs.get(k)?))
        .collect();
    latencies.sort_unstable();
    println!(
        "claimline run: {eps:.0} events/s end to end from process start ({n} events in {:.1}s), {steady:.0} events/s steady; floor {}",
        service.as_secs_f64(),
        if latency_ms > 0 { "1,000 (200 ms to the database)" } else { "19,000" }
    );
    if !latencies.is_empty() {
        println!(
            "  latency event -> its last claim line at {rate} events/s after the backlog: p50 {} ms, p99 {} ms ({} events); p99 floor 250 ms",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.len()
        );
    }
    println!("  peak memory (VmHWM): {rss:.1} MiB; floor < 110 MiB");
    if let Some(m) = memory_at_peak {
        println!("  at the highest sample: {m}");
    }
    println!("  CPU during the backlog (service start to its last row): {cpu_backlog}");
    println!("  Postgres checkpoints begun during the backlog: {checkpoints_during}");
    println!(
        "ratio service / passthrough: {:.2} steady (first to last message each writes), {:.2} from start; target >= 0.5",
        steady / base_steady,
        eps / base_eps
    );
    let (ceiling, cpu_ceiling) = database_ceiling(&pool, batch_events, &broker_addr).await;
    println!(
        "database ceiling (the same rows, {batch_events} events a batch, one COPY per table, one transaction a batch; no rules, locks, look-ups or outbox): {ceiling:.0} events/s; service steady / ceiling {:.2}; floor 0.7",
        steady / ceiling
    );
    println!("  CPU during the ceiling's writes: {cpu_ceiling}");
    // `claimline reprocess --dry-run` over every encounter the service
    // wrote: its list is read a page at a time from where the last page
    // stopped (migration 0014), so the time grows with the encounters, not
    // with their square.
    let (since, until): (String, String) = sqlx::query_as(
        "SELECT min(date_of_service)::text, max(date_of_service)::text FROM encounter_payloads",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args([
            "reprocess",
            "--since",
            &since,
            "--until",
            &until,
            "--page-size",
            "200",
            "--dry-run",
        ])
        .env("DATABASE_URL", &db_url)
        .env("KAFKA_BOOTSTRAP_SERVERS", &bootstrap)
        .env("CLAIMLINE_OUTPUT_TOPIC", &output)
        .env("CLAIMLINE_REVIEW_TOPIC", &review)
        .output()
        .expect("claimline reprocess runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "reprocess --dry-run ({since} to {until}, pages of 200): {} in {:.1} s",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default(),
        took.as_secs_f64()
    );
    // Its database goes, so runs do not pile data onto the shared server.
    pool.close().await;
    if std::env::var("BENCH_KEEP_DB").is_ok() {
        println!("database {tag} kept (BENCH_KEEP_DB): drop it when done");
        return;
    }
    let _ = sqlx::query(&format!("DROP DATABASE \"{tag}\" WITH (FORCE)"))
        .execute(&admin)
        .await;
}
