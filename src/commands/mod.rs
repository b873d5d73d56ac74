//! The command line: one file per subcommand, each declaring its own flags,
//! calling one function of the library and printing its report. No SQL and
//! no rdkafka here. This file: the command tree, dispatch, and the helpers
//! every command shares (runtime, report line, shutdown signal).
//!
//! Every flag has an environment variable where the contract names one;
//! the Kafka, database and topic flags are declared once and flattened.

mod dlq;
mod evaluate;
mod export;
mod read;
mod reprocess;
mod rules;
mod run;
mod send;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{DatabaseArgs, RunConfig};

/// Turns therapy encounter events into billable claim lines.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: consume encounter events, persist, publish claim lines.
    Run(Box<RunConfig>),
    /// Run the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Evaluate encounter events (JSON lines) from PATH or stdin (`-`) and
    /// print claim lines as JSON lines; no broker, no database.
    Evaluate(evaluate::EvaluateArgs),
    /// CMS rule tables: `claimline rules import FILE...`, `claimline rules list`.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Send JSON lines from PATH (or `-`) to a topic, keyed by encounter id,
    /// each checked first as the service would (bad ones listed, nothing sent).
    Send(send::SendArgs),
    /// Print a topic's messages from the beginning, one per line.
    Read(read::ReadArgs),
    /// Re-evaluate stored encounters of a date range under the rules in
    /// force now; changed lines are voided and reissued (resumable).
    Reprocess(Box<reprocess::ReprocessArgs>),
    /// Dead letters: `claimline dlq replay` sends them back to the input topic.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// The billable lines of a date-of-service range (or the review queue)
    /// as CSV, grouped by claim key.
    Export(Box<export::ExportArgs>),
    /// The read-only web view for revenue-cycle teams: held lines, KX watch
    /// list, daily totals, CSV (signed in; DATABASE_URL of its read role).
    Web(Box<web::WebArgs>),
}

/// Runs the parsed command line.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(cfg) => run::run(*cfg),
        Command::Migrate(db) => run::migrate(db),
        Command::Evaluate(args) => evaluate::evaluate(args),
        Command::Rules { command } => rules::rules(command),
        Command::Send(args) => send::send(args),
        Command::Read(args) => read::read(args),
        Command::Reprocess(args) => reprocess::reprocess(*args),
        Command::Dlq { command } => dlq::dlq(command),
        Command::Export(args) => export::export(*args),
        Command::Web(args) => web::web(*args),
    }
}

/// A tool's outcome, one line on stderr.
fn report(command: &str, result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(done) => {
            eprintln!("claimline {command}: {done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claimline {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
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
