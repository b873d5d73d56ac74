//! The `claimline` binary: parse the command line (see `cli.rs`), set up
//! logging and the runtime, and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

use claimline::cli::{Cli, Command, DlqCommand, RulesCommand};

/// mimalloc: the service allocates and frees many small strings per event
/// (serde, claim lines, Kafka payloads), where it is several times cheaper
/// than glibc's allocator. The benchmarks use it too, to measure the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Evaluate { path, rules } => {
            claimline::offline::evaluate_path(&path, rules.as_deref())
        }
        Command::Rules {
            command: RulesCommand::Import(args),
        } => report(
            "rules import",
            runtime().block_on(claimline::rules_admin::import(&args)),
        ),
        Command::Rules {
            command: RulesCommand::List(db),
        } => report(
            "rules list",
            runtime().block_on(claimline::rules_admin::list(&db)),
        ),
        Command::Run(cfg) => {
            claimline::telemetry::init(cfg.log_format);
            let result = runtime().block_on(claimline::pipeline::run(*cfg, shutdown_signal()));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // One line, through the configured log format.
                    tracing::error!(
                        error = claimline::pipeline::retry::loggable(&e),
                        "claimline run failed"
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate(db) => report(
            "migrate",
            runtime().block_on(async move {
                let pool = claimline::store::connect(&db.database_url, 1).await?;
                claimline::store::migrate(&pool).await?;
                Ok("migrations applied".to_owned())
            }),
        ),
        Command::Send { kafka, topic, path } => report(
            "send",
            runtime().block_on(async move {
                let n = claimline::tools::send_path(&kafka, &topic, &path).await?;
                Ok(format!("{n} messages sent to {topic}"))
            }),
        ),
        Command::Read {
            kafka,
            topic,
            max,
            idle_secs,
            format,
        } => match claimline::tools::read(
            &kafka,
            &topic,
            max,
            std::time::Duration::from_secs(idle_secs),
            format,
        ) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => report("read", Err(e)),
        },
        Command::Reprocess(args) => report(
            "reprocess",
            runtime().block_on(async move {
                let s = claimline::reprocess::reprocess(&args).await?;
                print!("{}", s.report());
                Ok(match (args.dry_run, s.finished, s.run_id) {
                    (true, _, _) => "dry run: nothing written".to_owned(),
                    (false, true, Some(id)) => format!("run {id} finished"),
                    (false, _, id) => format!(
                        "run {} stopped before the end; run the same command to resume",
                        id.unwrap_or(0)
                    ),
                })
            }),
        ),
        Command::Dlq {
            command: DlqCommand::Replay(args),
        } => report(
            "dlq replay",
            runtime().block_on(async move {
                let s = claimline::replay::replay(&args).await?;
                let verb = if args.dry_run {
                    "would replay"
                } else {
                    "replayed"
                };
                Ok(format!(
                    "{verb} {}, {} already replayed before; matched by reason: {:?}",
                    s.replayed, s.already, s.matched
                ))
            }),
        ),
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

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested; draining");
}
