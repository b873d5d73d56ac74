//! `claimline run` settings (contract section 6): each a flag and an
//! environment variable. Kafka client properties beyond the bootstrap
//! servers come from `KAFKA_*` variables (see [`crate::kafka::config`]).

use std::net::SocketAddr;

use crate::domain::locality::ProviderLocalities;
use crate::domain::policy::PolicyFile;
use crate::domain::Rules;
use crate::kafka::KafkaArgs;
pub use crate::store::DatabaseUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The database flag every subcommand that talks to Postgres takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Postgres URL (sqlx's convention), e.g.
    /// postgres://user:password@host:5432/db?sslmode=verify-full.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: DatabaseUrl,
}

/// Kafka's rule for a `group.instance.id`: 1-249 of `[A-Za-z0-9._-]`.
fn instance_id(s: &str) -> Result<String, String> {
    let ok = (1..=249).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ok.then(|| s.to_owned())
        .ok_or_else(|| "must be 1-249 characters of A-Z, a-z, 0-9, '.', '_' and '-'".to_owned())
}

/// Each billing NPI's Medicare payment locality, for the locality's
/// expected payment (`1234567893=01112-54,...`: the MAC and locality
/// numbers of CMS's GPCI file). An event's `provider.medicare_locality`
/// wins over it. Taken by `run`, `evaluate` and `reprocess` alike.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalityArgs {
    /// Each billing NPI's Medicare locality, `NPI=MAC-LOCALITY,...`
    /// (`1234567893=01112-54`); the event's own locality wins.
    #[arg(
        long,
        env = "CLAIMLINE_PROVIDER_LOCALITIES",
        default_value = "",
        hide_default_value = true,
        value_parser = ProviderLocalities::parse
    )]
    pub provider_localities: ProviderLocalities,
}

/// The payer policy file `run`, `evaluate` and `reprocess` take: merged
/// over the built-in policies ([`crate::domain::policy`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyArgs {
    /// A payer policy file (JSON, the layout of data/payers.json, every
    /// part optional) merged over the built-in policies; a bad file is
    /// refused with its problems. Its fingerprint is part of rules_version.
    #[arg(long, env = "CLAIMLINE_PAYER_POLICY")]
    pub payer_policy: Option<std::path::PathBuf>,
}

impl PolicyArgs {
    /// The base rule set: the built-in one, or the one the policy file
    /// makes of it. Read once per process (so kept for its life).
    pub fn rules(&self) -> anyhow::Result<&'static Rules> {
        let Some(path) = &self.payer_policy else {
            return Ok(Rules::builtin());
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the payer policy {name}: {e}"))?;
        let file = PolicyFile::parse(&name, &text, &Rules::builtin().catalogue)?;
        Ok(Box::leak(Box::new(file.apply(Rules::builtin())?)))
    }
}

