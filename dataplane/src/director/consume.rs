//! The director's loop: read the log as one reader of the group, hand each
//! notification to its recipient's lane, and commit each partition up to the
//! last offset that is done.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::lanes::Lanes;
use super::offsets::PartitionOffsets;
use super::route::{Outcome, Router};
use crate::inbox::Positioned;
use crate::log::LogReader;
use crate::metrics::{DirectorMetrics, OutcomeLabels};
use crate::notification::Notification;

/// One notification read from the log, with where it was read.
#[derive(Clone)]
struct Item {
    partition: i32,
    offset: i64,
    positioned: Arc<Positioned>,
}

pub struct Consume {
    pub log: Arc<dyn LogReader>,
    pub router: Arc<Router>,
    pub metrics: DirectorMetrics,
    /// The most notifications held (being routed or waiting in a lane). When
    /// routing stalls (the inbox is away), reading stops here: backpressure.
    pub max_held: usize,
    pub commit_interval: Duration,
    /// How long a stop waits for notifications being routed.
    pub drain_timeout: Duration,
}

type Done = (String, i32, i64, Outcome);

impl Consume {
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut lanes: Lanes<Item> = Lanes::default();
        let mut offsets: HashMap<i32, PartitionOffsets> = HashMap::new();
        let mut running: JoinSet<Done> = JoinSet::new();
        let mut commit = tokio::time::interval(self.commit_interval);
        tokio::pin!(shutdown);

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = running.join_next() => {
                    if let Some(next) = self.finish(done, &mut lanes, &mut offsets) {
                        self.start(next, &mut running);
                    }
                }
                record = self.log.next(), if lanes.len() < self.max_held => match record {
                    Ok(record) => {
                        let (partition, offset) = (record.partition, record.offset);
                        offsets.entry(partition).or_default().take(offset);
                        match serde_json::from_slice::<Notification>(&record.payload) {
                            Ok(notification) => {
                                let recipient = notification.recipient.clone();
                                let positioned = Positioned { position: offset as u64, notification };
                                let item = Item { partition, offset, positioned: Arc::new(positioned) };
                                if let Some(head) = lanes.push(&recipient, item) {
                                    self.start(head, &mut running);
                                }
                            }
                            Err(e) => {
                                // Not a notification: no retry can fix it. Skip it, loudly.
                                tracing::error!(partition, offset, error = %e, "skipping a record that is not a notification");
                                self.metrics.invalid.inc();
                                offsets.entry(partition).or_default().done(offset);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading from the log failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = commit.tick() => self.commit(&offsets, false).await,
            }
        }

        // Drain: what is being routed may finish; what waits in a lane is
        // left for the next owner of the partition, from the committed offset.
        tracing::info!(
            routing = running.len(),
            waiting = lanes.len() - running.len(),
            "director draining"
        );
        let drain = async {
            while let Some(done) = running.join_next().await {
                self.finish(done, &mut lanes, &mut offsets);
            }
        };
        if tokio::time::timeout(self.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                abandoned = running.len(),
                "drain timed out; the rest will be replayed"
            );
        }
        self.commit(&offsets, true).await;
    }

    fn start(&self, item: Item, running: &mut JoinSet<Done>) {
        let router = self.router.clone();
        running.spawn(async move {
            let outcome = router.route(&item.positioned).await;
            (
                item.positioned.notification.recipient.clone(),
                item.partition,
                item.offset,
                outcome,
            )
        });
    }

    /// Records a routed notification as done; returns the next of its lane.
    fn finish(
        &self,
        done: Result<Done, tokio::task::JoinError>,
        lanes: &mut Lanes<Item>,
        offsets: &mut HashMap<i32, PartitionOffsets>,
    ) -> Option<Item> {
        let (recipient, partition, offset, outcome) = match done {
            Ok(done) => done,
            Err(e) => {
                // A routing task cannot fail but by a bug; its offset stays
                // pending, so the commit stops before it and it is replayed.
                tracing::error!(error = %e, "a routing task failed");
                return None;
            }
        };
        self.metrics
            .routed
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
        if let Some(partition) = offsets.get_mut(&partition) {
            partition.done(offset);
        }
        lanes.finish(&recipient)
    }

    /// Commits the committable offset of every partition this reader owns.
    /// All of them, every time: a commit that failed is made again on the
    /// next tick.
    async fn commit(&self, offsets: &HashMap<i32, PartitionOffsets>, wait: bool) {
        let committable: Vec<(i32, i64)> = offsets
            .iter()
            .filter_map(|(&partition, tracked)| Some((partition, tracked.committable()?)))
            .collect();
        if committable.is_empty() {
            return;
        }
        if let Err(e) = self.log.commit(&committable, wait).await {
            // A partition taken away by a rebalance refuses the commit; its
            // new owner replays from the last commit that succeeded.
            tracing::warn!(error = %e, "committing offsets failed");
        }
    }
}
