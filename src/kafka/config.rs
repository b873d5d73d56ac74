//! Client configuration, shared by the service and the `send` / `read`
//! tools: the bootstrap flag, then every `KAFKA_<NAME>` environment
//! variable as the librdkafka property `<name>` (lower-cased, `_` as `.`).

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use super::properties::{scope, Scope};

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
    /// The base configuration of one client: bootstrap servers and the
    /// `KAFKA_*` properties from the environment that apply to it (a
    /// consumer-only property is not given to the producer, and the other
    /// way round). A name that is no librdkafka property is an error
    /// naming the variable: a typo must not silently drop a setting.
    pub(super) fn client_config(&self, client: Client) -> anyhow::Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (prop, var, value) in kafka_properties(std::env::vars()) {
            if value.is_empty() {
                anyhow::bail!("{var} is set but empty");
            }
            if for_client(&prop, &var, client)? {
                c.set(prop, value);
            }
        }
        Ok(c)
    }
}

/// The kinds of client, for the properties each takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Consumer,
    Producer,
    /// Topic administration: the properties every client takes.
    Admin,
}

/// Whether property `prop` (from variable `var`) applies to `client`;
/// an error if it is no librdkafka property.
fn for_client(prop: &str, var: &str, client: Client) -> anyhow::Result<bool> {
    let Some(scope) = scope(prop) else {
        anyhow::bail!("invalid Kafka setting {var}: {prop} is not a librdkafka property");
    };
    Ok(matches!(
        (scope, client),
        (Scope::Both, _)
            | (Scope::Consumer, Client::Consumer)
            | (Scope::Producer, Client::Producer)
    ))
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

    #[test]
    fn each_client_gets_the_properties_that_apply_to_it() {
        use Client::*;
        let takes = |prop, client| for_client(prop, "KAFKA_X", client).unwrap();
        assert!(takes("security.protocol", Consumer) && takes("security.protocol", Producer));
        assert!(takes("security.protocol", Admin));
        assert!(takes("session.timeout.ms", Consumer) && !takes("session.timeout.ms", Producer));
        assert!(!takes("session.timeout.ms", Admin));
        assert!(takes("linger.ms", Producer) && !takes("linger.ms", Consumer));
        assert!(takes("auto.offset.reset", Consumer) && !takes("acks", Consumer));
        let err = for_client("not.a.property", "KAFKA_NOT_A_PROPERTY", Consumer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("KAFKA_NOT_A_PROPERTY"), "{err}");
    }

    #[test]
    fn the_property_table_is_sorted_for_binary_search() {
        let names: Vec<&str> = super::super::properties::PROPERTIES
            .iter()
            .map(|p| p.0)
            .collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(names.len() > 150);
    }
}
