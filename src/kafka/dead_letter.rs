//! The dead-letter headers of contract section 2: written once here for
//! the service, and read back here for `claimline dlq replay`.

use super::consumer::Record;
use super::Incoming;

pub const REASON: &str = "error.reason";
pub const MESSAGE: &str = "error.message";
pub const SOURCE_TOPIC: &str = "source.topic";
pub const SOURCE_PARTITION: &str = "source.partition";
pub const SOURCE_OFFSET: &str = "source.offset";
/// Present (`postgres`) when the value was too large for the dead-letter
/// topic and was kept in Postgres instead; the message's value is empty.
pub const VALUE_STORED: &str = "error.value_stored";
const STORED_IN_POSTGRES: &str = "postgres";

/// The headers for a dead letter of `source`; `value_stored`: its value is
/// kept in Postgres, not in the message.
pub fn headers(
    reason: &str,
    message: &str,
    source: &Incoming,
    value_stored: bool,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (REASON, reason.to_owned()),
        (MESSAGE, message.to_owned()),
        (SOURCE_TOPIC, source.topic.clone()),
        (SOURCE_PARTITION, source.partition.to_string()),
        (SOURCE_OFFSET, source.offset.to_string()),
    ];
    if value_stored {
        h.push((VALUE_STORED, STORED_IN_POSTGRES.to_owned()));
    }
    h
}

/// What a dead letter's headers say, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub reason: String,
    /// (topic, partition, offset) of the original message; -1 where a
    /// header is missing or unreadable.
    pub source: (String, i32, i64),
    pub value_stored: bool,
}

impl Headers {
    pub fn read(m: &Record) -> Headers {
        Headers {
            reason: m.header(REASON).unwrap_or("unknown").to_owned(),
            source: (
                m.header(SOURCE_TOPIC).unwrap_or_default().to_owned(),
                m.header(SOURCE_PARTITION)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(-1),
                m.header(SOURCE_OFFSET)
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(-1),
            ),
            value_stored: m.header(VALUE_STORED) == Some(STORED_IN_POSTGRES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_headers_read_back() {
        let source = Incoming {
            topic: "encounters".into(),
            partition: 3,
            offset: 42,
            key: None,
            payload: Vec::new().into(),
            timestamp_ms: None,
        };
        for stored in [false, true] {
            let m = Record {
                partition: 0,
                offset: 0,
                timestamp_ms: None,
                key: None,
                headers: headers("too_large", "too big", &source, stored)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.into_bytes()))
                    .collect(),
                payload: Vec::new(),
            };
            let h = Headers::read(&m);
            assert_eq!(h.reason, "too_large");
            assert_eq!(h.source, ("encounters".to_owned(), 3, 42));
            assert_eq!(h.value_stored, stored);
        }
    }
}
