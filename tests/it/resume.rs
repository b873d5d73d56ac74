//! Resuming at a committed offset that lies inside a producer's record
//! batch. Tansu 0.6.0 answers a fetch at such an offset with the first
//! batch that starts after it (the rest of the batch is skipped) or with
//! nothing when no batch does (the partition stalls); see
//! src/kafka/consumer.rs. The service must process every message from the
//! committed offset on, whatever the broker does.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{bootstrap, stream_of, TestEnv};

const T: Duration = Duration::from_secs(60);

/// Sends `events` to one partition in one go (librdkafka batches them: a
/// few record batches of hundreds of messages each).
async fn send_to(env: &TestEnv, partition: i32, events: &[serde_json::Value]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "100")
        .create()
        .unwrap();
    let values: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| {
            (
                e["encounter"]["encounter_id"].as_str().unwrap().to_owned(),
                e.to_string().into_bytes(),
            )
        })
        .collect();
    let futures: Vec<_> = values
        .iter()
        .map(|(k, v)| {
            producer
                .send_result(
                    FutureRecord::to(&env.input)
                        .partition(partition)
                        .key(k)
                        .payload(v),
                )
                .map_err(|(e, _)| e)
                .unwrap()
        })
        .collect();
    for f in futures {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_offset_inside_a_record_batch_resumes_there_without_loss_or_stall() {
    let env = TestEnv::new("resume", 2).await;
    // Per partition: offsets 0-499 sent together, then 500-999.
    for p in 0..2 {
        send_to(&env, p, &stream_of(&format!("p{p}a"), 0..500)).await;
        send_to(&env, p, &stream_of(&format!("p{p}b"), 500..1000)).await;
    }
    // The group has processed partition 0 up to 300 (inside the first
    // sends' batches) and partition 1 up to 700 (inside the last ones).
    let committer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&env.input, 0, Offset::Offset(300))
        .unwrap();
    tpl.add_partition_offset(&env.input, 1, Offset::Offset(700))
        .unwrap();
    committer.commit(&tpl, CommitMode::Sync).unwrap();
    drop(committer);

    let svc = env.service();
    svc.wait_ready(T).await;
    let start = std::time::Instant::now();
    loop {
        let n = env.count("SELECT count(*) FROM encounter_events").await;
        if n >= 1000 {
            break;
        }
        assert!(
            start.elapsed() < T,
            "{n} of 1000 processed after {T:?}:\n{}",
            svc.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_partition: Vec<(i32, i64, i64, i64)> = sqlx::query_as(
        "SELECT source_partition, min(source_offset), max(source_offset), count(DISTINCT source_offset)
         FROM encounter_events GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    // Everything from the committed offset on, nothing below it.
    assert_eq!(per_partition, vec![(0, 300, 999, 700), (1, 700, 999, 300)]);
}
