//! The log's read side on Kafka: a consumer of the directors' group, which
//! commits by hand, reports its lag, and is replaced by a new one when it
//! stays out of its group although Kafka answers.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::Notify;

use super::partitions::{EPOCH_HEADER, MARKER_HEADER};
use super::{Done, KafkaConfig, LogError, LogReader, Record};
use crate::metrics::{DirectorMetrics, PartitionLabels};

/// The prefix of a commit's metadata, before the epoch below which the
/// partition is done.
const EPOCH_DONE: &str = "epoch-done-below=";

/// How often the consumer reports its statistics: its lag and whether it
/// is in its group.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

/// How long a consumer may be out of its group (rejoining after a
/// rebalance or an outage) before it is taken as stuck. librdkafka can stay
/// so for good after the broker comes back (seen after a restart of Kafka
/// that outlasted the session): a new consumer joins in its place.
const REJOIN_WITHIN: Duration = Duration::from_secs(30);

/// Calls of `next` further apart than this are not one stretch of reading:
/// the director paused between them (backpressure), and a rebalance may
/// have waited for it meanwhile.
const READING_GAP: Duration = Duration::from_secs(1);

type GroupConsumer = StreamConsumer<ReaderContext>;

pub struct KafkaReader {
    shared: Arc<Shared>,
}

/// What the reader shares with a rejoin it started.
struct Shared {
    consumer: RwLock<Arc<GroupConsumer>>,
    /// Wakes a read waiting on a consumer that was replaced.
    replaced: Notify,
    /// What made it, to make its replacement.
    settings: ClientConfig,
    metrics: DirectorMetrics,
    topic: String,
    reading: Mutex<Reading>,
    /// When a new consumer was last tried.
    rejoin_tried: Mutex<Option<Instant>>,
}

impl KafkaReader {
    /// Joins `group` and subscribes to the topic.
    pub fn new(
        config: &KafkaConfig,
        group: &str,
        metrics: DirectorMetrics,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut settings = config.client_config();
        settings
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
            .set(
                "statistics.interval.ms",
                STATISTICS_EVERY.as_millis().to_string(),
            );
        let consumer = group_consumer(&settings, &metrics)?;
        consumer.subscribe(&[&config.topic])?;
        let now = Instant::now();
        Ok(KafkaReader {
            shared: Arc::new(Shared {
                consumer: RwLock::new(Arc::new(consumer)),
                replaced: Notify::new(),
                settings,
                metrics,
                topic: config.topic.clone(),
                reading: Mutex::new(Reading {
                    since: now,
                    last: now,
                }),
                rejoin_tried: Mutex::default(),
            }),
        })
    }
}

impl Shared {
    fn consumer(&self) -> Arc<GroupConsumer> {
        self.consumer.read().expect("the consumer").clone()
    }

    /// Whether the consumer is to be replaced: it has been out of its group
    /// for [`REJOIN_WITHIN`], as it reported while the director went on
    /// reading since `reading_since`, and no new one was tried within that
    /// time. Noted as tried when it is.
    fn stuck(&self, reading_since: Instant) -> Option<Duration> {
        let out_for = self
            .consumer()
            .context()
            .membership
            .out_of_group_for(reading_since)?;
        let mut tried = self.rejoin_tried.lock().expect("rejoin_tried");
        if out_for < REJOIN_WITHIN || tried.is_some_and(|at| at.elapsed() < REJOIN_WITHIN) {
            return None;
        }
        *tried = Some(Instant::now());
        Some(out_for)
    }

