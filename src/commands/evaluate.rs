//! `claimline evaluate PATH [--rules DIR] [--per-event]`: the input (a file
//! or stdin, `-`) replayed as the service would process it, and the claim
//! lines it would publish to stdout ([`crate::pipeline::offline`]); with
//! `--per-event`, each event judged alone. The rules are the default ones
//! (built-in data and the CMS tables shipped in `data/cms/`) with the CMS
//! files of DIR over them, and the payer policies of `--payer-policy FILE`
//! over the built-in ones. Exit status 1 when any event was bad (the
//! service would dead-letter it), 2 when the input or the rules could not
//! be read (a bad payer policy file included).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::pipeline::offline::{evaluate_lines, replay_lines};

#[derive(clap::Args)]
pub(super) struct EvaluateArgs {
    /// File of encounter events, one JSON object a line; `-` for stdin.
    #[arg(default_value = "-")]
    path: PathBuf,
    /// A directory of CMS files (PTP, MUE, PPRRVU, as `rules import`
    /// reads them) to judge each date of service by, instead of the
    /// built-in tables alone.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Judge each event alone (no versions, voids or day re-allocation
    /// across events; KX still accumulates over the input), instead of
    /// replaying the input as the service would.
    #[arg(long)]
    per_event: bool,
    #[command(flatten)]
    localities: crate::config::LocalityArgs,
    #[command(flatten)]
    policy: crate::config::PolicyArgs,
}

pub(super) fn evaluate(args: EvaluateArgs) -> ExitCode {
    let localities = args.localities.provider_localities.clone();
    let book = args
        .policy
        .rules()
        .and_then(|base| match args.rules.as_deref() {
            None => Ok(crate::cms::shipped::over(base, &[])),
            Some(dir) => crate::cms::book_from_dir(dir, base),
        })
        .map(|book| book.located(localities));
    let book = match book {
        Ok(book) => book,
        Err(e) => {
            eprintln!("claimline evaluate: {e:#}");
            return ExitCode::from(2);
        }
    };
    let input: Box<dyn io::BufRead> = if args.path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(&args.path) {
            Ok(f) => Box::new(io::BufReader::new(f)),
            Err(e) => {
                eprintln!(
                    "claimline evaluate: cannot open {}: {e}",
                    args.path.display()
                );
                return ExitCode::from(2);
            }
        }
    };
    let (stdout, stderr) = (io::stdout().lock(), io::stderr().lock());
    let result = if args.per_event {
        evaluate_lines(input, stdout, stderr, &book)
    } else {
        replay_lines(input, stdout, stderr, &book)
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
