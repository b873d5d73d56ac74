//! Postgres (sqlx): the only module that names sqlx. The rest of the
//! crate holds a [`Db`] (the pool) or a [`Batch`] (one open batch
//! transaction) and calls their methods with plain types.
//!
//! - this file: [`Db`], connection, migrations, error classes, the row types;
//! - [`conn`]: a pooled connection under a client-side deadline, discarded
//!   when it misses it;
//! - [`url`]: the Postgres URL, which never prints its password;
//! - [`batch`]: the batch transaction (lock, load the ledger, write, commit);
//! - [`load`]: what the batch transaction loads for the ledger;
//! - [`write`]: the batch's rows in one statement;
//! - [`outbox`]: what was committed and not yet acknowledged;
//! - [`owner_lock`]: the advisory lock that proves an outbox owner lives;
//! - [`rules`]: imported CMS tables;
//! - [`dead_letters`]: dead-letter values kept here and replays done;
//! - [`export`]: `claimline export`'s lines, in claim-key order, page by page;
//! - [`reprocess`]: `claimline reprocess`'s runs and pages;
//! - [`web`]: what `claimline web` reads (the views of migration 0008).

mod batch;
mod conn;
pub(crate) mod dead_letters;
pub(crate) mod export;
mod instance;
mod load;
mod outbox;
mod owner_lock;
pub(crate) mod reprocess;
pub(crate) mod rules;
mod url;
pub(crate) mod web;
mod write;

pub(crate) use batch::Batch;
pub(crate) use conn::{on_conn, Conn, DeadlineMissed};
pub(crate) use instance::{InstanceLock, Kept};
pub(crate) use outbox::{backlog, claim_lapsed, mark_published, renew, OwnedElsewhere, Owner};
pub(crate) use owner_lock::OwnerLock;

pub use url::DatabaseUrl;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::domain::ledger::Outcome;
use crate::domain::{ClaimLine, Status};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every session's options. JIT is off: claimline's statements are short
/// and index-driven, and Postgres chooses to compile a plan by its total
/// cost, which for a page read by a LIMIT counts the whole range. A
/// `reprocess` page over the bench's 103,000 encounters ran in 0.8 ms and
/// was compiled for 137 ms first.
///
/// `claimline.schema_version` names the newest migration this release
/// knows: a migration that changes how claim lines must be written refuses
/// the writes of sessions that know less (0015's `claimline_writer_guard`),
/// so a replica of an earlier release left running in a rolling update
/// stands still instead of writing what the new readers would misread.
fn options(url: &DatabaseUrl) -> anyhow::Result<PgConnectOptions> {
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    Ok(PgConnectOptions::from_str(url.check()?)
        // Its error could quote the URL: not chained.
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid Postgres URL"))?
        .options([
            ("jit", "off".to_owned()),
            ("claimline.schema_version", known.to_string()),
        ]))
}

/// TCP keepalive, asked of the server for the session (sqlx sets none on
/// its side of the socket): a peer that vanished is noticed within about a
/// minute even while the session is idle, and data unacknowledged for 30 s
/// ends it. (Ignored on a Unix socket.)
fn keepalive(o: PgConnectOptions) -> PgConnectOptions {
    o.options([
        ("tcp_keepalives_idle", "30"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "30000"),
    ])
}

/// The client-side deadline of a tool's step (`claimline migrate`, `rules
/// import`, `reprocess`, `dlq replay`): their sessions keep the server's
/// default timeouts, and a whole CMS quarter is one statement.
const TOOL_DEADLINE: Duration = Duration::from_secs(600);

/// How long the service's pool waits for a connection, a new connection's
/// handshake included.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a tool (`migrate`, `rules import`, `reprocess`, `export`, ...)
/// waits for its connections: a one-off run on a busy server had better
/// wait than fail (its steps keep their own deadline).
const TOOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(15);

/// The database: a pool of connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Db {
    pool: PgPool,
    /// Every step (one call of the store) ends within this, or fails with
    /// [`DeadlineMissed`] and its connection is discarded.
    deadline: Duration,
}

