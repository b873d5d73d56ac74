//! `claimline web`: the read-only web view for revenue-cycle teams
//! ([`crate::web::run`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::run::shutdown_signal;
use super::runtime;
use crate::config::{DatabaseArgs, LogFormat};
use crate::web::{Credentials, WebConfig};

#[derive(clap::Args)]
pub(super) struct WebArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Address to listen on. Loopback by default: put it behind TLS (an
    /// ingress) before opening it to a network.
    #[arg(long, env = "CLAIMLINE_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The user that signs in.
    #[arg(long, env = "CLAIMLINE_WEB_USER", default_value = "revenue")]
    user: String,
    /// The password that signs in (at least 12 characters). Prefer
    /// CLAIMLINE_WEB_PASSWORD_FILE (a mounted secret).
    #[arg(long, env = "CLAIMLINE_WEB_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A file holding the password (a mounted secret); one trailing
    /// newline is ignored.
    #[arg(long, env = "CLAIMLINE_WEB_PASSWORD_FILE", conflicts_with = "password")]
    password_file: Option<PathBuf>,
    /// KX watch list: how far below the year's threshold, in whole dollars,
    /// a patient is listed.
    #[arg(long, env = "CLAIMLINE_WEB_KX_MARGIN_DOLLARS", default_value_t = 500)]
    kx_margin_dollars: u32,
    /// Deadline of every database read, in seconds; past it the page says
    /// the database is not answering (503).
    #[arg(long, env = "CLAIMLINE_WEB_QUERY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    query_timeout_secs: u64,
    /// Postgres connections in the pool.
    #[arg(long, env = "CLAIMLINE_WEB_DB_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=50))]
    db_pool_size: u32,
    /// Mark the session cookie Secure (set when served over TLS).
    #[arg(long, env = "CLAIMLINE_WEB_SECURE_COOKIE", default_value_t = false, action = clap::ArgAction::Set)]
    secure_cookie: bool,
    /// How long a sign-in lasts, in minutes.
    #[arg(long, env = "CLAIMLINE_WEB_SESSION_MINUTES", default_value_t = 480, value_parser = clap::value_parser!(u64).range(1..=10080))]
    session_minutes: u64,
    /// Log lines as JSON (for collectors) or pretty (for people).
    #[arg(long, env = "CLAIMLINE_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
}

pub(super) fn web(args: WebArgs) -> ExitCode {
    crate::telemetry::init(args.log_format);
    let result = Credentials::from_sources(
        &args.user,
        args.password.as_deref(),
        args.password_file.as_deref(),
    )
    .and_then(|credentials| {
        let config = WebConfig {
            credentials,
            kx_margin_cents: i64::from(args.kx_margin_dollars) * 100,
            query_timeout: Duration::from_secs(args.query_timeout_secs),
            secure_cookie: args.secure_cookie,
            session_lifetime: Duration::from_secs(args.session_minutes * 60),
        };
        runtime().block_on(crate::web::run(
            args.listen,
            &args.database.database_url,
            args.db_pool_size,
            config,
            shutdown_signal(),
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("claimline web failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
