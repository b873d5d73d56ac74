//! Two batches written at once, in order. A batch's write may start once
//! the batch before it holds its locks (so a later batch that shares an
//! encounter or a patient-year waits for it in Postgres, and then sees its
//! lines), and may commit only once the batch before it has committed. If
//! the batch before fails an attempt, the later one rolls back and waits
//! until it has committed: the two never retry against each other's locks,
//! and no batch is committed ahead of one before it.
//!
//! A later batch that repeats an event id of the batch before waits for it
//! to commit before it starts: the two would otherwise insert one key each
//! and could wait for each other, one in Postgres, one here.

use tokio::sync::watch;

/// Where a batch's write stands, for the batch after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Its first attempt is taking its locks.
    Loading,
    /// Its first attempt holds its locks.
    Loaded,
    /// An attempt failed: it is retried, or split; the next waits for it.
    Troubled,
    /// Committed (all its parts), or had nothing to write.
    Done,
    /// The service is stopping and this batch was not written.
    Stopped,
}

/// The batch before this one ended its attempt or the service stops: the
/// attempt of this one rolls back (a transient error, retried).
#[derive(Debug, thiserror::Error)]
#[error("the batch before this one failed an attempt; this one waits for it")]
pub(super) struct AfterTroubled;

/// One batch's place in the order: the phase of the batch before (none for
/// the first) and its own.
pub(super) struct Order {
    before: Option<watch::Receiver<Phase>>,
    own: watch::Sender<Phase>,
    /// Wait for the batch before to commit before starting.
    serial: bool,
}

impl Order {
    /// The first batch, or one after `before`; `serial` when it must not
    /// overlap it at all. The receiver is this batch's phase, for the next.
    pub(super) fn after(
        before: Option<watch::Receiver<Phase>>,
        serial: bool,
    ) -> (Order, watch::Receiver<Phase>) {
        let (own, rx) = watch::channel(Phase::Loading);
        (
            Order {
                before,
                own,
                serial,
            },
            rx,
        )
    }

    /// Waits until this batch's attempt may start: the batch before holds
    /// its locks (or has committed, when this one is serial or it was
    /// troubled). Returns what it saw, for [`Order::may_commit`].
    pub(super) async fn may_start(&self) -> Phase {
        let Some(before) = &self.before else {
            return Phase::Done;
        };
        let mut before = before.clone();
        let seen = before
            .wait_for(|p| match p {
                Phase::Loaded => !self.serial,
                Phase::Done | Phase::Stopped => true,
                Phase::Loading | Phase::Troubled => false,
            })
            .await
            .map(|p| *p)
            // The batch before is gone (its task ended): nothing to wait for.
            .unwrap_or(Phase::Done);
        seen
    }

    /// Waits until this batch may commit: the batch before has committed.
    /// `Err` when it failed an attempt (or stopped) since `seen`.
    pub(super) async fn may_commit(&self, seen: Phase) -> Result<(), AfterTroubled> {
        let Some(before) = &self.before else {
            return Ok(());
        };
        if seen == Phase::Done {
            return Ok(());
        }
        let mut before = before.clone();
        let now = before
            .wait_for(|p| matches!(p, Phase::Done | Phase::Troubled | Phase::Stopped))
            .await
            .map(|p| *p)
            .unwrap_or(Phase::Done);
        match now {
            Phase::Done => Ok(()),
            _ => Err(AfterTroubled),
        }
    }

    /// This batch's first attempt holds its locks.
    pub(super) fn loaded(&self) {
        self.own.send_if_modified(|p| {
            let first = *p == Phase::Loading;
            if first {
                *p = Phase::Loaded;
            }
            first
        });
    }

    pub(super) fn set(&self, phase: Phase) {
        self.own.send_replace(phase);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn pending<F: std::future::Future>(f: F) -> bool {
        tokio::time::timeout(Duration::from_millis(50), f)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_batch_starts_once_the_one_before_holds_its_locks_and_commits_after_it() {
        let (first, first_rx) = Order::after(None, false);
        let (second, _) = Order::after(Some(first_rx), false);
        assert_eq!(first.may_start().await, Phase::Done);
        assert!(pending(second.may_start()).await);
        first.loaded();
        let seen = second.may_start().await;
        assert_eq!(seen, Phase::Loaded);
        assert!(pending(second.may_commit(seen)).await);
        first.set(Phase::Done);
        assert!(second.may_commit(seen).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_attempt_before_rolls_the_next_back_until_it_commits() {
        let (first, first_rx) = Order::after(None, false);
        let (second, _) = Order::after(Some(first_rx), false);
        first.loaded();
        let seen = second.may_start().await;
        first.set(Phase::Troubled);
        assert!(second.may_commit(seen).await.is_err());
        // Its next attempt waits for the batch before to commit, however
        // often that one reaches its locks again.
        first.loaded();
        assert!(pending(second.may_start()).await);
        first.set(Phase::Done);
        let seen = second.may_start().await;
        assert_eq!(seen, Phase::Done);
        assert!(second.may_commit(seen).await.is_ok());
    }

    #[tokio::test]
    async fn a_serial_batch_waits_for_the_one_before_to_commit() {
        let (first, first_rx) = Order::after(None, false);
        let (second, _) = Order::after(Some(first_rx), true);
        first.loaded();
        assert!(pending(second.may_start()).await);
        first.set(Phase::Done);
        assert_eq!(second.may_start().await, Phase::Done);
    }

    #[tokio::test]
    async fn stopping_before_ends_the_wait() {
        let (first, first_rx) = Order::after(None, false);
        let (second, _) = Order::after(Some(first_rx), false);
        first.loaded();
        let seen = second.may_start().await;
        first.set(Phase::Stopped);
        assert!(second.may_commit(seen).await.is_err());
    }
}
