//! Client configuration, shared by the service and the `send` / `read`
//! tools: the bootstrap flag, then every `KAFKA_<NAME>` environment
//! variable as the librdkafka property `<name>` (lower-cased, `_` as `.`).

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

/// The Kafka flags every subcommand that talks to the broker takes.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, host:port[,host:port...]. Other librdkafka
    /// properties (TLS, SASL, tuning) come from `KAFKA_<NAME>` variables,
    /// e.g. KAFKA_SECURITY_PROTOCOL=SASL_SSL sets security.protocol.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
}

impl KafkaArgs {
    /// The base configuration of a client: bootstrap servers and every
    /// `KAFKA_*` property from the environment. librdkafka itself knows
    /// its properties: it refuses an unknown one when the client is created
    /// ([`config_error`] names the variable: a typo must not silently drop a
    /// setting), and ignores, with a warning, one that belongs to the other
    /// kind of client.
    pub(super) fn client_config(&self) -> anyhow::Result<ClientConfig> {
        client_config(&self.bootstrap_servers, std::env::vars())
    }
}

fn client_config(
    bootstrap_servers: &str,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap_servers);
    for (prop, var, value) in kafka_properties(vars) {
        if value.is_empty() {
            anyhow::bail!("{var} is set but empty");
        }
        c.set(prop, value);
    }
    Ok(c)
}

/// The `KAFKA_<NAME>` pass-through properties among `vars`, as
/// (librdkafka property, environment variable, value), sorted.
pub fn kafka_properties(
    vars: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String, String)> {
    let mut props: Vec<_> = vars
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("KAFKA_")?;
            if name.is_empty() || name == "BOOTSTRAP_SERVERS" || is_service_link(name) {
                return None;
            }
            Some((name.to_ascii_lowercase().replace('_', "."), k, v))
        })
        .collect();
    props.sort();
    props
}

/// The variables Kubernetes injects for a Service named `kafka`
/// (`KAFKA_PORT`, `KAFKA_PORT_9092_TCP_ADDR`, `KAFKA_SERVICE_HOST`,
/// `KAFKA_SERVICE_PORT_*`): not librdkafka properties (contract section 6).
fn is_service_link(name: &str) -> bool {
    name == "PORT"
        || name.starts_with("PORT_")
        || name == "SERVICE_HOST"
        || name == "SERVICE_PORT"
        || name.starts_with("SERVICE_PORT_")
}

/// One line naming the setting, never its value (it may be a secret).
pub(super) fn config_error(e: KafkaError) -> anyhow::Error {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let desc = if value.is_empty() {
                desc
            } else {
                desc.replace(&value, "<redacted>")
            };
            let var = if key == "bootstrap.servers" {
                "KAFKA_BOOTSTRAP_SERVERS".to_owned()
            } else {
                format!("KAFKA_{}", key.to_ascii_uppercase().replace('.', "_"))
            };
            anyhow::anyhow!("invalid Kafka setting {var} ({key}): {desc}")
        }
        other => anyhow::anyhow!("invalid Kafka configuration: {other}"),
    }
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
            ("KAFKA_PORT", "tcp://10.96.0.12:9092"),
            ("KAFKA_PORT_9092_TCP", "tcp://10.96.0.12:9092"),
            ("KAFKA_PORT_9092_TCP_ADDR", "10.96.0.12"),
            ("KAFKA_PORT_9092_TCP_PORT", "9092"),
            ("KAFKA_PORT_9092_TCP_PROTO", "tcp"),
            ("KAFKA_SERVICE_HOST", "10.96.0.12"),
            ("KAFKA_SERVICE_PORT", "9092"),
            ("KAFKA_SERVICE_PORT_BROKER", "9092"),
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

    /// librdkafka refuses what is not its property, and the error names
    /// the variable, never the value.
    #[test]
    fn an_unknown_or_bad_setting_is_refused_naming_its_variable() {
        use rdkafka::consumer::BaseConsumer;
        use rdkafka::producer::BaseProducer;
        let vars = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into_iter();
        let c = client_config("127.0.0.1:1", vars("KAFKA_NOT_A_PROPERTY", "s3cret")).unwrap();
        let err = config_error(c.create::<BaseProducer>().err().unwrap()).to_string();
        assert!(err.contains("KAFKA_NOT_A_PROPERTY"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let c = client_config("127.0.0.1:1", vars("KAFKA_SESSION_TIMEOUT_MS", "s3cret")).unwrap();
        let err = config_error(c.create::<BaseConsumer>().err().unwrap()).to_string();
        assert!(err.contains("KAFKA_SESSION_TIMEOUT_MS"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        // Another client's property is not an error (librdkafka ignores it).
        let c = client_config("127.0.0.1:1", vars("KAFKA_SESSION_TIMEOUT_MS", "10000")).unwrap();
        assert!(c.create::<BaseProducer>().is_ok());
        let c = client_config("127.0.0.1:1", vars("KAFKA_LINGER_MS", "5")).unwrap();
        assert!(c.create::<BaseConsumer>().is_ok());
        let err = client_config("b", vars("KAFKA_ACKS", "")).unwrap_err();
        assert_eq!(err.to_string(), "KAFKA_ACKS is set but empty");
    }
}
