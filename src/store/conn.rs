//! A pooled connection under a client-side deadline. The server's own
//! timeouts cannot end a step whose socket went half-open (a NAT or
//! conntrack flush, a failover, a dead load balancer): no reply ever
//! comes, and sqlx, given such a connection back, pings it before reuse
//! and waits forever while it holds a slot of the pool. So every step
//! runs on a [`Conn`] within [`Db::deadline`], and a connection that
//! missed it (or failed at all) is detached from the pool and its socket
//! closed: never reused, never pinged.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use anyhow::Context;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::Postgres;

use super::Db;

/// A Postgres step took longer than the client-side deadline; its
/// connection was discarded. Transient: the step is retried on a new one.
#[derive(Debug, thiserror::Error)]
#[error("a Postgres step missed its {} s deadline; its connection was discarded", .0.as_secs_f64())]
pub struct DeadlineMissed(pub Duration);

/// A connection taken from the pool. [`Conn::release`] gives it back;
/// dropped without that (a step failed, missed its deadline or was
/// abandoned), it leaves the pool and its socket closes at once.
pub(crate) struct Conn(Option<PoolConnection<Postgres>>);

impl Conn {
    /// Back to the pool, healthy.
    pub(crate) fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Detached: the pool forgets it (its slot is free again) and
            // dropping the raw connection closes the socket without a word
            // to the server, which rolls back (or, half-open, ends the
            // session at its idle-in-transaction timeout).
            drop(c.detach());
        }
    }
}

impl Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.0.as_deref().expect("present until dropped")
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.0.as_deref_mut().expect("present until dropped")
    }
}

impl Db {
    /// The client-side bound of one store step.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// A connection from the pool, waiting at most the pool's acquire
    /// timeout (a new connection's handshake included).
    pub(crate) async fn acquire(&self) -> anyhow::Result<Conn> {
        let c = self
            .pool
            .acquire()
            .await
            .context("Failed to get a Postgres connection")?;
        Ok(Conn(Some(c)))
    }

    /// `step` within the deadline, or [`DeadlineMissed`]. The connection
    /// it ran on must then be dropped, not released.
    pub(crate) async fn timed<T>(
        &self,
        step: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.deadline, step).await {
            Ok(r) => r,
            Err(_) => Err(DeadlineMissed(self.deadline).into()),
        }
    }
}

/// One statement (or a few) on a connection of `$db`'s pool, within its
/// deadline; the connection goes back only if the step succeeded.
/// `$conn` names the `&mut PgConnection` inside `$body`.
macro_rules! on_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::store::Db = $db;
        let mut guard = db.acquire().await?;
        let out = {
            let $conn: &mut sqlx::postgres::PgConnection = &mut guard;
            db.timed(async { $body }).await?
        };
        guard.release();
        out
    }};
}
pub(crate) use on_conn;
