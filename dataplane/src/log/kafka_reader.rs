//! The log's read side on Kafka: a consumer of the directors' group, which
//! commits by hand and reports its lag.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::{KafkaConfig, LogError, LogReader, Record};
use crate::metrics::{DirectorMetrics, PartitionLabels};

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
        Ok(Record {
            partition: message.partition(),
            offset: message.offset(),
            payload: message.payload().unwrap_or_default().to_vec(),
        })
    }

    async fn commit(&self, offsets: &[(i32, i64)], wait: bool) -> Result<(), LogError> {
        let owned = self
            .consumer
            .assignment()
            .map_err(|e| LogError::Read(format!("cannot read the assignment: {e}")))?;
        let mut list = TopicPartitionList::new();
        for &(partition, offset) in offsets {
            if owned.find_partition(&self.topic, partition).is_some() {
                let _ = list.add_partition_offset(&self.topic, partition, Offset::Offset(offset));
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
