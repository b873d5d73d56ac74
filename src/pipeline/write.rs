//! A batch's write: planned and written in one transaction, retried until
//! it holds, split around a message Postgres refuses, in its place in the
//! order of batches ([`super::order`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::batch::{decode_stored, Pipeline, WrittenBatch};
use super::order::{AfterTroubled, Order, Phase};
use super::plan::{self, Item, Message, Plan, Rejection};
use super::retry::{Step, Stopped};
use crate::domain::ledger::Outcome;
use crate::domain::ClaimLine;
use crate::store::{self, OutboxEntry};

/// What one committed transaction produced.
struct Written {
    outbox: Vec<OutboxEntry>,
    outcomes: Vec<(Outcome, u64)>,
    /// One verdict per message of the part written, in order.
    verdicts: Vec<plan::Verdict>,
}

impl Pipeline {
    /// The decoded batch written (retried until it holds), after the batch
    /// before it in `order`.
    pub(super) async fn write(
        self: Arc<Self>,
        mut messages: Vec<Message>,
        order: Order,
    ) -> Result<WrittenBatch, Stopped> {
        let write_started = Instant::now();
        let written = self.write_isolating(&mut messages, &order).await;
        order.set(match written {
            Ok(_) => Phase::Done,
            Err(Stopped) => Phase::Stopped,
        });
        let (outbox, outcomes) = written?;
        self.metrics
            .batch_written(write_started.elapsed().as_secs_f64());
        for (outcome, n) in outcomes {
            self.metrics.events(outcome.as_str(), n);
        }
        Ok(WrittenBatch { messages, outbox })
    }

    /// Writes the batch; transient errors are retried, and when Postgres
    /// refuses the batch's content the batch is split in halves, in order,
    /// until the message that causes it is alone: it becomes a dead letter
    /// and the rest is written.
    async fn write_isolating(
        &self,
        messages: &mut [Message],
        order: &Order,
    ) -> Result<(Vec<OutboxEntry>, Vec<(Outcome, u64)>), Stopped> {
        let mut outbox = Vec::new();
        let mut outcomes: BTreeMap<&'static str, (Outcome, u64)> = BTreeMap::new();
        let mut pending = std::collections::VecDeque::new();
        pending.push_back(0..messages.len());
        while let Some(range) = pending.pop_front() {
            let written = {
                let part = &messages[range.clone()];
                self.retry
                    .run(Step::WriteBatch, || {
                        Box::pin(async move {
                            let attempt = self.write_batch(part, order).await;
                            if attempt.is_err() {
                                // The batch after this one rolls back and
                                // waits for it.
                                order.set(Phase::Troubled);
                            }
                            match attempt {
                                Ok(done) => Ok(Ok(done)),
                                Err(e) => match store::refused_by_content(&e) {
                                    Some(sqlstate) => Ok(Err(sqlstate)),
                                    None => Err(e),
                                },
                            }
                        })
                    })
                    .await?
            };
            match written {
                Ok(done) => {
                    outbox.extend(done.outbox);
                    for (outcome, n) in done.outcomes {
                        outcomes.entry(outcome.as_str()).or_insert((outcome, 0)).1 += n;
                    }
                    for (m, verdict) in messages[range.clone()].iter_mut().zip(done.verdicts) {
                        if let plan::Verdict::Conflict(why) = verdict {
                            m.item = Item::Bad(why);
                        }
                    }
                }
                Err(sqlstate) => {
                    let good: Vec<usize> = range
                        .clone()
                        .filter(|&i| matches!(messages[i].item, Item::Good(_)))
                        .collect();
                    tracing::warn!(
                        sqlstate = %sqlstate,
                        messages = range.len(),
                        "Postgres refused part of a batch; isolating the message"
                    );
                    match good.as_slice() {
                        [] => {
                            // Only dead letters, and Postgres refuses even
                            // those: they still go to the dead-letter topic.
                            tracing::error!(sqlstate = %sqlstate, "dead-letter rows refused; not recorded in Postgres");
                        }
                        [one] => {
                            messages[*one].item = Item::Bad(Rejection::Storage { sqlstate });
                            pending.push_front(range);
                        }
                        _ => {
                            let mid = good[good.len() / 2];
                            pending.push_front(mid..range.end);
                            pending.push_front(range.start..mid);
                        }
                    }
                }
            }
        }
        Ok((outbox, outcomes.into_values().collect()))
    }

    /// One transaction for the whole batch: lock and load its encounters,
    /// plan, write; commit once the batch before has committed.
    async fn write_batch(&self, messages: &[Message], order: &Order) -> anyhow::Result<Written> {
        let Some(seen) = order.may_start().await else {
            return Err(AfterTroubled.into());
        };
        let keys = plan::keys(messages);
        let (mut tx, mut ledger) = self.db.begin_batch(&keys, decode_stored).await?;
        order.loaded();
        // Unpublished lines of these encounters (and of the others on their
        // days, whose lines a later visit may reissue) go out before this
        // batch's voids and replacements (contract section 2).
        let mut outbox = tx
            .claim_outbox(&self.owner, &self.in_flight.snapshot())
            .await?;
        // Tables imported since the last batch apply from this one on, so
        // no instance reissues a day under older rules than another used.
        self.rules
            .refresh_to(tx.rules_fingerprint(), &self.db, &self.metrics)
            .await?;
        let rules = self.rules.get();
        let Plan {
            write: mut w,
            outcomes,
            verdicts,
        } = tokio::task::block_in_place(|| plan::plan(messages, &mut ledger, &rules, &self.topics));
        tx.write(&mut w, &self.owner).await?;
        outbox.append(&mut w.outbox);
        // In flight before it is committed: a later batch that finds this
        // one's outbox row (once committed) leaves it to this one.
        self.in_flight.add(&outbox);
        let committed = async {
            order.may_commit(&seen).await?;
            tx.commit_written().await
        };
        if let Err(e) = committed.await {
            let ids: Vec<i64> = outbox.iter().map(|e| e.id).collect();
            self.in_flight.remove(&ids);
            return Err(e);
        }
        // Count billing metrics only once the transaction holds.
        self.count_billing(&w.new_lines);
        Ok(Written {
            outbox,
            outcomes,
            verdicts,
        })
    }

    /// One metric update per label set and batch.
    fn count_billing(&self, lines: &[ClaimLine]) {
        let mut units: BTreeMap<&str, u64> = BTreeMap::new();
        let mut flags: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for l in lines {
            // A code outside the catalogue is `other`: a sender must not be
            // able to grow a series per invented code.
            let code = match crate::domain::Rules::builtin().catalogue.get_code(&l.code) {
                Some(_) => l.code.as_str(),
                None => "other",
            };
            *units.entry(code).or_default() += u64::from(l.units);
            for f in &l.flags {
                *flags
                    .entry((f.code.as_str(), f.severity.as_str()))
                    .or_default() += 1;
            }
        }
        for (code, n) in units {
            self.metrics.units_billed(code, n);
        }
        for ((code, severity), n) in flags {
            self.metrics.flags_raised(code, severity, n);
        }
    }
}
