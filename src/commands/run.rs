//! `claimline run` (the service, [`crate::pipeline::run`]) and `claimline
//! migrate`.

use std::process::ExitCode;

use super::{report, runtime};
use crate::config::{DatabaseArgs, RunConfig};
use crate::store::Db;

pub(super) fn run(cfg: RunConfig) -> ExitCode {
    crate::telemetry::init(cfg.log_format);
    match runtime().block_on(crate::pipeline::run(cfg, shutdown_signal())) {
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
