//! The one integration test binary: the published wire format, the
//! `claimline evaluate` command, and the service against a real Postgres
//! and a real Kafka-protocol broker.

mod evaluate_cli;
mod schemas;
