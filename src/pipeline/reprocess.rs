//! `claimline reprocess`: re-evaluates stored encounters under the rules in
//! force now (after a rules fix or a CMS import) and, where a line changes,
//! voids it and publishes the new one with a new line number (contract
//! section 2), the same way a later visit of the day does.
//!
//! It works in pages of encounters, each one transaction that takes the
//! same locks as the service (encounter, day, patient-year), so it is safe
//! while the service runs. A run records how far it got after each page:
//! the same command started again resumes after the last encounter done.
//! Lines are published through the outbox: a crash after a page's commit
//! leaves its rows to the service's sweep once their lease lapses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};

use super::batch::decode_stored;
use super::plan::{outbox_entry, Topics};
use super::retry::{GaveUp, Retry, Step};
use crate::codec::JsonWriter;
use crate::domain::{ClaimLine, Code, RuleBook, Rules};
use crate::kafka::{KafkaArgs, Outgoing, Producer};
use crate::store::reprocess::{self as runs, PageRow, RunRange};
use crate::store::{self, BatchWrite, DatabaseUrl, Db, Keys, Owner};

/// What to re-evaluate, and where its lines go.
#[derive(Debug, Clone)]
pub struct ReprocessOptions {
    /// The built-in rules, or those the payer policy file makes of them
    /// (the service's: the same file gives the same lines).
    pub base: &'static Rules,
    pub database_url: DatabaseUrl,
    pub kafka: KafkaArgs,
    /// First and last date of service to re-evaluate.
    pub since: NaiveDate,
    pub until: NaiveDate,
    /// Only encounters with a line of this code in force.
    pub code: Option<Code>,
    /// Count what would change and write nothing.
    pub dry_run: bool,
    /// Topic of validated claim lines and their voids, and of held lines.
    pub output_topic: String,
    pub review_topic: String,
    /// Encounters per transaction.
    pub page_size: u32,
    /// Stop after this many pages (the run stays open).
    pub max_pages: Option<u32>,
    /// The billing NPIs' localities, as the service has them.
    pub localities: crate::domain::locality::ProviderLocalities,
}

/// What a run found (or, with --dry-run, would change).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub run_id: Option<i64>,
    pub resumed: bool,
    pub finished: bool,
    pub encounters: u64,
    /// Encounters with at least one line reissued.
    pub changed: u64,
    pub lines_voided: u64,
    pub lines_issued: u64,
    /// Per code: (units before, units after, cents before, cents after).
    pub by_code: BTreeMap<String, (i64, i64, i64, i64)>,
    /// Encounters whose lines were reissued.
    reissued: std::collections::HashSet<String>,
}

impl Summary {
    fn count(&mut self, voided: &[ClaimLine], issued: &[ClaimLine]) {
        self.lines_voided += voided.len() as u64;
        self.lines_issued += issued.len() as u64;
        for (lines, after) in [(voided, false), (issued, true)] {
            for l in lines {
                let e = self.by_code.entry(l.code.to_string()).or_default();
                let cents = l.expected_payment_cents.unwrap_or(0);
                if after {
                    e.1 += i64::from(l.units);
                    e.3 += cents;
                } else {
                    e.0 += i64::from(l.units);
                    e.2 += cents;
                }
            }
        }
    }
}

/// How long a page may keep failing (each try bounded by the store's
/// deadline) before the run gives up; it resumes where it stopped.
const PAGE_RETRY_BOUND: Duration = Duration::from_secs(120);

