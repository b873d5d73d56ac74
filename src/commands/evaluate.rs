//! `claimline evaluate PATH [--rules DIR]`: the built-in rules (and the
//! CMS files in DIR) over a file or stdin (`-`), claim lines to stdout
//! ([`crate::pipeline::offline`]). Exit status 1 when any event was bad, 2
//! when the input or the rules could not be read.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::pipeline::offline::evaluate_lines;

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
}

pub(super) fn evaluate(args: EvaluateArgs) -> ExitCode {
    let book = match args.rules.as_deref().map(crate::cms::book_from_dir) {
        None => crate::cms::shipped::with_imported(&[]),
        Some(Ok(book)) => book,
        Some(Err(e)) => {
            eprintln!("claimline evaluate: {e:#}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout().lock();
    let stderr = io::stderr().lock();
    let result = if args.path.as_os_str() == "-" {
        evaluate_lines(io::stdin().lock(), stdout, stderr, &book)
    } else {
        match std::fs::File::open(&args.path) {
            Ok(f) => evaluate_lines(io::BufReader::new(f), stdout, stderr, &book),
            Err(e) => {
                eprintln!(
                    "claimline evaluate: cannot open {}: {e}",
                    args.path.display()
                );
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
