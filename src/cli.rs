//! The command line: `claimline run | migrate | evaluate | rules | send |
//! read | dlq`.
//! Every flag has an environment variable where the contract names one;
//! the Kafka and database flags are declared once and flattened where used.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, RunConfig};
use crate::kafka::KafkaArgs;
use crate::replay::ReplayArgs;
use crate::reprocess::ReprocessArgs;
use crate::rules_admin::ImportArgs;
use crate::tools::ReadFormat;

/// Turns therapy encounter events into billable claim lines.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service: consume encounter events, persist, publish claim lines.
    Run(Box<RunConfig>),
    /// Run the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Evaluate encounter events (JSON lines) from PATH or stdin (`-`) and
    /// print claim lines as JSON lines; no broker, no database.
    Evaluate {
        /// File of encounter events, one JSON object a line; `-` for stdin.
        #[arg(default_value = "-")]
        path: PathBuf,
        /// A directory of CMS files (PTP, MUE, PPRRVU, as `rules import`
        /// reads them) to judge each date of service by, instead of the
        /// built-in tables alone.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// CMS rule tables: `claimline rules import FILE...`, `claimline rules list`.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Send JSON lines from PATH (or `-`) to a topic, keyed by encounter id.
    Send {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic to send to.
        #[arg(long, default_value = "encounters")]
        topic: String,
        /// File of messages, one a line; `-` for stdin.
        #[arg(default_value = "-")]
        path: PathBuf,
    },
    /// Print a topic's messages from the beginning, one per line.
    Read {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic to read.
        #[arg(long, default_value = "claim-lines")]
        topic: String,
        /// Stop after this many messages.
        #[arg(long, default_value_t = usize::MAX)]
        max: usize,
        /// Stop after this many seconds without a message (at least 15 s
        /// for the first one).
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
        /// `full`: partition, offset, key, headers and value as one JSON
        /// object a message (a dead letter's reason is in its headers);
        /// `values`: the values alone.
        #[arg(long, value_enum, default_value = "full")]
        format: ReadFormat,
    },
    /// Re-evaluate stored encounters of a date range under the rules in
    /// force now; changed lines are voided and reissued (resumable).
    Reprocess(Box<ReprocessArgs>),
    /// Dead letters: `claimline dlq replay` sends them back to the input topic.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Load CMS files (NCCI PTP, MUE, PPRRVU) into Postgres as effective-dated
    /// rule tables, keeping the catalogue's codes; a file loaded before
    /// changes nothing.
    Import(Box<ImportArgs>),
    /// Show the loaded tables and the rules_version each date of service gets.
    List(DatabaseArgs),
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Send dead letters back to the input topic, each at most once.
    Replay(Box<ReplayArgs>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_explains_itself() {
        Cli::command().debug_assert();
        let mut undocumented = Vec::new();
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version")
                {
                    undocumented.push(format!("{} --{}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(
            undocumented.is_empty(),
            "flags without help: {undocumented:?}"
        );
    }
}
