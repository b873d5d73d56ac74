//! The `claimline` binary: the command line lives in
//! `claimline::commands`, one file per subcommand.

use std::process::ExitCode;

/// mimalloc: the service allocates and frees many small strings per event
/// (serde, claim lines, Kafka payloads), where it is several times cheaper
/// than glibc's allocator. The benchmarks use it too, to measure the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    claimline::commands::main()
}
