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

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use clap::Args;
use sqlx::{PgPool, Row};

use crate::codec::JsonWriter;
use crate::config::DatabaseArgs;
use crate::domain::{ClaimLine, Code, RuleBook, Rules};
use crate::kafka::{KafkaArgs, Outgoing, Producer};
use crate::pipeline::plan::{outbox_entry, Topics};
use crate::store::{self, BatchWrite, Keys, Owner};

#[derive(Args)]
pub struct ReprocessArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// First date of service to re-evaluate (YYYY-MM-DD).
    #[arg(long)]
    pub since: NaiveDate,
    /// Last date of service to re-evaluate (default: --since).
    #[arg(long)]
    pub until: Option<NaiveDate>,
    /// Only encounters with a line of this code in force.
    #[arg(long, value_parser = |s: &str| Code::parse(s).map_err(str::to_owned))]
    pub code: Option<Code>,
    /// Print what would change (lines, units, expected payment before and
    /// after) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Topic of validated claim lines and their voids.
    #[arg(long, env = "CLAIMLINE_OUTPUT_TOPIC", default_value = "claim-lines")]
    pub output_topic: String,
    /// Topic of claim lines that need review.
    #[arg(
        long,
        env = "CLAIMLINE_REVIEW_TOPIC",
        default_value = "claim-lines.review"
    )]
    pub review_topic: String,
    /// Encounters per transaction.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,
    /// Stop after this many pages (the run stays open: the same command
    /// resumes it). For staged runs and tests.
    #[arg(long, hide = true)]
    pub max_pages: Option<u32>,
}

/// What a run found (or, with --dry-run, would change).
#[derive(Debug, Default)]
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

    /// The diff summary, one line per code, amounts in dollars.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{} encounter(s) re-evaluated, {} changed: {} line(s) voided, {} issued\n",
            self.encounters, self.changed, self.lines_voided, self.lines_issued
        );
        if !self.by_code.is_empty() {
            out.push_str("code\tunits_before\tunits_after\tpayment_before\tpayment_after\n");
        }
        let dollars = |c: i64| {
            format!(
                "{}{}.{:02}",
                if c < 0 { "-" } else { "" },
                c.abs() / 100,
                c.abs() % 100
            )
        };
        for (code, (ub, ua, cb, ca)) in &self.by_code {
            out.push_str(&format!(
                "{code}\t{ub}\t{ua}\t{}\t{}\n",
                dollars(*cb),
                dollars(*ca)
            ));
        }
        out
    }
}

