//! `claimline run` (the service, [`crate::pipeline::run`]) and `claimline
//! migrate`.

use std::process::ExitCode;
use std::time::Duration;

use super::{report, runtime};
use crate::config::{DatabaseArgs, RunConfig};
use crate::store::Db;

pub(super) fn run(cfg: RunConfig) -> ExitCode {
    crate::telemetry::init(cfg.log_format);
    let limit = Duration::from_secs(cfg.shutdown_timeout_secs);
    let signal = async move {
        shutdown_signal().await;
        watchdog(limit);
    };
    let rt = runtime();
    let result = rt.block_on(crate::pipeline::run(cfg, signal));
    // Tasks still running (a probe's metadata request) get a moment, not
    // the right to hold the exit.
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, through the configured log format.
            tracing::error!(
                error = crate::pipeline::retry::loggable(&e),
                "claimline run failed"
            );
            ExitCode::FAILURE
        }
    }
}

pub(super) fn migrate(db: DatabaseArgs) -> ExitCode {
    report(
        "migrate",
        runtime().block_on(async move {
            Db::connect(&db.database_url, 1).await?.migrate().await?;
            Ok("migrations applied".to_owned())
        }),
    )
}

/// The backstop of the shutdown bound: should the drain be held past
/// `limit` by something that cannot be interrupted (a blocking client
/// call, a destructor), the process ends anyway, non-zero, saying so.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        tracing::error!(
            shutdown_timeout_s = limit.as_secs(),
            "stopped: abandoned work in flight at the shutdown timeout (redelivered to whoever takes the partitions)"
        );
        std::process::exit(2);
    });
}

/// Resolves on SIGTERM or Ctrl-C.
pub(super) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested; draining");
}
