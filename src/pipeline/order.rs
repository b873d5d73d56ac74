//! Batches written at once, in order where they meet. A batch that shares
//! an encounter, a patient-year or an event id with a batch still being
//! written before it is ordered after that one: it may start once that one
//! holds its locks (so it waits for it in Postgres, and then sees its
//! lines), and may commit only once that one has committed. If that one
//! fails an attempt, the later one rolls back and waits until it has
//! committed: the two never retry against each other's locks, and neither
//! commits ahead of the other. A batch that shares nothing with those
//! before it is written independently (as another instance's would be).
//!
//! A batch that repeats an event id of one before waits for it to commit
//! before it starts: the two would otherwise insert one key each and could
//! wait for each other, one in Postgres, one here.

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

/// What a batch touches, hashed: two batches that share a value are
/// ordered (a hash collision only orders more).
#[derive(Debug, Default)]
pub(super) struct Touches {
    pub keys: std::collections::HashSet<u64>,
    pub events: std::collections::HashSet<u64>,
}

impl Touches {
    /// Whether a batch that touches `self` must be ordered after one that
    /// touches `before`, and whether it must not overlap it at all.
    fn against(&self, before: &Touches) -> Option<bool> {
        let serial = !self.events.is_disjoint(&before.events);
        (serial || !self.keys.is_disjoint(&before.keys)).then_some(serial)
    }
}

/// A batch being written, as the batches after it see it.
pub(super) struct Ahead {
    pub phase: watch::Receiver<Phase>,
    pub touches: Touches,
}

impl Ahead {
    /// Written (or given up): no later batch waits for it.
    pub(super) fn finished(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Done | Phase::Stopped)
            || self.phase.has_changed().is_err()
    }
}

/// One batch's place in the order: the batches before it that it must
/// follow (each with whether it must not overlap it at all), and its own
/// phase.
pub(super) struct Order {
    before: Vec<(watch::Receiver<Phase>, bool)>,
    own: watch::Sender<Phase>,
}

/// What [`Order::may_start`] saw of each batch before.
pub(super) struct Seen(Vec<Phase>);

impl Order {
    /// A batch that touches `touches`, after the batches `ahead` still
    /// being written. Its [`Ahead`], for the batches after it.
    pub(super) fn after<'a>(
        ahead: impl IntoIterator<Item = &'a Ahead>,
        touches: Touches,
    ) -> (Order, Ahead) {
        let before = ahead
            .into_iter()
            .filter_map(|a| Some((a.phase.clone(), touches.against(&a.touches)?)))
            .collect();
        let (own, phase) = watch::channel(Phase::Loading);
        (Order { before, own }, Ahead { phase, touches })
    }

    /// Waits until this batch's attempt may start: each batch it follows
    /// holds its locks (or has committed, when this one must not overlap
    /// it or it was troubled). `None` when one is stopped.
    pub(super) async fn may_start(&self) -> Option<Seen> {
        let mut seen = Vec::with_capacity(self.before.len());
        for (before, serial) in &self.before {
            let mut before = before.clone();
            let phase = before
                .wait_for(|p| match p {
                    Phase::Loaded => !serial,
                    Phase::Done | Phase::Stopped => true,
                    Phase::Loading | Phase::Troubled => false,
                })
                .await
                .map(|p| *p)
                // Its task ended: nothing to wait for.
                .unwrap_or(Phase::Done);
            if phase == Phase::Stopped {
                return None;
            }
            seen.push(phase);
        }
        Some(Seen(seen))
    }

    /// Waits until this batch may commit: each batch it follows has
    /// committed. `Err` when one failed an attempt (or stopped) since
    /// [`Order::may_start`] saw it.
    pub(super) async fn may_commit(&self, seen: &Seen) -> Result<(), AfterTroubled> {
        for ((before, _), seen) in self.before.iter().zip(&seen.0) {
            if *seen == Phase::Done {
                continue;
            }
            let mut before = before.clone();
            let now = before
                .wait_for(|p| matches!(p, Phase::Done | Phase::Troubled | Phase::Stopped))
                .await
                .map(|p| *p)
                .unwrap_or(Phase::Done);
            if now != Phase::Done {
                return Err(AfterTroubled);
            }
        }
        Ok(())
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

    fn touching(keys: &[u64], events: &[u64]) -> Touches {
        Touches {
            keys: keys.iter().copied().collect(),
            events: events.iter().copied().collect(),
        }
    }

    #[tokio::test]
    async fn a_batch_that_shares_a_key_starts_once_the_one_before_holds_its_locks_and_commits_after_it(
    ) {
        let (first, a) = Order::after([], touching(&[1, 2], &[10]));
        let (second, _) = Order::after([&a], touching(&[2, 3], &[11]));
        assert!(first.may_start().await.is_some());
        assert!(pending(second.may_start()).await);
        first.loaded();
        let seen = second.may_start().await.unwrap();
        assert_eq!(seen.0, [Phase::Loaded]);
        assert!(pending(second.may_commit(&seen)).await);
        first.set(Phase::Done);
        assert!(second.may_commit(&seen).await.is_ok());
    }

    #[tokio::test]
    async fn a_batch_that_shares_nothing_is_written_independently() {
        let (_first, a) = Order::after([], touching(&[1, 2], &[10]));
        let (second, _) = Order::after([&a], touching(&[3], &[11]));
        let seen = second.may_start().await.unwrap();
        assert!(second.may_commit(&seen).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_attempt_before_rolls_the_next_back_until_it_commits() {
        let (first, a) = Order::after([], touching(&[1], &[10]));
        let (second, _) = Order::after([&a], touching(&[1], &[11]));
        first.loaded();
        let seen = second.may_start().await.unwrap();
        first.set(Phase::Troubled);
        assert!(second.may_commit(&seen).await.is_err());
        // Its next attempt waits for the batch before to commit, however
        // often that one reaches its locks again.
        first.loaded();
        assert!(pending(second.may_start()).await);
        first.set(Phase::Done);
        let seen = second.may_start().await.unwrap();
        assert_eq!(seen.0, [Phase::Done]);
        assert!(second.may_commit(&seen).await.is_ok());
    }

    #[tokio::test]
    async fn a_batch_that_repeats_an_event_id_waits_for_the_one_before_to_commit() {
        let (first, a) = Order::after([], touching(&[1], &[10]));
        let (second, _) = Order::after([&a], touching(&[2], &[10]));
        first.loaded();
        assert!(pending(second.may_start()).await);
        first.set(Phase::Done);
        assert_eq!(second.may_start().await.unwrap().0, [Phase::Done]);
    }

    #[tokio::test]
    async fn a_batch_follows_every_batch_ahead_it_meets() {
        let (first, a) = Order::after([], touching(&[1], &[10]));
        let (second, b) = Order::after([&a], touching(&[2], &[11]));
        let (third, _) = Order::after([&a, &b], touching(&[1, 2], &[12]));
        first.loaded();
        second.loaded();
        let seen = third.may_start().await.unwrap();
        first.set(Phase::Done);
        assert!(pending(third.may_commit(&seen)).await);
        second.set(Phase::Done);
        assert!(third.may_commit(&seen).await.is_ok());
    }

    #[tokio::test]
    async fn stopping_before_ends_the_wait() {
        let (first, a) = Order::after([], touching(&[1], &[10]));
        let (second, _) = Order::after([&a], touching(&[1], &[11]));
        first.loaded();
        let seen = second.may_start().await.unwrap();
        first.set(Phase::Stopped);
        assert!(second.may_commit(&seen).await.is_err());
        assert!(second.may_start().await.is_none());
    }
}
