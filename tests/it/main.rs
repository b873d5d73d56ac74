//! The one integration test binary: the published wire format, the
//! `claimline evaluate` command, and the service against a real Postgres
//! and a real Kafka-protocol broker (started by `make test`).

mod browser;
mod cotreatment;
mod dashboard;
mod evaluate_cli;
mod export;
mod fault;
mod in_flight;
mod indexes;
mod membership;
mod operability;
mod poison;
mod policy_cli;
mod replay;
mod resume;
mod round_trips;
mod rules;
mod schemas;
mod service;
mod stall;
mod support;
mod tools;
mod web;
mod web_support;