pub async fn reprocess(args: &ReprocessOptions) -> anyhow::Result<Summary> {
    let until = args.until;
    anyhow::ensure!(until >= args.since, "--until is before --since");
    let db = Db::connect_current(&args.database_url, 2).await?;
    let (count, newest) = store::rules::fingerprint(&db).await?;
    // A run resumes only under the same tables and the same payer policy.
    let rules_fingerprint = match args.base.version.split_once("+policy.") {
        Some((_, policy)) => format!("{count}:{newest}+policy.{policy}"),
        None => format!("{count}:{newest}"),
    };
    let book = crate::cms::shipped::over(args.base, &store::rules::load(&db).await?)
        .located(args.localities.clone());
    let producer = if args.dry_run {
        None
    } else {
        Some(Producer::create(&args.kafka)?)
    };
    let topics = Topics {
        output: args.output_topic.as_str().into(),
        review: args.review_topic.as_str().into(),
    };
    let code = args.code.map(|c| c.to_string());
    let range = RunRange {
        since: args.since,
        until,
        code: code.as_deref(),
        rules: &rules_fingerprint,
    };
    let mut summary = Summary::default();
    let mut after: runs::Cursor = (args.since, String::new());
    if !args.dry_run {
        let (id, cursor, resumed) = runs::open_run(&db, range).await?;
        summary.run_id = Some(id);
        summary.resumed = resumed;
        after = cursor;
    }
    let voided_by: Arc<str> = match summary.run_id {
        Some(id) => format!("reprocess-{id}").into(),
        None => "reprocess-dry-run".into(),
    };
    let owner = Owner {
        id: format!("{voided_by}-{}", std::process::id()).into(),
        lease: Duration::from_secs(30),
    };
    // Its outbox rows are marked as held by an owner lock (the service's
    // sweep takes them over once that lock is free): hold it while running.
    let _alive = db.hold_owner_lock(&owner).await?;
    let retry = Retry::bounded(PAGE_RETRY_BOUND);
    let mut pages = 0;
    loop {
        if args.max_pages.is_some_and(|m| pages >= m) {
            return Ok(summary);
        }
        let page = runs::next_page(&db, range, &after, args.page_size).await?;
        let Some(last) = page.last() else { break };
        after = (last.4, last.0.clone());
        // Each try starts from the summary as it was: a page that rolled
        // back counts nothing.
        let base = summary.clone();
        let run_id = summary.run_id;
        let (db, book, voided_by, topics, owner, page) =
            (&db, &book, &voided_by, &topics, &owner, &page);
        let tried = retry
            .attempt(Step::ReprocessPage, || {
                let mut s = base.clone();
                Box::pin(async move {
                    let page = reprocess_page(
                        db,
                        page,
                        book,
                        voided_by,
                        topics,
                        owner,
                        run_id,
                        &mut s,
                        args.dry_run,
                    )
                    .await;
                    match page {
                        Ok(o) => Ok(Ok((o, s))),
                        // The content, not a transient fault: no retry.
                        Err(e) if store::refused_by_content(&e).is_some() => Ok(Err(e)),
                        // A deadlock with the service, a lost connection, a
                        // missed deadline, another instance still
                        // publishing these encounters' older lines: the
                        // page rolled back; it is tried again.
                        Err(e) => Err(e),
                    }
                })
            })
            .await;
        let outbox = match tried {
            Ok(Ok((outbox, s))) => {
                summary = s;
                outbox
            }
            Ok(Err(e)) | Err(GaveUp::Failing(e)) => return Err(e),
            Err(GaveUp::Stopped) => anyhow::bail!("reprocess stopped"),
        };
        if let Some(producer) = &producer {
            publish(db, producer, owner, &outbox).await?;
        }
        pages += 1;
    }
    if let Some(id) = summary.run_id {
        runs::finish_run(&db, id).await?;
    }
    summary.finished = true;
    Ok(summary)
}

