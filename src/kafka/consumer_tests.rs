//! The consumer's configuration defaults.

use super::*;

#[test]
fn defaults_yield_to_kafka_settings_but_not_the_offset_handling() {
    let mut c = rdkafka::config::ClientConfig::new();
    set_defaults(&mut c, "g");
    assert_eq!(c.get("fetch.wait.max.ms"), Some("50"));
    assert_eq!(c.get("queued.max.messages.kbytes"), Some("4096"));
    assert_eq!(c.get("fetch.queue.backoff.ms"), Some("20"));
    let mut c = rdkafka::config::ClientConfig::new();
    c.set("fetch.wait.max.ms", "500");
    c.set("enable.auto.offset.store", "true");
    set_defaults(&mut c, "g");
    assert_eq!(c.get("fetch.wait.max.ms"), Some("500"));
    assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
}
