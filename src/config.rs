//! `claimline run` settings (contract section 6): each a flag and an
//! environment variable. Any other `KAFKA_<NAME>` variable is passed to
//! librdkafka as `<name>` lower-cased with `_` as `.`.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunConfig {
    /// Postgres URL (sqlx's convention).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    #[arg(long, env = "CLAIMLINE_GROUP_ID", default_value = "claimline")]
    pub group_id: String,
    #[arg(long, env = "CLAIMLINE_INPUT_TOPIC", default_value = "encounters")]
    pub input_topic: String,
    #[arg(long, env = "CLAIMLINE_OUTPUT_TOPIC", default_value = "claim-lines")]
    pub output_topic: String,
    #[arg(
        long,
        env = "CLAIMLINE_REVIEW_TOPIC",
        default_value = "claim-lines.review"
    )]
    pub review_topic: String,
    #[arg(long, env = "CLAIMLINE_DLQ_TOPIC", default_value = "encounters.dlq")]
    pub dlq_topic: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "CLAIMLINE_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub metrics_addr: SocketAddr,
    #[arg(long, env = "CLAIMLINE_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Most messages in one batch (one transaction).
    #[arg(long, env = "CLAIMLINE_BATCH_SIZE", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// How long a batch waits to fill once its first message arrived.
    #[arg(long, env = "CLAIMLINE_BATCH_LINGER_MS", default_value_t = 20)]
    pub batch_linger_ms: u64,
    #[arg(long, env = "CLAIMLINE_DB_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub db_pool_size: u32,
    /// Longest a shutdown waits for in-flight work before exiting.
    #[arg(long, env = "CLAIMLINE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    pub shutdown_timeout_secs: u64,
    /// Create the four topics at start-up when missing (for demos and tests).
    #[arg(long, env = "CLAIMLINE_CREATE_TOPICS", default_value_t = false)]
    pub create_topics: bool,
    /// Partitions for topics created with --create-topics.
    #[arg(long, env = "CLAIMLINE_TOPIC_PARTITIONS", default_value_t = 4)]
    pub topic_partitions: i32,
}

/// The `KAFKA_<NAME>` pass-through properties from the environment, as
/// (librdkafka property, environment variable, value).
pub fn kafka_properties_from_env() -> Vec<(String, String, String)> {
    kafka_properties(std::env::vars())
}

pub fn kafka_properties(
    vars: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String, String)> {
    let mut props: Vec<_> = vars
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("KAFKA_")?;
            if name.is_empty() || name == "BOOTSTRAP_SERVERS" {
                return None;
            }
            Some((name.to_ascii_lowercase().replace('_', "."), k, v))
        })
        .collect();
    props.sort();
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_variables_become_librdkafka_properties() {
        let vars = [
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
            ("KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("CLAIMLINE_GROUP_ID", "g"),
            ("KAFKA_", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let props = kafka_properties(vars.into_iter());
        let names: Vec<_> = props
            .iter()
            .map(|(p, _, v)| (p.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("sasl.password", "hunter2"),
                ("security.protocol", "SASL_SSL")
            ]
        );
    }
}
