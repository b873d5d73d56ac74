use std::io::{self, BufReader};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use claimline::domain::Rules;

/// Turns therapy encounter events into billable claim lines.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate encounter events (JSON lines) from PATH or stdin (`-`) and
    /// print claim lines as JSON lines; no broker, no database.
    Evaluate {
        #[arg(default_value = "-")]
        path: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Evaluate { path } => evaluate(&path),
    }
}

fn evaluate(path: &str) -> ExitCode {
    let rules = Rules::builtin();
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    let result = if path == "-" {
        claimline::offline::evaluate_lines(io::stdin().lock(), stdout, stderr, rules)
    } else {
        match std::fs::File::open(path) {
            Ok(f) => claimline::offline::evaluate_lines(BufReader::new(f), stdout, stderr, rules),
            Err(e) => {
                eprintln!("claimline evaluate: cannot open {path}: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match result {
        Ok(summary) if summary.bad == 0 => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!(
                "claimline evaluate: {} of {} events were bad",
                summary.bad, summary.events
            );
            ExitCode::FAILURE
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("claimline evaluate: {e}");
            ExitCode::from(2)
        }
    }
}
