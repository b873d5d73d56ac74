//! One live process per static group member (`CLAIMLINE_INSTANCE_ID`).
//! Kafka fences a second consumer that joins with a live member's
//! `group.instance.id`; Tansu 0.6.0 does not (tested: both kept the same
//! partitions). So an instance with an id holds a session-level advisory
//! lock on (group, id) on a connection of its own for as long as it runs:
//! a second process with the same id waits for it (a restarted pod whose
//! predecessor is still going away) and, past its wait, refuses to start.
//! The lock dies with its session: a killed process's connection closes
//! and frees it at once.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use super::DatabaseUrl;

/// How long each statement on the lock's connection may take.
const STEP: Duration = Duration::from_secs(5);

/// The held lock, on its own connection.
pub(crate) struct InstanceLock {
    conn: PgConnection,
    key: String,
    options: PgConnectOptions,
}

/// What became of the lock when its connection was lost.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Held (still, or again on a new connection).
    Held,
    /// Another live process with the same id took it meanwhile.
    TakenByAnother,
    /// The database cannot be reached now; ask again later.
    Unknown,
}

impl InstanceLock {
    /// Takes the lock of (`group`, `id`), waiting up to `wait` for a
    /// process that holds it to go away.
    pub(crate) async fn acquire(
        url: &DatabaseUrl,
        group: &str,
        id: &str,
        wait: Duration,
    ) -> anyhow::Result<InstanceLock> {
        let options = PgConnectOptions::from_str(url.check()?)
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid Postgres URL"))?
            .options([("statement_timeout", STEP.as_millis().to_string())]);
        let key = format!("claimline-instance\u{1f}{group}\u{1f}{id}");
        let started = Instant::now();
        loop {
            let attempt = async {
                let mut conn = tokio::time::timeout(STEP, PgConnection::connect_with(&options))
                    .await
                    .context("connecting for the instance lock timed out")??;
                let got = try_lock(&mut conn, &key).await?;
                anyhow::Ok(got.then_some(conn))
            };
            match attempt.await {
                Ok(Some(conn)) => {
                    return Ok(InstanceLock { conn, key, options });
                }
                Ok(None) if started.elapsed() >= wait => anyhow::bail!(
                    "another live instance holds CLAIMLINE_INSTANCE_ID {id:?} in group {group:?} (waited {}s); each instance needs its own id",
                    wait.as_secs()
                ),
                Err(e) if started.elapsed() >= wait => {
                    return Err(e.context("Failed to take the instance lock"))
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Checks the lock's session; on a lost connection, takes the lock again
    /// on a new one.
    pub(crate) async fn check(&mut self) -> Kept {
        let alive = tokio::time::timeout(STEP, sqlx::query("SELECT 1").execute(&mut self.conn))
            .await
            .is_ok_and(|r| r.is_ok());
        if alive {
            return Kept::Held;
        }
        let again = async {
            let mut conn =
                tokio::time::timeout(STEP, PgConnection::connect_with(&self.options)).await??;
            let got = try_lock(&mut conn, &self.key).await?;
            anyhow::Ok((conn, got))
        };
        match again.await {
            Ok((conn, true)) => {
                self.conn = conn;
                Kept::Held
            }
            Ok((_, false)) => Kept::TakenByAnother,
            Err(_) => Kept::Unknown,
        }
    }
}

async fn try_lock(conn: &mut PgConnection, key: &str) -> anyhow::Result<bool> {
    tokio::time::timeout(
        STEP,
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(key)
            .fetch_one(&mut *conn),
    )
    .await
    .context("the instance lock query timed out")?
    .context("Failed to ask for the instance lock")
}
