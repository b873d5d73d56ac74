//! The one integration test binary: the published wire format, the
//! `claimline evaluate` command, and the service against a real Postgres
//! and a real Kafka-protocol broker (started by `make test`).

mod cotreatment;
mod evaluate_cli;
mod fault;
mod operability;
mod poison;
mod replay;
mod rules;
mod schemas;
mod service;
mod stall;
mod support;
mod tools;
