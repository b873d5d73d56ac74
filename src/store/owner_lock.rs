//! Proof that an outbox owner lives: each instance holds a session-level
//! advisory lock on its instance id, on a connection of its own. Postgres
//! releases it when that session ends (the process died, or its socket
//! did), so another instance that can take the lock knows the owner is
//! gone and takes its outbox rows over without waiting for their lease
//! (see outbox.rs). The two-key form keeps these locks apart from
//! the batches' encounter and patient-year locks (one 64-bit key).

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::{Db, Owner};

/// The first key of every owner lock ("clmo"); the second is
/// `hashtext(instance id)`.
pub(crate) const OWNER_LOCK_SPACE: i32 = 0x636c_6d6f;

/// This instance's owner lock and the session that holds it.
pub(crate) struct OwnerLock {
    db: Db,
    instance: std::sync::Arc<str>,
    conn: Option<PgConnection>,
}

impl Db {
    /// Takes this instance's owner lock on a new connection of its own.
    pub(crate) async fn hold_owner_lock(&self, owner: &Owner) -> anyhow::Result<OwnerLock> {
        let mut lock = OwnerLock {
            db: self.clone(),
            instance: owner.id.clone(),
            conn: None,
        };
        lock.keep().await?;
        Ok(lock)
    }
}

impl OwnerLock {
    /// Checks that the session holding the lock still answers (within the
    /// deadline); if it does not, opens a new one and takes the lock again.
    pub(crate) async fn keep(&mut self) -> anyhow::Result<()> {
        if let Some(conn) = self.conn.as_mut() {
            let alive = self
                .db
                .timed(async { conn.ping().await.context("ping") })
                .await;
            if alive.is_ok() {
                return Ok(());
            }
            // Dropped, not closed politely: its socket may be half-open.
            self.conn = None;
            tracing::warn!(
                "the session holding this instance's owner lock was lost; taking it again"
            );
        }
        let options = self.db.pool.connect_options();
        let (db, instance) = (&self.db, &*self.instance);
        let conn = db
            .timed(async {
                let mut conn = PgConnection::connect_with(&options)
                    .await
                    .context("Failed to open the owner-lock connection")?;
                let held: bool =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                        .bind(OWNER_LOCK_SPACE)
                        .bind(instance)
                        .fetch_one(&mut conn)
                        .await
                        .context("Failed to take the owner lock")?;
                anyhow::ensure!(held, "another session holds this instance's owner lock");
                Ok(conn)
            })
            .await?;
        self.conn = Some(conn);
        Ok(())
    }
}