    /// Replaces the consumer with a new one, if Kafka answers the new one
    /// (a stuck consumer may not reach Kafka even once it is back; during
    /// an outage a new one would fare no better).
    async fn rejoin(self: Arc<Self>, out_for: Duration) {
        let fresh = match group_consumer(&self.settings, &self.metrics) {
            Ok(fresh) => Arc::new(fresh),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a new consumer to rejoin the group");
                return;
            }
        };
        if !reachable(fresh.clone(), &self.topic).await {
            close_aside(fresh);
            return;
        }
        if let Err(e) = fresh.subscribe(&[&self.topic]) {
            tracing::warn!(error = %e, "a new consumer cannot subscribe to rejoin the group");
            close_aside(fresh);
            return;
        }
        tracing::warn!(
            out_of_group_secs = out_for.as_secs(),
            "the consumer is stuck out of its group although Kafka answers: a new one joins in its place"
        );
        let stuck = std::mem::replace(&mut *self.consumer.write().expect("the consumer"), fresh);
        self.replaced.notify_waiters();
        close_aside(stuck);
    }
}

/// One stretch of the director's reading: `next` called without a pause
/// longer than [`READING_GAP`].
#[derive(Debug, Clone, Copy)]
struct Reading {
    since: Instant,
    last: Instant,
}

impl Reading {
    /// Notes a call of `next` at `now`; returns when this stretch began.
    fn called(&mut self, now: Instant) -> Instant {
        if now.duration_since(self.last) > READING_GAP {
            self.since = now;
        }
        self.last = now;
        self.since
    }
}

/// A consumer made with `settings`, not subscribed yet.
fn group_consumer(
    settings: &ClientConfig,
    metrics: &DirectorMetrics,
) -> Result<GroupConsumer, rdkafka::error::KafkaError> {
    settings.create_with_context(ReaderContext {
        metrics: metrics.clone(),
        membership: Membership::default(),
    })
}