/// One page in one transaction: lock and load like a batch, re-evaluate
/// each encounter's day, write the reissues and the run's progress.
#[allow(clippy::too_many_arguments)]
async fn reprocess_page(
    db: &Db,
    page: &[PageRow],
    book: &RuleBook,
    voided_by: &Arc<str>,
    topics: &Topics,
    owner: &Owner,
    run_id: Option<i64>,
    summary: &mut Summary,
    dry_run: bool,
) -> anyhow::Result<Vec<store::OutboxEntry>> {
    let mut encounters: Vec<&str> = page.iter().map(|p| p.0.as_str()).collect();
    encounters.sort_unstable();
    let mut patient_years: Vec<(&str, i32)> =
        page.iter().map(|p| (p.1.as_str(), p.4.year())).collect();
    patient_years.sort_unstable();
    patient_years.dedup();
    let keys = Keys {
        encounters: encounters.clone(),
        events: Vec::new(),
        patient_years,
        days: page
            .iter()
            .map(|p| (p.1.as_str(), p.2.as_str(), p.3.as_str(), p.4, p.0.as_str()))
            .collect(),
    };
    let (mut tx, mut ledger) = db.begin_batch(&keys, decode_stored).await?;
    tx.load_payloads(&encounters, &mut ledger).await?;
    let mut outbox = if dry_run {
        Vec::new()
    } else {
        tx.claim_outbox(owner, &[]).await?
    };
    let mut w = BatchWrite::default();
    let mut json = JsonWriter::default();
    let changed_before = summary.changed;
    for id in &encounters {
        summary.encounters += 1;
        if !ledger.encounters.contains_key(*id) {
            // Its payload predates their storage: nothing to re-evaluate.
            continue;
        }
        let d = ledger.reevaluate(id, voided_by, book);
        if d.voided.is_empty() && d.lines.is_empty() {
            continue;
        }
        // A dry run writes nothing, so a day's other encounter reissued here
        // would be found again on its own page: counted once.
        let fresh = |l: &&ClaimLine| !summary.reissued.contains(&*l.encounter_id);
        let voided: Vec<ClaimLine> = d.voided.iter().filter(fresh).cloned().collect();
        let issued: Vec<ClaimLine> = d.lines.iter().filter(fresh).cloned().collect();
        if !issued.is_empty() || !voided.is_empty() {
            summary.changed += 1;
            summary.count(&voided, &issued);
        }
        summary
            .reissued
            .extend(d.lines.iter().map(|l| l.encounter_id.to_string()));
        for line in d.voided.iter().chain(&d.lines) {
            w.outbox.push(outbox_entry(line, &mut json, topics));
        }
        w.voids
            .extend(d.voided.into_iter().map(|v| (v.claim_line_id, v.event_id)));
        w.new_lines.extend(d.lines);
    }
    if dry_run {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    if let (Some(id), Some(last)) = (run_id, page.last()) {
        // The page's last in the database's order: where the next begins.
        runs::record_progress(
            &mut tx,
            id,
            (last.4, &last.0),
            encounters.len(),
            summary.changed - changed_before,
        )
        .await?;
    }
    tx.commit(&mut w, owner).await?;
    outbox.append(&mut w.outbox);
    Ok(outbox)
}

/// Publishes a page's outbox in order and marks it published, renewing
/// the rows' lease meanwhile: a lapsed lease would let an instance's sweep
/// send them too, and a slow copy of a line could then land after its void.
async fn publish(
    db: &Db,
    producer: &Producer,
    owner: &Owner,
    outbox: &[store::OutboxEntry],
) -> anyhow::Result<()> {
    let mut ids: Vec<i64> = outbox.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let messages = outbox
        .iter()
        .map(|e| Outgoing {
            topic: &e.topic,
            key: Some(e.key.as_bytes()),
            payload: e.payload.as_bytes(),
            headers: Vec::new(),
        })
        .collect();
    let sending = producer.publish_all(messages);
    tokio::pin!(sending);
    let mut renew = tokio::time::interval(owner.lease / 3);
    renew.tick().await;
    loop {
        tokio::select! {
            sent = &mut sending => {
                sent?;
                break;
            }
            _ = renew.tick() => store::renew(db, owner, &ids).await?,
        }
    }
    store::mark_published(db, &ids).await
}