pub async fn reprocess(args: &ReprocessArgs) -> anyhow::Result<Summary> {
    let until = args.until.unwrap_or(args.since);
    anyhow::ensure!(until >= args.since, "--until is before --since");
    let pool = store::connect(&args.database.database_url, 2).await?;
    let missing = store::missing_migrations(&pool).await?;
    anyhow::ensure!(
        missing.is_empty(),
        "the database schema is not current (migrations {missing:?}): run `claimline migrate` first"
    );
    let (count, newest) = store::rules::fingerprint(&pool).await?;
    let rules_fingerprint = format!("{count}:{newest}");
    let book = RuleBook::new(Rules::builtin(), &store::rules::load(&pool).await?);
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
    let mut summary = Summary::default();
    let mut after = String::new();
    if !args.dry_run {
        let (id, cursor, resumed) = open_run(
            &pool,
            args.since,
            until,
            code.as_deref(),
            &rules_fingerprint,
        )
        .await?;
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
    let mut pages = 0;
    loop {
        if args.max_pages.is_some_and(|m| pages >= m) {
            return Ok(summary);
        }
        let page = next_page(
            &pool,
            args.since,
            until,
            code.as_deref(),
            &after,
            args.page_size,
        )
        .await?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        let mut attempt = 0u32;
        let outbox = loop {
            match reprocess_page(
                &pool,
                &page,
                &book,
                &voided_by,
                &topics,
                &owner,
                summary.run_id,
                &mut summary,
                args.dry_run,
            )
            .await
            {
                Ok(o) => break o,
                // Another instance is publishing these encounters' older
                // lines: wait for it rather than overtake them.
                Err(e) if e.downcast_ref::<store::OwnedElsewhere>().is_some() => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                // A deadlock with the service, a lost connection: the page
                // rolled back; try it again a few times.
                Err(e) if store::refused_by_content(&e).is_none() && attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(
                        error = format!("{e:#}"),
                        attempt,
                        "reprocess page failed; retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(producer) = &producer {
            publish(&pool, producer, &owner, &outbox).await?;
        }
        pages += 1;
    }
    if let Some(id) = summary.run_id {
        sqlx::query("UPDATE reprocess_runs SET finished_at = now() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .context("Failed to close the run")?;
    }
    summary.finished = true;
    Ok(summary)
}

/// The open run for the same range, code and rule tables (resumed), or a
/// new one: after another import, a run starts over, so no encounter keeps
/// the rules of before.
async fn open_run(
    pool: &PgPool,
    since: NaiveDate,
    until: NaiveDate,
    code: Option<&str>,
    rules: &str,
) -> anyhow::Result<(i64, String, bool)> {
    let open = sqlx::query(
        "SELECT id, coalesce(last_encounter, '') FROM reprocess_runs
         WHERE finished_at IS NULL AND since = $1 AND until = $2 AND code IS NOT DISTINCT FROM $3
           AND rules_fingerprint = $4
         ORDER BY id DESC LIMIT 1",
    )
    .bind(since)
    .bind(until)
    .bind(code)
    .bind(rules)
    .fetch_optional(pool)
    .await
    .context("Failed to read reprocess_runs")?;
    if let Some(r) = open {
        return Ok((r.get(0), r.get(1), true));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reprocess_runs (since, until, code, rules_fingerprint) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(since)
    .bind(until)
    .bind(code)
    .bind(rules)
    .fetch_one(pool)
    .await
    .context("Failed to start a reprocess run")?;
    Ok((id, String::new(), false))
}

/// (encounter, patient, NPI, payer, date of service) of the next encounters
/// with lines in force in the range, after `after`, in id order.
type PageRow = (String, String, String, String, NaiveDate);

async fn next_page(
    pool: &PgPool,
    since: NaiveDate,
    until: NaiveDate,
    code: Option<&str>,
    after: &str,
    size: u32,
) -> anyhow::Result<Vec<PageRow>> {
    let rows = sqlx::query(
        // claim_lines_date_in_force serves the date range; the page is the
        // range's next encounters in id order.
        "SELECT DISTINCT ON (c.encounter_id) c.encounter_id, c.patient_id, c.provider_npi, c.payer_id,
                c.date_of_service
         FROM claim_lines c
         WHERE c.status <> 'void' AND c.date_of_service BETWEEN $1 AND $2 AND c.encounter_id > $3
           AND ($4::text IS NULL OR EXISTS (
                SELECT 1 FROM claim_lines x
                WHERE x.encounter_id = c.encounter_id AND x.status <> 'void' AND x.code = $4))
         ORDER BY c.encounter_id LIMIT $5",
    )
    .bind(since)
    .bind(until)
    .bind(after)
    .bind(code)
    .bind(i64::from(size))
    .fetch_all(pool)
    .await
    .context("Failed to list encounters to reprocess")?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect())
}

/// One page in one transaction: lock and load like a batch, re-evaluate
/// each encounter's day, write the reissues and the run's progress.
#[allow(clippy::too_many_arguments)]
async fn reprocess_page(
    pool: &PgPool,
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
    let (mut tx, mut ledger) = store::begin_batch(pool, &keys).await?;
    store::load_payloads(&mut tx, &encounters, &mut ledger).await?;
    let mut all: Vec<&str> = ledger.active.keys().map(|k| &**k).collect();
    all.sort_unstable();
    let mut outbox = if dry_run {
        Vec::new()
    } else {
        store::claim_for_encounters(&mut tx, &all, owner, &[]).await?
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
        tx.rollback().await.context("Failed to roll back")?;
        return Ok(Vec::new());
    }
    if let (Some(id), Some(last)) = (run_id, page.last()) {
        // The page's last in the database's order: where the next begins.
        sqlx::query(
            "UPDATE reprocess_runs SET last_encounter = $2, encounters = encounters + $3,
                    changed = changed + $4 WHERE id = $1",
        )
        .bind(id)
        .bind(&last.0)
        .bind(encounters.len() as i32)
        .bind(i32::try_from(summary.changed - changed_before).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await
        .context("Failed to record the run's progress")?;
    }
    store::commit_batch(tx, &mut w, owner).await?;
    outbox.append(&mut w.outbox);
    Ok(outbox)
}

/// Publishes a page's outbox in order and marks it published, renewing
/// the rows' lease meanwhile: a lapsed lease would let an instance's sweep
/// send them too, and a slow copy of a line could then land after its void.
async fn publish(
    pool: &PgPool,
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
            _ = renew.tick() => store::renew(pool, owner, &ids).await?,
        }
    }
    store::mark_published(pool, &ids).await
}
