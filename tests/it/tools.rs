//! The integrators' tools against the real broker and Postgres:
//! `claimline read` shows key, headers and value; `claimline dlq replay`
//! sends dead letters back to the input topic, each once.

use std::process::Command;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::support::{bootstrap, TestEnv};

/// Puts a dead letter on the environment's dead-letter topic, as the
/// service writes one.
async fn dead_letter(env: &TestEnv, key: &str, value: &[u8], reason: &str, offset: i64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let offset = offset.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "error.reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "error.message",
            value: Some("encounter.provider.discipline: unknown value (not shown)"),
        })
        .insert(Header {
            key: "source.topic",
            value: Some(env.input.as_str()),
        })
        .insert(Header {
            key: "source.partition",
            value: Some("0"),
        })
        .insert(Header {
            key: "source.offset",
            value: Some(offset.as_str()),
        });
    producer
        .send(
            FutureRecord::to(&env.dlq)
                .key(key)
                .payload(value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

fn claimline(env: &TestEnv, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_claimline"))
        .args(args)
        .env("DATABASE_URL", &env.db_url)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap())
        .env("CLAIMLINE_INPUT_TOPIC", &env.input)
        .env("CLAIMLINE_DLQ_TOPIC", &env.dlq)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_shown_with_their_headers_and_replayed_once_each() {
    let env = TestEnv::new("replay", 1).await;
    let (ok, _, err) = claimline(&env, &["migrate"]);
    assert!(ok, "{err}");
    dead_letter(
        &env,
        "ENC-R1",
        br#"{"fixed":"by the sender"}"#,
        "schema_violation",
        7,
    )
    .await;
    dead_letter(&env, "ENC-R2", b"not json", "invalid_json", 8).await;

    let (ok, out, err) = claimline(
        &env,
        &[
            "read",
            "--topic",
            &env.dlq,
            "--max",
            "2",
            "--idle-secs",
            "10",
        ],
    );
    assert!(ok, "{err}");
    let shown: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shown.len(), 2, "{out}");
    assert_eq!(shown[0]["key"], "ENC-R1");
    assert_eq!(shown[0]["headers"]["error.reason"], "schema_violation");
    assert_eq!(shown[0]["value"]["fixed"], "by the sender");
    assert_eq!(shown[1]["value"], "not json");

    let replay = [
        "dlq",
        "replay",
        "--reason",
        "schema_violation",
        "--idle-secs",
        "3",
    ];
    let (ok, _, err) = claimline(&env, &[&replay[..], &["--dry-run"]].concat());
    assert!(ok && err.contains("would replay 1"), "{err}");
    assert!(
        env.read(&env.input, 1, Duration::from_secs(3))
            .await
            .is_empty(),
        "a dry run sends nothing"
    );

    let (ok, _, err) = claimline(&env, &replay);
    assert!(ok && err.contains("replayed 1, 0 already"), "{err}");
    let sent = env.read(&env.input, 2, Duration::from_secs(5)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key.as_deref(), Some("ENC-R1"));
    assert_eq!(sent[0].value, br#"{"fixed":"by the sender"}"#.to_vec());

    let (ok, _, err) = claimline(&env, &replay);
    assert!(ok && err.contains("replayed 0, 1 already"), "{err}");
    assert_eq!(
        env.read(&env.input, 2, Duration::from_secs(5)).await.len(),
        1,
        "once each"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letter_replays").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_checks_every_line_first_and_keys_each_message_by_its_encounter() {
    let env = TestEnv::new("send", 1).await;
    let examples = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/encounters.jsonl"
    ))
    .unwrap();
    let events: Vec<serde_json::Value> = examples
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dir = std::env::temp_dir().join(format!("claimline-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A bad line anywhere: nothing is sent, and the line is named.
    let mut bad = events[1].clone();
    bad["encounter"]["version"] = serde_json::json!("2");
    let with_bad = dir.join("with-bad.jsonl");
    std::fs::write(&with_bad, format!("{}\n{bad}\n", events[0])).unwrap();
    let path = with_bad.to_str().unwrap();
    let topic = ["--topic", env.input.as_str()];
    let (ok, _, err) = claimline(&env, &[&["send"][..], &topic, &[path]].concat());
    assert!(!ok, "{err}");
    assert!(
        err.contains("line 2: encounter.version: must be an integer from 1 to 2147483647"),
        "{err}"
    );
    // A file with a byte-order mark and CRLF line ends, as Windows tools write.
    let good = dir.join("good.jsonl");
    let body: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&good, format!("\u{feff}{}\r\n", body.join("\r\n"))).unwrap();
    let (ok, _, err) = claimline(
        &env,
        &[&["send"][..], &topic, &[good.to_str().unwrap()]].concat(),
    );
    assert!(ok, "{err}");
    let got = env
        .read(&env.input, events.len() + 1, Duration::from_secs(20))
        .await;
    assert_eq!(got.len(), events.len(), "only the good file's lines arrive");
    for (m, e) in got.iter().zip(&events) {
        assert_eq!(
            m.key.as_deref(),
            e["encounter"]["encounter_id"].as_str(),
            "keyed by encounter id"
        );
        assert_eq!(&m.json(), e);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