/// The server-side bounds of a service session, and the client-side
/// deadline derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// `statement_timeout` and `lock_timeout`.
    pub statement: Duration,
    /// `idle_in_transaction_session_timeout`: how long the server keeps an
    /// abandoned transaction (and its advisory locks) of a client that
    /// went silent.
    pub idle_in_transaction: Duration,
    /// The client-side deadline of a step: the statement timeout plus one
    /// second, so a statement the server cancels reports its own error first.
    pub deadline: Duration,
}

impl Timeouts {
    /// From the statement timeout: idle in a transaction at most that and
    /// never over 10 s (a batch is idle in its transaction only while it
    /// plans, milliseconds), the deadline one second past it.
    pub(crate) fn from_statement(statement: Duration) -> Timeouts {
        Timeouts {
            statement,
            idle_in_transaction: statement.min(Duration::from_secs(10)),
            deadline: statement + Duration::from_secs(1),
        }
    }
}

impl Db {
    /// Connects now; fails when Postgres cannot be reached.
    pub(crate) async fn connect(url: &DatabaseUrl, pool_size: u32) -> anyhow::Result<Db> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(TOOL_ACQUIRE_TIMEOUT)
            .connect_with(keepalive(options(url)?))
            .await
            .context("Failed to connect to Postgres (DATABASE_URL)")?;
        Ok(Db {
            pool,
            deadline: TOOL_DEADLINE,
        })
    }

    /// [`Db::connect`], then refuses a schema this build has migrations
    /// for that did not run (the tools need a current schema, and never
    /// migrate it themselves: they may run with a role without DDL rights).
    pub(crate) async fn connect_current(url: &DatabaseUrl, pool_size: u32) -> anyhow::Result<Db> {
        let db = Db::connect(url, pool_size).await?;
        let missing = db.missing_migrations().await?;
        anyhow::ensure!(
            missing.is_empty(),
            "the database schema is not current (migrations {missing:?}): run `claimline migrate` first"
        );
        Ok(db)
    }

    /// A pool that connects on first use, so the service can start while
    /// Postgres is still down and report not-ready instead of exiting. Every
    /// session gets the server-side bounds of `timeouts` (see [`Timeouts`]),
    /// every step its client-side deadline.
    pub(crate) fn connect_lazy(
        url: &DatabaseUrl,
        pool_size: u32,
        timeouts: Timeouts,
    ) -> anyhow::Result<Db> {
        let ms = |d: Duration| d.as_millis().to_string();
        let options = keepalive(options(url)?).options([
            ("statement_timeout", ms(timeouts.statement)),
            ("lock_timeout", ms(timeouts.statement)),
            (
                "idle_in_transaction_session_timeout",
                ms(timeouts.idle_in_transaction),
            ),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each use: a round trip per step (a batch's
            // transaction would cost five, not four). A connection that
            // died fails its first statement, is discarded (see
            // [`conn`]) and the step retried on a new one.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Ok(Db {
            pool,
            deadline: timeouts.deadline,
        })
    }

    pub(crate) async fn migrate(&self) -> anyhow::Result<()> {
        on_conn!(self, |c| MIGRATOR
            .run_direct(c)
            .await
            .context("Failed to run database migrations"));
        Ok(())
    }

    /// The migrations this build knows that the database has not applied
    /// (successfully), by version; empty when the schema is current. Errs only
    /// when the database cannot be asked.
    pub(crate) async fn missing_migrations(&self) -> anyhow::Result<Vec<i64>> {
        let applied: Vec<i64> = on_conn!(self, |c| {
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(&mut *c)
                    .await
                    .context("Failed to read the migration history")?;
            if exists {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(&mut *c)
                    .await
                    .context("Failed to read the migration history")
            } else {
                Ok(Vec::new())
            }
        });
        Ok(MIGRATOR
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    /// Whether Postgres answers a trivial query on a pooled connection
    /// within the deadline.
    pub(crate) async fn ping(&self) -> bool {
        let ping = async {
            Ok::<_, anyhow::Error>(on_conn!(self, |c| sqlx::query("SELECT 1")
                .execute(c)
                .await
                .context("ping")))
        };
        ping.await.is_ok()
    }

    /// Connections in the pool: (open, idle).
    pub(crate) fn connections(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

/// The SQLSTATE of a Postgres error in `e`'s chain, for logs: the server's
/// text can quote a value from the row (PHI), the code cannot.
pub(crate) fn sqlstate(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    let db = cause.downcast_ref::<sqlx::Error>()?.as_database_error()?;
    Some(db.code().map(|c| c.into_owned()).unwrap_or_default())
}

/// The SQLSTATE of a Postgres error that the batch's *content* caused and
/// that no retry will cure: data exceptions (class 22: NUL in text, a value
/// out of range, bad encoding), integrity violations (23) and program
/// limits (54: a row or value too large). `None` for everything else,
/// which is transient (connection, timeout, serialization, shutdown) or
/// our own bug, and is retried.
pub(crate) fn refused_by_content(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .filter_map(sqlstate)
        .find(|code| matches!(code.get(..2), Some("22" | "23" | "54")))
}

/// Decodes a stored event payload (the codec's decoder: the store knows no
/// wire format). `None` for one that no longer decodes.
pub(crate) type Decode = fn(&[u8]) -> Option<crate::domain::Encounter>;

/// What a batch's ledger must be loaded for. No `Debug`: it holds patient ids.
pub(crate) struct Keys<'a> {
    /// Sorted, unique: the lock order.
    pub encounters: Vec<&'a str>,
    pub events: Vec<&'a str>,
    /// (patient, calendar year of the date of service), sorted, unique:
    /// the year-to-date therapy amounts to lock and load.
    pub patient_years: Vec<(&'a str, i32)>,
    /// (patient, NPI, payer, date of service, encounter): the days for the
    /// units, with the encounters of the batch's events on each. Every
    /// provider's encounters of the (patient, payer, date) are loaded (the
    /// NPI is not part of the look-up): co-treatment compares them.
    pub days: Vec<(&'a str, &'a str, &'a str, chrono::NaiveDate, &'a str)>,
}

/// Where an event came from on the broker.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One decoded event's row in `encounter_events`.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub event_id: Arc<str>,
    pub encounter_id: Arc<str>,
    pub version: u32,
    pub event_type: &'static str,
    pub outcome: Outcome,
    pub lines_produced: usize,
    pub lines_voided: usize,
    pub occurred_at: DateTime<Utc>,
    pub source: Source,
}

#[derive(Debug)]
pub(crate) struct DeadLetterRow {
    pub source: Source,
    pub reason: &'static str,
    pub message: String,
}

/// A message for a claim-line topic; `id` is its batch's outbox row. Key
/// and payload live only in memory: the database holds the line itself.
#[derive(Debug, Clone)]
pub(crate) struct OutboxEntry {
    pub id: i64,
    pub claim_line_id: String,
    pub status: Status,
    pub topic: Arc<str>,
    pub key: Arc<str>,
    pub payload: String,
}

/// A processed event's original bytes (PHI: `encounter_payloads` has
/// claim_lines' protections), for reprocessing and the day's re-evaluation.
pub(crate) struct PayloadRow {
    pub event_id: Arc<str>,
    pub encounter_id: Arc<str>,
    pub version: u32,
    pub date_of_service: chrono::NaiveDate,
    pub payload: Arc<[u8]>,
}

impl std::fmt::Debug for PayloadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayloadRow({} bytes)", self.payload.len())
    }
}

/// Everything one batch writes, in one transaction.
#[derive(Debug, Default)]
pub(crate) struct BatchWrite {
    pub events: Vec<EventRow>,
    pub payloads: Vec<PayloadRow>,
    pub new_lines: Vec<ClaimLine>,
    /// (claim_line_id, voiding event_id)
    pub voids: Vec<(String, Arc<str>)>,
    /// In publishing order; ids are assigned on insert.
    pub outbox: Vec<OutboxEntry>,
    pub dead_letters: Vec<DeadLetterRow>,
}
