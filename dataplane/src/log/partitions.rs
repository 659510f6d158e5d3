//! Where a recipient's notifications go in the Kafka topic, and how that
//! changes safely when the topic grows.
//!
//! A recipient's notifications go to partition `fnv1a(recipient) % count`.
//! Growing the topic changes `count` and so moves recipients to other
//! partitions. Their order holds across the move by two rules (the whole
//! argument is in `docs/ordering.md`):
//!
//! - **Receivers** (this module) stamp each record with the partition count
//!   it was placed with, its *epoch*, and never write a new epoch until every
//!   write of the old one is finished. A receiver reads the count every
//!   `refresh` and stops writing when its view is older than `stale_after`,
//!   so `stale_after` after a growth no receiver starts a write with the old
//!   count, and a produce timeout later every such write is acknowledged or
//!   has failed. A receiver that sees a new count waits out that *fence*
//!   before writing with it. Then it writes a *marker* of the new epoch to
//!   every partition, so that each one shows where its older epochs end.
//! - **Directors** (`director::epochs`) route a record of epoch M only once
//!   every partition is done with its records of earlier epochs.
//!
//! Epochs also make positions: `epoch << 40 | offset` grows for a recipient
//! across a move, although offsets in its new partition start lower.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::producer::Producer;
use super::renew::{Failing, RENEW_AFTER};
use super::{KafkaConfig, LogError};

/// The record header that carries the epoch (the partition count), in decimal.
pub const EPOCH_HEADER: &str = "notif-epoch";
/// The record header of a marker; a marker carries no notification.
pub const MARKER_HEADER: &str = "notif-marker";

/// The bits of a position that hold the offset. The epoch takes the bits
/// above, and positions stay below 2^53 (exact as JSON numbers in every
/// language) while topics have fewer than 8,192 partitions.
const OFFSET_BITS: u32 = 40;

/// The partition of `recipient` in a topic of `count` partitions. FNV-1a is
/// fixed here, not left to a client library, because every receiver must
/// agree on it, whatever its version.
pub fn partition_of(recipient: &str, count: u32) -> i32 {
    let hash = recipient.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % u64::from(count.max(1))) as i32
}

/// A notification's position: its epoch, then its offset.
pub fn position(epoch: u32, offset: i64) -> u64 {
    (u64::from(epoch) << OFFSET_BITS) | (offset as u64 & ((1 << OFFSET_BITS) - 1))
}

/// A receiver's view of the partition count.
#[derive(Debug, Clone, Copy)]
struct View {
    /// 0 until the count is first read.
    count: u32,
    /// When writing with `count` becomes safe: the end of the fence.
    usable_at: Instant,
    /// When the count was last read.
    read_at: Instant,
}

/// The receiver's placement of records: the current epoch, kept fresh by a
/// task that reads the topic's partition count.
pub struct Placement {
    view: Arc<Mutex<View>>,
    /// True once the count is first read.
    counted: tokio::sync::watch::Receiver<bool>,
    stale_after: Duration,
    refresher: tokio::task::JoinHandle<()>,
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

impl Placement {
    pub fn start(config: &KafkaConfig, producer: Arc<Producer>) -> Placement {
        let now = Instant::now();
        let view = Arc::new(Mutex::new(View {
            count: 0,
            usable_at: now,
            read_at: now,
        }));
        let (counted_tx, counted) = tokio::sync::watch::channel(false);
        let refresh = Refresh {
            config: config.clone(),
            producer,
            counter: Mutex::new(Counter::default()),
            view: view.clone(),
            counted: counted_tx,
            fence: config.fence(),
        };
        Placement {
            view,
            counted,
            stale_after: config.stale_after(),
            refresher: tokio::spawn(refresh.run()),
        }
    }

