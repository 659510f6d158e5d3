//! Kafka helpers for tests: a topic of the test's own, and reading back
//! everything written to it.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::servers::kafka_bootstrap;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A client configuration that reaches the test Kafka.
pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka_bootstrap());
    config
}

/// Creates a topic named after `prefix`, with `partitions`, and returns its name.
pub async fn create_topic(prefix: &str, partitions: i32) -> String {
    create_topic_on(&kafka_bootstrap(), prefix, partitions).await
}

/// Creates a topic named after `prefix` on the Kafka at `bootstrap`.
pub async fn create_topic_on(bootstrap: &str, prefix: &str, partitions: i32) -> String {
    let topic = crate::unique_name(prefix);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("a Kafka admin client");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &options,
        )
        .await
        .expect("Kafka answers CreateTopics");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating topic {name} failed: {code}"));
    }
    topic
}

/// Grows `topic` to `partitions`, as the operator does when the spec asks.
pub async fn grow_topic(topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> =
        client_config().create().expect("a Kafka admin client");
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = admin
        .create_partitions(&[NewPartitions::new(topic, partitions)], &options)
        .await
        .expect("Kafka answers CreatePartitions");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("growing topic {name} failed: {code}"));
    }
}

/// A record read back: partition, key and value.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: Option<String>,
    pub value: Vec<u8>,
}

/// Every notification record in `topic` now, partition by partition, each in
/// offset order. The receivers' epoch markers (header `notif-marker`) are
/// left out.
pub async fn read_all(topic: &str) -> Vec<Record> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_all_blocking(&topic))
        .await
        .expect("the reading task")
}

fn read_all_blocking(topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = client_config()
        .set("group.id", crate::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer");
    let metadata = retried("the topic's metadata", || {
        consumer.fetch_metadata(Some(topic), TIMEOUT)
    });
    let mut records = Vec::new();
    for partition in metadata.topics()[0].partitions() {
        let id = partition.id();
        let (low, high) = retried("watermarks", || {
            consumer.fetch_watermarks(topic, id, TIMEOUT)
        });
        if high <= low {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, id, Offset::Offset(low))
            .expect("an assignment");
        consumer.assign(&assignment).expect("assign");
        let mut next = low;
        while next < high {
            let message = consumer
                .poll(TIMEOUT)
                .expect("a record before the timeout")
                .expect("a record, not an error");
            next = message.offset() + 1;
            let marker = message
                .headers()
                .is_some_and(|h| h.iter().any(|h| h.key == "notif-marker"));
            if marker {
                continue;
            }
            records.push(Record {
                partition: id,
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                value: message.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    records
}

/// `call`'s answer, asked again for a while: a broker that has just
/// restarted answers `NotLeaderForPartition` and the like until its
/// partitions have their leaders again.
fn retried<T>(what: &str, mut call: impl FnMut() -> rdkafka::error::KafkaResult<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match call() {
            Ok(answer) => return answer,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}
