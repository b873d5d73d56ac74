//! `claimline reprocess` ([`crate::pipeline::reprocess`]).

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Args;

use super::{report, runtime};
use crate::config::{DatabaseArgs, PolicyArgs, TopicArgs};
use crate::domain::Code;
use crate::kafka::KafkaArgs;
use crate::pipeline::reprocess::{ReprocessOptions, Summary};

#[derive(Args)]
pub(super) struct ReprocessArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Reissued lines go to --output-topic (validated, void) and
    /// --review-topic (held).
    #[command(flatten)]
    topics: TopicArgs,
    #[command(flatten)]
    localities: crate::config::LocalityArgs,
    /// The service's payer policy file: reprocess judges by the same rules.
    #[command(flatten)]
    policy: PolicyArgs,
    /// First date of service to re-evaluate (YYYY-MM-DD).
    #[arg(long)]
    since: NaiveDate,
    /// Last date of service to re-evaluate (default: --since).
    #[arg(long)]
    until: Option<NaiveDate>,
    /// Only encounters with a line of this code in force.
    #[arg(long, value_parser = |s: &str| Code::parse(s).map_err(str::to_owned))]
    code: Option<Code>,
    /// Print what would change (lines, units, expected payment before and
    /// after) and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Encounters per transaction.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    page_size: u32,
    /// Stop after this many pages (the run stays open: the same command
    /// resumes it). For staged runs and tests.
    #[arg(long, hide = true)]
    max_pages: Option<u32>,
}

pub(super) fn reprocess(args: ReprocessArgs) -> ExitCode {
    let base = match args.policy.rules() {
        Ok(base) => base,
        Err(e) => return report("reprocess", Err(e)),
    };
    let options = ReprocessOptions {
        base,
        database_url: args.database.database_url,
        kafka: args.kafka,
        since: args.since,
        until: args.until.unwrap_or(args.since),
        code: args.code,
        dry_run: args.dry_run,
        output_topic: args.topics.output_topic,
        review_topic: args.topics.review_topic,
        page_size: args.page_size,
        max_pages: args.max_pages,
        localities: args.localities.provider_localities,
    };
    report(
        "reprocess",
        runtime().block_on(async move {
            let s = crate::pipeline::reprocess::reprocess(&options).await?;
            print!("{}", diff(&s));
            Ok(match (options.dry_run, s.finished, s.run_id) {
                (true, _, _) => "dry run: nothing written".to_owned(),
                (false, true, Some(id)) => format!("run {id} finished"),
                (false, _, id) => format!(
                    "run {} stopped before the end; run the same command to resume",
                    id.unwrap_or(0)
                ),
            })
        }),
    )
}

/// The diff summary, one line per code, amounts in dollars.
fn diff(s: &Summary) -> String {
    let mut out = format!(
        "{} encounter(s) re-evaluated, {} changed: {} line(s) voided, {} issued\n",
        s.encounters, s.changed, s.lines_voided, s.lines_issued
    );
    if !s.by_code.is_empty() {
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
    for (code, (ub, ua, cb, ca)) in &s.by_code {
        out.push_str(&format!(
            "{code}\t{ub}\t{ua}\t{}\t{}\n",
            dollars(*cb),
            dollars(*ca)
        ));
    }
    out
}
