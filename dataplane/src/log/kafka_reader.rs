//! The log's read side on Kafka: a consumer of the directors' group, which
//! commits by hand and reports its lag.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::partitions::{EPOCH_HEADER, MARKER_HEADER};
use super::{Done, KafkaConfig, LogError, LogReader, Record};
use crate::metrics::{DirectorMetrics, PartitionLabels};

/// The prefix of a commit's metadata, before the epoch below which the
/// partition is done.
const EPOCH_DONE: &str = "epoch-done-below=";

pub struct KafkaReader {
    consumer: Arc<StreamConsumer<LagContext>>,
    topic: String,
}

impl KafkaReader {
    /// Joins `group` and subscribes to the topic.
    pub fn new(
        config: &KafkaConfig,
        group: &str,
        metrics: DirectorMetrics,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let consumer: StreamConsumer<LagContext> = config
            .client_config()
            .set("group.id", group)
            // Offsets are committed by hand, only up to what is done.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // While the inbox is away the director reads nothing, for as long
            // as the outage lasts: it must not be thrown out of the group.
            .set("max.poll.interval.ms", "1800000")
            // A director that dies (no chance to leave the group) holds its
            // partitions until its session times out: keep that short.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "3000")
            // Statistics carry the consumer lag, reported as a metric.
            .set("statistics.interval.ms", "5000")
            .create_with_context(LagContext { metrics })?;
        consumer.subscribe(&[&config.topic])?;
        Ok(KafkaReader {
            consumer: Arc::new(consumer),
            topic: config.topic.clone(),
        })
    }
}

#[async_trait]
impl LogReader for KafkaReader {
    async fn next(&self) -> Result<Record, LogError> {
        let message = self
            .consumer
            .recv()
            .await
            .map_err(|e| LogError::Read(e.to_string()))?;
        let (mut epoch, mut marker) = (0, false);
        for header in message.headers().into_iter().flat_map(|h| h.iter()) {
            match header.key {
                EPOCH_HEADER => {
                    epoch = header
                        .value
                        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
                        .unwrap_or(0)
                }
                MARKER_HEADER => marker = true,
                _ => {}
            }
        }
        Ok(Record {
            partition: message.partition(),
            offset: message.offset(),
            epoch,
            marker,
            payload: message.payload().unwrap_or_default().to_vec(),
        })
    }

    async fn commit(&self, done: &[Done], wait: bool) -> Result<(), LogError> {
        let owned = self
            .consumer
            .assignment()
            .map_err(|e| LogError::Read(format!("cannot read the assignment: {e}")))?;
        let mut list = TopicPartitionList::new();
        for done in done {
            if owned.find_partition(&self.topic, done.partition).is_some() {
                let mut entry = list.add_partition(&self.topic, done.partition);
                let _ = entry.set_offset(Offset::Offset(done.offset));
                entry.set_metadata(format!("{EPOCH_DONE}{}", done.epoch));
            }
        }
        if list.count() == 0 {
            return Ok(());
        }
        let mode = match wait {
            true => CommitMode::Sync,
            false => CommitMode::Async,
        };
        self.consumer
            .commit(&list, mode)
            .map_err(|e| LogError::Read(format!("committing offsets failed: {e}")))
    }

    async fn epoch_done_below(&self, epoch: u32) -> Result<bool, LogError> {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::new();
            for partition in 0..epoch as i32 {
                list.add_partition(&topic, partition);
            }
            let committed = consumer
                .committed_offsets(list, Duration::from_secs(5))
                .map_err(|e| LogError::Read(format!("cannot read committed offsets: {e}")))?;
            Ok(committed.elements().iter().all(|e| {
                e.metadata()
                    .strip_prefix(EPOCH_DONE)
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|done| done >= epoch)
            }))
        })
        .await
        .map_err(|e| LogError::Read(e.to_string()))?
    }

    fn pause(&self, partition: i32) {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        if let Err(e) = self.consumer.pause(&list) {
            tracing::warn!(partition, error = %e, "cannot pause a partition");
        }
    }

    fn resume(&self, partitions: &[i32]) {
        let mut list = TopicPartitionList::new();
        for &partition in partitions {
            list.add_partition(&self.topic, partition);
        }
        if let Err(e) = self.consumer.resume(&list) {
            tracing::warn!(error = %e, "cannot resume partitions");
        }
    }

    async fn is_reachable(&self) -> bool {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

/// The consumer's context: reports the consumer lag, from librdkafka's
/// statistics, as metrics (how many records of each owned partition are not
/// read yet). The autoscaler scales directors on it.
pub struct LagContext {
    metrics: DirectorMetrics,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for (&partition, stats) in &topic.partitions {
                // librdkafka reports -1 where the lag is not known: a
                // partition not owned, one without a committed offset yet,
                // and its internal partition, numbered -1.
                let labels = PartitionLabels {
                    partition: i64::from(partition),
                };
                if partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&labels)
                        .set(stats.consumer_lag);
                } else {
                    self.metrics.consumer_lag.remove(&labels);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {}