    /// Completes once the partition count is first read.
    pub async fn counted(&self) {
        let mut counted = self.counted.clone();
        // An error only when the refresher is gone, and then no count comes.
        if counted.wait_for(|counted| *counted).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the partition count is known, and recently enough to write.
    pub fn is_current(&self) -> bool {
        let view = *self.view.lock().unwrap_or_else(|e| e.into_inner());
        view.count > 0 && view.read_at.elapsed() <= self.stale_after
    }

    /// The epoch to write with now, waiting out a fence. An error when the
    /// count is not known, or not known recently enough to be sure that it
    /// did not change.
    pub async fn epoch(&self) -> Result<u32, LogError> {
        loop {
            let view = *self.view.lock().unwrap_or_else(|e| e.into_inner());
            if view.count == 0 {
                // Just started: the first read is on its way.
                if view.read_at.elapsed() < self.stale_after {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                return Err(LogError::Unavailable(
                    "the topic's partition count is not known yet".into(),
                ));
            }
            if view.read_at.elapsed() > self.stale_after {
                return Err(LogError::Unavailable(
                    "cannot read the topic's partition count".into(),
                ));
            }
            if Instant::now() < view.usable_at {
                tokio::time::sleep_until(view.usable_at).await;
                continue;
            }
            return Ok(view.count);
        }
    }
}

struct Refresh {
    config: KafkaConfig,
    producer: Arc<Producer>,
    counter: Mutex<Counter>,
    view: Arc<Mutex<View>>,
    counted: tokio::sync::watch::Sender<bool>,
    fence: Duration,
}

impl Refresh {
    async fn run(self) {
        // The epoch whose markers are still to be written.
        let mut unmarked = None;
        let mut tick = tokio::time::interval(self.config.partition_refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.read_count().await {
                // A count the producer does not know yet would fail its
                // writes to the new partitions: it is taken once the
                // producer's metadata has it, a tick or so later.
                Ok(count) if count > self.known() && !self.producer_knows(count).await => {}
                Ok(count) => {
                    if let Some(epoch) = self.observe(count).await {
                        unmarked = Some(epoch);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the topic's partition count"),
            }
            let view = *self.view.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(epoch) = unmarked
                && Instant::now() >= view.usable_at
            {
                match self.mark(epoch).await {
                    Ok(()) => unmarked = None,
                    Err(e) => tracing::warn!(error = %e, epoch, "cannot write the epoch's markers"),
                }
            }
        }
    }

    fn known(&self) -> u32 {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).count
    }

    /// Whether the producer's metadata, which places its writes, has the
    /// topic with at least `count` partitions; asking refreshes it.
    async fn producer_knows(&self, count: u32) -> bool {
        let (producer, topic) = (self.producer.get(), self.config.topic.clone());
        let timeout = self.config.partition_refresh.max(Duration::from_secs(1));
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|metadata| partition_count(&metadata, &topic).is_ok_and(|n| n >= count))
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }

    /// Takes a count just read. Returns the new epoch when it changed.
    async fn observe(&self, count: u32) -> Option<u32> {
        let now = Instant::now();
        let known = {
            let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            view.read_at = now;
            view.count
        };
        if count <= known {
            if count < known {
                tracing::error!(count, known, "the topic has fewer partitions than before");
            }
            return None;
        }
        // At start, the fence is needed only when the topic grew lately.
        let fenced = known != 0 || !self.grew_long_ago(count).await;
        let usable_at = if fenced { now + self.fence } else { now };
        tracing::info!(
            epoch = count,
            fence_ms = (usable_at - now).as_millis() as u64,
            "new partition count"
        );
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = View {
            count,
            usable_at,
            read_at: now,
        };
        self.counted.send_replace(true);
        Some(count)
    }

    async fn read_count(&self) -> Result<u32, String> {
        let client = self.lock_counter().client(&self.config)?;
        let topic = self.config.topic.clone();
        let timeout = self.config.partition_refresh.max(Duration::from_secs(1));
        let read = tokio::task::spawn_blocking(move || {
            let metadata = client
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| e.to_string())?;
            partition_count(&metadata, &topic)
        })
        .await
        .map_err(|e| e.to_string())?;
        self.lock_counter().outcome(read.is_ok(), RENEW_AFTER);
        read
    }

    fn lock_counter(&self) -> std::sync::MutexGuard<'_, Counter> {
        self.counter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the topic reached `count` partitions more than a fence ago:
    /// its newest partition, which did not exist before, holds a record older
    /// than that. When this cannot be shown, the caller fences.
    async fn grew_long_ago(&self, count: u32) -> bool {
        let (config, topic) = (self.config.client_config(), self.config.topic.clone());
        let newest = count as i32 - 1;
        let before = ms_ago(self.fence);
        tokio::task::spawn_blocking(move || {
            let Ok(consumer) = config.create::<BaseConsumer>() else {
                return false;
            };
            let timeout = Timeout::After(Duration::from_secs(2));
            let Ok((low, high)) = consumer.fetch_watermarks(&topic, newest, timeout) else {
                return false;
            };
            let mut query = TopicPartitionList::new();
            if query
                .add_partition_offset(&topic, newest, Offset::Offset(before))
                .is_err()
            {
                return false;
            }
            let Ok(found) = consumer.offsets_for_times(query, timeout) else {
                return false;
            };
            // The first record at or after `before`; past the end when none is.
            match found.find_partition(&topic, newest).map(|e| e.offset()) {
                Some(Offset::Offset(first_young)) => first_young > low,
                Some(Offset::End) => high > low,
                _ => false,
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Writes a marker of `epoch` to every partition.
    async fn mark(&self, epoch: u32) -> Result<(), String> {
        let epoch_text = epoch.to_string();
        let producer = self.producer.get();
        let writes = (0..epoch as i32).map(|partition| {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: EPOCH_HEADER,
                    value: Some(&epoch_text),
                })
                .insert(Header {
                    key: MARKER_HEADER,
                    value: Some(""),
                });
            let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(&self.config.topic)
                .partition(partition)
                .payload(&[][..])
                .headers(headers);
            producer.send(record, self.config.produce_timeout)
        });
        for result in futures::future::join_all(writes).await {
            result.map_err(|(e, _)| e.to_string())?;
        }
        tracing::info!(epoch, "epoch markers written");
        Ok(())
    }
}

/// The client that reads the partition count, apart from the producer's, and
/// made anew when reads have failed for [`RENEW_AFTER`] (see `renew`; a
/// minute without a usable connection was seen after a slow Kafka restart).
/// Meanwhile publishes are refused, so this is what ends an outage.
#[derive(Default)]
struct Counter {
    client: Option<Arc<BaseConsumer>>,
    failing: Failing,
}

impl Counter {
    fn client(&mut self, config: &KafkaConfig) -> Result<Arc<BaseConsumer>, String> {
        if self.client.is_none() {
            let client = config.client_config().create().map_err(|e| e.to_string())?;
            self.client = Some(Arc::new(client));
        }
        Ok(self.client.clone().expect("made above"))
    }

    fn outcome(&mut self, read: bool, renew_after: Duration) {
        let now = std::time::Instant::now();
        if self.failing.note(!read, now, renew_after) && self.client.take().is_some() {
            tracing::info!("reading the partition count with a new Kafka client");
        }
    }
}

/// The partition count of `topic` in `metadata`.
fn partition_count(metadata: &Metadata, topic: &str) -> Result<u32, String> {
    match metadata.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as u32)
        }
        Some(t) => Err(format!("topic {topic}: {:?}", t.error())),
        None => Err(format!("topic {topic} is not in the metadata")),
    }
}

/// Milliseconds since the Unix epoch, `ago` before now.
fn ms_ago(ago: Duration) -> i64 {
    crate::notification::now_ms().saturating_sub(ago.as_millis() as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_has_one_partition_per_count_and_moves_when_it_grows() {
        assert_eq!(partition_of("user-1", 1), 0);
        let before: Vec<i32> = (0..100)
            .map(|i| partition_of(&format!("user-{i}"), 2))
            .collect();
        assert!(before.iter().all(|p| (0..2).contains(p)));
        assert_eq!(before[7], partition_of("user-7", 2), "stable");
        let moved = (0..100)
            .filter(|i| partition_of(&format!("user-{i}"), 4) != before[*i])
            .count();
        assert!((25..75).contains(&moved), "{moved} of 100 moved");
    }

    #[test]
    fn the_count_reader_gets_a_new_client_once_reads_failed_for_a_while() {
        let config = KafkaConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            topic: "t".into(),
            properties: vec![],
            produce_timeout: Duration::from_secs(1),
            partition_refresh: Duration::from_secs(1),
        };
        let mut counter = Counter::default();
        let first = counter.client(&config).expect("a client");
        counter.outcome(false, Duration::from_secs(60));
        assert!(
            Arc::ptr_eq(&first, &counter.client(&config).unwrap()),
            "kept"
        );
        counter.outcome(true, Duration::ZERO);
        counter.outcome(false, Duration::ZERO);
        let second = counter.client(&config).expect("a client");
        assert!(!Arc::ptr_eq(&first, &second), "renewed");
    }

    #[test]
    fn positions_grow_across_epochs_and_stay_exact_in_json() {
        assert_eq!(position(0, 1042), 1042);
        assert!(position(4, 0) > position(2, 1_000_000));
        assert!(position(2, 7) > position(2, 6));
        assert!(position(8191, (1 << 40) - 1) < 1 << 53);
    }
}