/// Drops `consumer` on a thread of its own, once no read or commit holds
/// it any more: the last drop waits until the consumer has closed, which a
/// stuck one may never do, so it must not be the runtime's.
fn close_aside(mut consumer: Arc<GroupConsumer>) {
    std::thread::spawn(move || {
        loop {
            match Arc::try_unwrap(consumer) {
                Ok(last) => return drop(last),
                Err(shared) => consumer = shared,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// Whether Kafka answers `consumer` about `topic`.
async fn reachable(consumer: Arc<GroupConsumer>, topic: &str) -> bool {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(2))
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// A message as the director reads it.
fn record(message: &BorrowedMessage<'_>) -> Record {
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
    Record {
        partition: message.partition(),
        offset: message.offset(),
        epoch,
        marker,
        payload: message.payload().unwrap_or_default().to_vec(),
    }
}

#[async_trait]
impl LogReader for KafkaReader {
    async fn next(&self) -> Result<Record, LogError> {
        let reading_since = self
            .shared
            .reading
            .lock()
            .expect("reading")
            .called(Instant::now());
        // On a task of its own: the director drops this call's future
        // whenever something else comes first.
        if let Some(out_for) = self.shared.stuck(reading_since) {
            tokio::spawn(self.shared.clone().rejoin(out_for));
        }
        loop {
            // Made first: a replacement from here on ends this wait.
            let replaced = self.shared.replaced.notified();
            let consumer = self.shared.consumer();
            tokio::select! {
                message = consumer.recv() => {
                    return message
                        .map(|m| record(&m))
                        .map_err(|e| LogError::Read(e.to_string()));
                }
                () = replaced => {}
            }
        }
    }

    async fn commit(&self, done: &[Done], wait: bool) -> Result<(), LogError> {
        let consumer = self.shared.consumer();
        let owned = consumer
            .assignment()
            .map_err(|e| LogError::Read(format!("cannot read the assignment: {e}")))?;
        let mut list = TopicPartitionList::new();
        for done in done {
            if owned
                .find_partition(&self.shared.topic, done.partition)
                .is_some()
            {
                let mut entry = list.add_partition(&self.shared.topic, done.partition);
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
        consumer
            .commit(&list, mode)
            .map_err(|e| LogError::Read(format!("committing offsets failed: {e}")))
    }

    async fn epoch_done_below(&self, epoch: u32) -> Result<bool, LogError> {
        let (consumer, topic) = (self.shared.consumer(), self.shared.topic.clone());
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
        list.add_partition(&self.shared.topic, partition);
        if let Err(e) = self.shared.consumer().pause(&list) {
            tracing::warn!(partition, error = %e, "cannot pause a partition");
        }
    }

    fn resume(&self, partitions: &[i32]) {
        let mut list = TopicPartitionList::new();
        for &partition in partitions {
            list.add_partition(&self.shared.topic, partition);
        }
        if let Err(e) = self.shared.consumer().resume(&list) {
            tracing::warn!(error = %e, "cannot resume partitions");
        }
    }

    async fn is_reachable(&self) -> bool {
        reachable(self.shared.consumer(), &self.shared.topic).await
    }
}

/// The consumer's context: from librdkafka's statistics, reports the
/// consumer lag as metrics (how many records of each owned partition are
/// not read yet; the autoscaler scales directors on it) and notes whether
/// the consumer is in its group.
pub struct ReaderContext {
    metrics: DirectorMetrics,
    membership: Membership,
}

impl ClientContext for ReaderContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(group) = &statistics.cgrp {
            self.membership.observe(group.join_state == "steady");
        }
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

impl ConsumerContext for ReaderContext {}

/// Whether the consumer is in its group ("steady": assigned its share, or
/// none, and reading), as its statistics last said.
#[derive(Debug, Default)]
pub struct Membership(Mutex<Option<Observed>>);

#[derive(Debug, Clone, Copy)]
struct Observed {
    /// Since when it has been out of the group, if it is.
    out_since: Option<Instant>,
    /// When the statistics last said so.
    at: Instant,
}

impl Membership {
    fn observe(&self, in_group: bool) {
        let now = Instant::now();
        let mut observed = self.0.lock().expect("membership");
        let out_since = match (in_group, *observed) {
            (true, _) => None,
            (
                false,
                Some(Observed {
                    out_since: Some(since),
                    ..
                }),
            ) => Some(since),
            (false, _) => Some(now),
        };
        *observed = Some(Observed { out_since, at: now });
    }

    /// How long the consumer has been out of its group, if statistics
    /// reported after `after` say it is.
    fn out_of_group_for(&self, after: Instant) -> Option<Duration> {
        let observed = (*self.0.lock().expect("membership"))?;
        (observed.at > after).then_some(observed.out_since?.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_the_group_counts_from_the_first_report_that_says_so() {
        let membership = Membership::default();
        let before = Instant::now();
        assert_eq!(
            membership.out_of_group_for(before),
            None,
            "nothing reported"
        );
        membership.observe(false);
        let first = membership.out_of_group_for(before).expect("out");
        std::thread::sleep(Duration::from_millis(20));
        membership.observe(false);
        let second = membership.out_of_group_for(before).expect("still out");
        assert!(
            second >= first + Duration::from_millis(20),
            "{first:?} then {second:?}"
        );
        membership.observe(true);
        assert_eq!(membership.out_of_group_for(before), None, "back in");
    }

    #[test]
    fn a_pause_in_reading_starts_a_new_stretch() {
        let start = Instant::now();
        let mut reading = Reading {
            since: start,
            last: start,
        };
        let step = READING_GAP / 2;
        assert_eq!(reading.called(start + step), start);
        assert_eq!(reading.called(start + step * 2), start, "one stretch");
        let resumed = start + step * 2 + READING_GAP * 3;
        assert_eq!(reading.called(resumed), resumed, "after a pause");
    }

    #[test]
    fn a_report_from_before_reading_began_does_not_count() {
        // While the director does not read (backpressure) a rebalance waits
        // for it: what was reported then says nothing about being stuck.
        let membership = Membership::default();
        membership.observe(false);
        let reading_since = Instant::now();
        assert_eq!(membership.out_of_group_for(reading_since), None);
        membership.observe(false);
        assert!(membership.out_of_group_for(reading_since).is_some());
    }
}
