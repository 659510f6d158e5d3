//! The log on Kafka: one topic, records keyed by recipient, written by an
//! idempotent producer with `acks=all`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use super::partitions::{EPOCH_HEADER, Placement, partition_of};
use super::producer::Producer;
use super::{Log, LogError};
use crate::notification::Notification;

/// How to reach Kafka and which topic to use.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub topic: String,
    /// Extra librdkafka properties (security.protocol, sasl.*, ssl.*, ...).
    pub properties: Vec<(String, String)>,
    /// How long a write may wait for the broker before it counts as failed.
    pub produce_timeout: Duration,
    /// How often a receiver reads the topic's partition count.
    pub partition_refresh: Duration,
}

impl KafkaConfig {
    pub(super) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// How old a receiver's partition count may be when it writes.
    pub(super) fn stale_after(&self) -> Duration {
        self.partition_refresh * 3
    }

    /// How long a receiver waits before writing with a new partition count:
    /// until no receiver can be writing with the old one (see `partitions`).
    pub(super) fn fence(&self) -> Duration {
        self.stale_after() + self.produce_timeout + Duration::from_millis(500)
    }
}

pub struct KafkaLog {
    producer: Arc<Producer>,
    placement: Placement,
    topic: String,
    /// How long a record may wait for room in the producer's queue.
    queue_timeout: Duration,
}

impl KafkaLog {
    pub fn new(config: &KafkaConfig) -> Result<Self, rdkafka::error::KafkaError> {
        let mut settings = config.client_config();
        settings
            // Durable before acknowledged, and no duplicates or reordering
            // from the producer's own retries.
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                config.produce_timeout.as_millis().to_string(),
            )
            // Small batches: latency matters more than bytes on the wire.
            .set("linger.ms", "2")
            .set("compression.type", "lz4");
        let producer = Arc::new(Producer::new(settings, config.produce_timeout)?);
        Ok(KafkaLog {
            placement: Placement::start(config, producer.clone()),
            producer,
            topic: config.topic.clone(),
            queue_timeout: config.produce_timeout,
        })
    }

    /// Completes once the topic's partition count is first read: a receiver
    /// is not ready before, since its first publishes would wait for it.
    pub async fn partition_count_read(&self) {
        self.placement.counted().await;
    }
}

#[async_trait]
impl Log for KafkaLog {
    async fn append(&self, batch: &[Notification]) -> Result<(), LogError> {
        let records = batch
            .iter()
            .map(|n| Ok((n.recipient.as_str(), serde_json::to_vec(n)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        let epoch = self.placement.epoch().await?;
        let epoch_text = epoch.to_string();
        // Queue every record before awaiting any, so the batch goes out in as
        // few requests as the producer can make of it.
        let producer = self.producer.get();
        let deliveries = records.iter().map(|(key, value)| {
            let headers = OwnedHeaders::new().insert(Header {
                key: EPOCH_HEADER,
                value: Some(&epoch_text),
            });
            producer.send(
                FutureRecord::to(&self.topic)
                    .partition(partition_of(key, epoch))
                    .key(*key)
                    .payload(value)
                    .headers(headers),
                self.queue_timeout,
            )
        });
        let failed = join_all(deliveries).await.into_iter().find_map(Result::err);
        self.producer
            .note(failed.is_none(), self.placement.is_current());
        match failed {
            Some((error, _)) => Err(LogError::Unavailable(error.to_string())),
            None => Ok(()),
        }
    }

    /// The topic's partition count was read recently enough to write: that
    /// read is Kafka answering, and without it every write is refused.
    async fn is_reachable(&self) -> bool {
        self.placement.is_current()
    }
}

/// The Kafka flags shared by the roles.
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka's bootstrap servers, `host:port[,host:port...]`.
    #[arg(long, env = "NOTIF_KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap_servers: String,
    /// The topic that carries the notifications.
    #[arg(long, env = "NOTIF_KAFKA_TOPIC", default_value = "notifications")]
    pub kafka_topic: String,
    /// An extra librdkafka property, `key=value` (security.protocol, sasl.*, ssl.*); repeatable.
    #[arg(long, env = "NOTIF_KAFKA_PROPERTIES", value_delimiter = ',', value_parser = parse_property)]
    pub kafka_property: Vec<(String, String)>,
    /// Seconds a write may wait for Kafka's acknowledgement before the publish answers 503.
    #[arg(long, env = "NOTIF_KAFKA_PRODUCE_TIMEOUT_SECS", default_value_t = 5)]
    pub kafka_produce_timeout_secs: u64,
    /// Milliseconds between a receiver's reads of the topic's partition count. A receiver
    /// whose count is three of these old answers 503; one that sees the topic grow holds
    /// publishes until no receiver can still be writing with the old count (docs/ordering.md).
    #[arg(long, env = "NOTIF_KAFKA_PARTITION_REFRESH_MS", default_value_t = 1000)]
    pub kafka_partition_refresh_ms: u64,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{s}` is not `key=value`")),
    }
}

impl KafkaArgs {
    pub fn config(&self) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: self.kafka_bootstrap_servers.clone(),
            topic: self.kafka_topic.clone(),
            properties: self.kafka_property.clone(),
            produce_timeout: Duration::from_secs(self.kafka_produce_timeout_secs.max(1)),
            partition_refresh: Duration::from_millis(self.kafka_partition_refresh_ms.max(10)),
        }
    }
}
