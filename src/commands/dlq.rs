//! `claimline dlq replay` ([`crate::pipeline::replay`]).

use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::{report, runtime};
use crate::config::{DatabaseArgs, TopicArgs};
use crate::kafka::KafkaArgs;
use crate::pipeline::replay::{replay, ReplayOptions};

#[derive(Subcommand)]
pub(super) enum DlqCommand {
    /// Send dead letters back to the input topic, each at most once.
    Replay(Box<ReplayArgs>),
}

#[derive(Args)]
pub(super) struct ReplayArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Reads --dlq-topic, sends to --input-topic.
    #[command(flatten)]
    topics: TopicArgs,
    /// Only dead letters with this error.reason (e.g. schema_violation).
    #[arg(long)]
    reason: Option<String>,
    /// Only dead letters written at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Print what would be replayed; send and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop reading the dead-letter topic after this many seconds without
    /// a message (at least 15 s for the first one).
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
}

pub(super) fn dlq(command: DlqCommand) -> ExitCode {
    let DlqCommand::Replay(args) = command;
    let options = ReplayOptions {
        database_url: args.database.database_url,
        kafka: args.kafka,
        dlq_topic: args.topics.dlq_topic,
        input_topic: args.topics.input_topic,
        reason: args.reason,
        since: args.since,
        dry_run: args.dry_run,
        idle: Duration::from_secs(args.idle_secs),
    };
    report(
        "dlq replay",
        runtime().block_on(async move {
            let s = replay(&options).await?;
            let verb = if options.dry_run {
                "would replay"
            } else {
                "replayed"
            };
            Ok(format!(
                "{verb} {}, {} already replayed before; matched by reason: {:?}",
                s.replayed, s.already, s.matched
            ))
        }),
    )
}
