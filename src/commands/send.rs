//! `claimline send`: JSON lines from a file or stdin to a topic
//! ([`crate::kafka::tools::send`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{report, runtime};
use crate::kafka::{tools, KafkaArgs};

#[derive(clap::Args)]
pub(super) struct SendArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Topic to send to.
    #[arg(long, default_value = "encounters")]
    topic: String,
    /// File of messages, one a line; `-` for stdin.
    #[arg(default_value = "-")]
    path: PathBuf,
}

pub(super) fn send(args: SendArgs) -> ExitCode {
    report(
        "send",
        runtime().block_on(async move {
            let n = if args.path.as_os_str() == "-" {
                tools::send(&args.kafka, &args.topic, std::io::stdin().lock()).await?
            } else {
                let f = std::fs::File::open(&args.path)
                    .with_context(|| format!("cannot open {}", args.path.display()))?;
                tools::send(&args.kafka, &args.topic, std::io::BufReader::new(f)).await?
            };
            Ok(format!("{n} messages sent to {}", args.topic))
        }),
    )
}
