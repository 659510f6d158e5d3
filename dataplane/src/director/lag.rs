//! Consumer lag, from librdkafka's statistics: how many records of each
//! owned partition are not read yet. The autoscaler scales directors on it.

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::statistics::Statistics;

use crate::metrics::{DirectorMetrics, PartitionLabels};

/// The director consumer's context: reports its lag as metrics.
pub struct LagContext {
    pub metrics: DirectorMetrics,
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
