use std::io::{self, BufReader};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use claimline::domain::Rules;

/// mimalloc: the service allocates and frees many small strings per event
/// (serde, claim lines, Kafka payloads), where it is several times cheaper
/// than glibc's allocator. The benchmarks use it too, to measure the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns therapy encounter events into billable claim lines.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: consume encounter events, persist, publish claim lines.
    Run(claimline::config::RunConfig),
    /// Send JSON lines from PATH (or `-`) to a topic, keyed by encounter id.
    Send {
        #[arg(
            long,
            env = "KAFKA_BOOTSTRAP_SERVERS",
            default_value = "127.0.0.1:9092"
        )]
        bootstrap_servers: String,
        #[arg(long, default_value = "encounters")]
        topic: String,
        #[arg(default_value = "-")]
        path: String,
    },
    /// Print a topic's messages from the beginning, one per line.
    Read {
        #[arg(
            long,
            env = "KAFKA_BOOTSTRAP_SERVERS",
            default_value = "127.0.0.1:9092"
        )]
        bootstrap_servers: String,
        #[arg(long, default_value = "claim-lines")]
        topic: String,
        /// Stop after this many messages.
        #[arg(long, default_value_t = usize::MAX)]
        max: usize,
        /// Stop after this many seconds without a message.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
    },
    /// Run the database migrations and exit.
    Migrate {
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
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
        Command::Run(cfg) => {
            claimline::telemetry::init(cfg.log_format);
            runtime().block_on(async move {
                match claimline::pipeline::run(cfg, shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        // One line, through the configured log format.
                        tracing::error!(error = format!("{e:#}"), "claimline run failed");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        Command::Send {
            bootstrap_servers,
            topic,
            path,
        } => runtime().block_on(async move {
            let result = if path == "-" {
                claimline::tools::send(&bootstrap_servers, &topic, io::stdin().lock()).await
            } else {
                match std::fs::File::open(&path) {
                    Ok(f) => {
                        claimline::tools::send(&bootstrap_servers, &topic, BufReader::new(f)).await
                    }
                    Err(e) => Err(anyhow::anyhow!("cannot open {path}: {e}")),
                }
            };
            match result {
                Ok(n) => {
                    eprintln!("claimline send: {n} messages sent to {topic}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("claimline send: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Read {
            bootstrap_servers,
            topic,
            max,
            idle_secs,
        } => {
            match claimline::tools::read(
                &bootstrap_servers,
                &topic,
                max,
                std::time::Duration::from_secs(idle_secs),
            ) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("claimline read: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { database_url } => runtime().block_on(async move {
            let result = async {
                let pool = claimline::store::connect(&database_url, 1).await?;
                claimline::store::migrate(&pool).await
            };
            match result.await {
                Ok(()) => {
                    eprintln!("claimline migrate: migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("claimline migrate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
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
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; draining");
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
