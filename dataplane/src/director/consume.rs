//! The director's loop: read the log as one reader of the group, hand each
//! notification to its recipient's lane, and commit each partition up to the
//! last offset that is done.
//!
//! A record of an epoch later than the open one waits, its partition paused,
//! until every partition is done with the earlier epochs: that keeps each
//! recipient's order when the topic grows (see `log::partitions`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::lanes::Lanes;
use super::offsets::PartitionOffsets;
use super::route::{Outcome, Router};
use crate::inbox::Positioned;
use crate::log::{self, LogReader, Record};
use crate::metrics::{DirectorMetrics, OutcomeLabels};
use crate::notification::Notification;

/// How often a waiting epoch is checked.
const EPOCH_CHECK: Duration = Duration::from_millis(200);

/// One notification read from the log, with where it was read.
#[derive(Clone)]
struct Item {
    partition: i32,
    offset: i64,
    epoch: u32,
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

type Finished = (String, i32, i64, Outcome);

/// What the loop holds.
#[derive(Default)]
struct State {
    lanes: Lanes<Item>,
    offsets: HashMap<i32, PartitionOffsets>,
    running: JoinSet<Finished>,
    /// Records of this epoch or an earlier one are routed as they come.
    open_epoch: u32,
    /// Records of a later epoch, in the order read; their partitions are
    /// paused meanwhile.
    waiting: VecDeque<Item>,
}

impl Consume {
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut state = State::default();
        let mut commit = tokio::time::interval(self.commit_interval);
        let mut epoch_check = tokio::time::interval(EPOCH_CHECK);
        tokio::pin!(shutdown);

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = state.running.join_next() => {
                    if let Some(next) = self.finish(done, &mut state) {
                        self.start(next, &mut state.running);
                    }
                }
                record = self.log.next(), if state.lanes.len() < self.max_held => match record {
                    Ok(record) => self.take(record, &mut state),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading from the log failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = epoch_check.tick(), if !state.waiting.is_empty() => self.open_next_epoch(&mut state).await,
                _ = commit.tick() => self.commit(&state.offsets, false).await,
            }
        }

        // Drain: what is being routed may finish; what waits in a lane is
        // left for the next owner of the partition, from the committed offset.
        tracing::info!(
            routing = state.running.len(),
            waiting = state.lanes.len() - state.running.len() + state.waiting.len(),
            "director draining"
        );
        let drain = async {
            while let Some(done) = state.running.join_next().await {
                self.finish(done, &mut state);
            }
        };
        if tokio::time::timeout(self.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                abandoned = state.running.len(),
                "drain timed out; the rest will be replayed"
            );
        }
        self.commit(&state.offsets, true).await;
    }

    /// Takes a record just read: routes it, or holds it until its epoch opens.
    fn take(&self, record: Record, state: &mut State) {
        let (partition, offset, epoch) = (record.partition, record.offset, record.epoch);
        let offsets = state.offsets.entry(partition).or_default();
        offsets.take(offset, epoch);
        if record.marker {
            offsets.done(offset);
            return;
        }
        let notification = match serde_json::from_slice::<Notification>(&record.payload) {
            Ok(notification) => notification,
            Err(e) => {
                // Not a notification: no retry can fix it. Skip it, loudly.
                tracing::error!(partition, offset, error = %e, "skipping a record that is not a notification");
                self.metrics.invalid.inc();
                offsets.done(offset);
                return;
            }
        };
        let positioned = Positioned {
            position: log::position(epoch, offset),
            notification,
        };
        let item = Item {
            partition,
            offset,
            epoch,
            positioned: Arc::new(positioned),
        };
        if epoch > state.open_epoch {
            if !state.waiting.iter().any(|w| w.partition == partition) {
                self.log.pause(partition);
            }
            state.waiting.push_back(item);
        } else {
            self.admit(item, state);
        }
    }

    fn admit(&self, item: Item, state: &mut State) {
        let recipient = item.positioned.notification.recipient.clone();
        if let Some(head) = state.lanes.push(&recipient, item) {
            self.start(head, &mut state.running);
        }
    }

    /// Opens the earliest waiting epoch once the whole group is done with the
    /// ones before it, and routes what waited for it.
    async fn open_next_epoch(&self, state: &mut State) {
        let Some(epoch) = state.waiting.iter().map(|w| w.epoch).min() else {
            return;
        };
        match self.log.epoch_done_below(epoch).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, epoch, "cannot tell whether earlier epochs are done");
                return;
            }
        }
        tracing::info!(epoch, "epoch open");
        state.open_epoch = epoch;
        let (ready, later): (VecDeque<Item>, VecDeque<Item>) = std::mem::take(&mut state.waiting)
            .into_iter()
            .partition(|w| w.epoch <= epoch);
        state.waiting = later;
        let mut resumed: Vec<i32> = ready.iter().map(|w| w.partition).collect();
        resumed.sort_unstable();
        resumed.dedup();
        resumed.retain(|p| !state.waiting.iter().any(|w| w.partition == *p));
        for item in ready {
            self.admit(item, state);
        }
        self.log.resume(&resumed);
    }

    fn start(&self, item: Item, running: &mut JoinSet<Finished>) {
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
        done: Result<Finished, tokio::task::JoinError>,
        state: &mut State,
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
        if let Some(partition) = state.offsets.get_mut(&partition) {
            partition.done(offset);
        }
        state.lanes.finish(&recipient)
    }

    /// Commits how far every partition this reader owns is done. All of
    /// them, every time: a commit that failed is made again on the next tick,
    /// and other directors read the epochs from it.
    async fn commit(&self, offsets: &HashMap<i32, PartitionOffsets>, wait: bool) {
        let done: Vec<log::Done> = offsets
            .iter()
            .filter_map(|(&partition, tracked)| {
                let (offset, epoch) = tracked.committable()?;
                Some(log::Done {
                    partition,
                    offset,
                    epoch,
                })
            })
            .collect();
        if done.is_empty() {
            return;
        }
        if let Err(e) = self.log.commit(&done, wait).await {
            // A partition taken away by a rebalance refuses the commit; its
            // new owner replays from the last commit that succeeded.
            tracing::warn!(error = %e, "committing offsets failed");
        }
    }
}