/// The four topics (contract section 2), declared once: the service, `dlq
/// replay` and `reprocess` take the same flags and environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct TopicArgs {
    /// Topic of the encounter events (input).
    #[arg(long, env = "CLAIMLINE_INPUT_TOPIC", default_value = "encounters")]
    pub input_topic: String,
    /// Topic of validated claim lines and their voids.
    #[arg(long, env = "CLAIMLINE_OUTPUT_TOPIC", default_value = "claim-lines")]
    pub output_topic: String,
    /// Topic of claim lines that need review (an error flag).
    #[arg(
        long,
        env = "CLAIMLINE_REVIEW_TOPIC",
        default_value = "claim-lines.review"
    )]
    pub review_topic: String,
    /// Dead-letter topic: bad events, unchanged, with error headers.
    #[arg(long, env = "CLAIMLINE_DLQ_TOPIC", default_value = "encounters.dlq")]
    pub dlq_topic: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunConfig {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Consumer group id; every replica of one deployment shares it.
    #[arg(long, env = "CLAIMLINE_GROUP_ID", default_value = "claimline")]
    pub group_id: String,
    /// This instance's static group membership (`group.instance.id`): a
    /// restart with the same id takes its partitions back without a
    /// rebalance. One live process per id (a second one waits, then
    /// refuses to start). In Kubernetes, the StatefulSet's pod name.
    #[arg(long, env = "CLAIMLINE_INSTANCE_ID", value_parser = instance_id)]
    pub instance_id: Option<String>,
    /// Resume each assigned partition from the log start, skipping what is
    /// below its committed offset: a workaround for Tansu 0.6.0's memory
    /// storage, which answers a fetch inside a stored batch with the next
    /// batch or nothing (loss or a stall after a restart). Off for Kafka;
    /// it re-reads the retained log at every assignment.
    #[arg(long, env = "CLAIMLINE_RESUME_FROM_LOG_START", default_value_t = false, action = clap::ArgAction::Set)]
    pub resume_from_log_start: bool,
    #[command(flatten)]
    pub topics: TopicArgs,
    #[command(flatten)]
    pub localities: LocalityArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "CLAIMLINE_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: SocketAddr,
    /// Log lines as JSON (for collectors) or pretty (for people).
    #[arg(long, env = "CLAIMLINE_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Most messages in one batch (one transaction).
    #[arg(long, env = "CLAIMLINE_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// An input value over this many bytes is dead-lettered as too_large
    /// (contract section 2).
    #[arg(long, env = "CLAIMLINE_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_message_bytes: u64,
    /// Most message bytes in one batch: with 1 MiB events, the default
    /// keeps a batch's memory bounded whatever CLAIMLINE_BATCH_SIZE says.
    #[arg(long, env = "CLAIMLINE_BATCH_MAX_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_max_bytes: u64,
    /// How long a batch waits to fill once its first message arrived.
    #[arg(long, env = "CLAIMLINE_BATCH_LINGER_MS", default_value_t = 20)]
    pub batch_linger_ms: u64,
    /// Batches written at once, each on a connection of its own (1: one at
    /// a time); batches that share an encounter, a patient-year or an event
    /// id are committed in order. Several keep both Postgres' cores busy and
    /// hide a distant database's round trips; the pool needs a connection
    /// per batch besides the publisher's, the outbox keeper's and the probe's.
    #[arg(long, env = "CLAIMLINE_BATCHES_IN_FLIGHT", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub batches_in_flight: u32,
    /// Postgres connections in the pool.
    #[arg(long, env = "CLAIMLINE_DB_POOL_SIZE", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub db_pool_size: u32,
    /// Postgres statement and lock timeout (idle in a transaction: twice
    /// this), so a half-open connection or a held lock cannot wedge a step.
    #[arg(long, env = "CLAIMLINE_DB_STATEMENT_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub db_statement_timeout_secs: u64,
    /// Longest a shutdown takes: it drains and exits 0 within it, or
    /// abandons the work in flight (redelivered) and exits non-zero.
    #[arg(long, env = "CLAIMLINE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_timeout_secs: u64,
    /// Run the migrations at start-up. With false, only check that the
    /// schema is current and refuse to start otherwise (for a role without
    /// DDL rights; `claimline migrate` runs them).
    #[arg(long, env = "CLAIMLINE_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate: bool,
    /// /healthz fails when work has waited this long with no batch
    /// completed (a stuck pipeline; Kubernetes then restarts the pod).
    #[arg(long, env = "CLAIMLINE_STALL_TIMEOUT_SECS", default_value_t = 300)]
    pub stall_timeout_secs: u64,
    /// How long an instance's claim on the outbox rows it writes holds
    /// without renewal; after that (the instance died or is stuck) another
    /// instance publishes them.
    #[arg(long, env = "CLAIMLINE_OUTBOX_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub outbox_lease_secs: u64,
    /// How often to check Postgres for newly imported CMS rule tables
    /// (`claimline rules import`); new ones apply without a restart.
    #[arg(long, env = "CLAIMLINE_RULES_POLL_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub rules_poll_secs: u64,
    /// Create the four topics at start-up when missing (for demos and tests).
    #[arg(long, env = "CLAIMLINE_CREATE_TOPICS", default_value_t = false)]
    pub create_topics: bool,
    /// Partitions for topics created with --create-topics.
    #[arg(long, env = "CLAIMLINE_TOPIC_PARTITIONS", default_value_t = 4)]
    pub topic_partitions: i32,
}
