//! The director's loop: read the log as one reader of the group, hand each
//! notification to its recipient's lane, and commit each partition up to the
//! last offset that is done.
//!
//! A record of an epoch later than the open one waits, its partition paused,
//! until every partition is done with the earlier epochs: that keeps each
//! recipient's order when the topic grows (see `log::partitions`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::lane::{Done, Item, Lane};
use super::offsets::PartitionOffsets;
use super::route::{Outcome, Router};
use crate::inbox::Positioned;
use crate::log::{self, LogReader, Record};
use crate::metrics::{DirectorMetrics, OutcomeLabels};
use crate::notification::Notification;

/// How often a waiting epoch is checked.
const EPOCH_CHECK: Duration = Duration::from_millis(200);

/// How long the last position stored for a recipient is remembered, for
/// its later notifications to carry (see `Lane::stored_through`).
const REMEMBER_STORES: Duration = Duration::from_secs(600);

/// How often the director checks whether it holds too much (more than half
/// of what it may), so that lanes whose notifications wait long for an
/// acknowledgement store them; and whether it no longer does (a quarter).
const PRESSURE_EVERY: Duration = Duration::from_millis(100);

pub struct Consume {
    pub log: Arc<dyn LogReader>,
    pub router: Arc<Router>,
    pub metrics: DirectorMetrics,
    /// The most notifications held (sent live and not yet acknowledged, or
    /// waiting in a lane). When routing stalls (the inbox is away), reading
    /// stops here: backpressure. From half of it, lanes whose notifications
    /// wait longest for an acknowledgement store them instead.
    pub max_held: usize,
    pub commit_interval: Duration,
    /// How long a stop waits for notifications being routed.
    pub drain_timeout: Duration,
}

/// A recipient's lane, as the loop sees it.
struct LaneHandle {
    items: mpsc::UnboundedSender<Item>,
    /// Given to it and not done yet; at zero the lane is dropped.
    outstanding: usize,
}

/// What the loop holds.
struct State {
    lanes: HashMap<String, LaneHandle>,
    tasks: JoinSet<()>,
    /// Notifications read and not done yet.
    held: usize,
    done: mpsc::UnboundedSender<Done>,
    /// Whether the director holds too much: changes only when that does,
    /// since every lane wakes.
    pressure: watch::Sender<bool>,
    offsets: HashMap<i32, PartitionOffsets>,
    /// Records of this epoch or an earlier one are routed as they come.
    open_epoch: u32,
    /// Records of a later epoch, in the order read; their partitions are
    /// paused meanwhile.
    waiting: VecDeque<Item>,
    /// The last position stored per recipient, and when.
    stores: HashMap<String, (u64, Instant)>,
}

impl Consume {
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (done, mut finished) = mpsc::unbounded_channel();
        let mut state = State {
            lanes: HashMap::new(),
            tasks: JoinSet::new(),
            held: 0,
            done,
            pressure: watch::Sender::new(false),
            offsets: HashMap::new(),
            open_epoch: 0,
            waiting: VecDeque::new(),
            stores: HashMap::new(),
        };
        let mut commit = tokio::time::interval(self.commit_interval);
        let mut epoch_check = tokio::time::interval(EPOCH_CHECK);
        let mut pressure = tokio::time::interval(PRESSURE_EVERY);
        tokio::pin!(shutdown);

        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(done) = finished.recv() => self.finish(done, &mut state),
                Some(ended) = state.tasks.join_next() => {
                    if let Err(e) = ended {
                        // Only a bug ends a lane so; what it held is not
                        // done, so the commit stops before it and it is
                        // replayed after a restart.
                        tracing::error!(error = %e, "a lane failed");
                    }
                }
                record = self.log.next(), if state.held < self.max_held => match record {
                    Ok(record) => self.take(record, &mut state),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading from the log failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = epoch_check.tick(), if !state.waiting.is_empty() => self.open_next_epoch(&mut state).await,
                _ = pressure.tick() => {
                    let pressed = *state.pressure.borrow();
                    let threshold = if pressed { self.max_held / 4 } else { self.max_held / 2 };
                    if (state.held >= threshold) != pressed {
                        state.pressure.send_replace(!pressed);
                    }
                }
                _ = commit.tick() => {
                    state.stores.retain(|_, (_, at)| at.elapsed() < REMEMBER_STORES);
                    self.commit(&state.offsets, false).await;
                }
            }
        }

        // Drain: lanes may finish what they hold; what they do not finish
        // in time is left for the next owner of the partition, from the
        // committed offset.
        tracing::info!(
            routing = state.held - state.waiting.len(),
            waiting = state.waiting.len(),
            "director draining"
        );
        // What waits for its epoch is not routed before the stop.
        let drain = async {
            while state.held > state.waiting.len()
                && let Some(done) = finished.recv().await
            {
                self.finish(done, &mut state);
            }
        };
        if tokio::time::timeout(self.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                abandoned = state.held - state.waiting.len(),
                "drain timed out; the rest will be replayed"
            );
        }
        state.tasks.abort_all();
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
        state.held += 1;
        if epoch > state.open_epoch {
            if !state.waiting.iter().any(|w| w.partition == partition) {
                self.log.pause(partition);
            }
            state.waiting.push_back(item);
        } else {
            self.admit(item, state);
        }
    }

    /// Gives `item` to its recipient's lane, started if there is none.
    fn admit(&self, item: Item, state: &mut State) {
        let recipient = &item.positioned.notification.recipient;
        // What a new lane's sends say was stored: the last store of the
        // recipient that this director remembers, and all that came before
        // this director's run of the partition, which it cannot know (a
        // director before it may have stored some without reaching the
        // recipient's connections: they read their inbox first).
        let stored_through = state
            .stores
            .get(recipient)
            .map(|(position, _)| *position)
            .max(
                state
                    .offsets
                    .get(&item.partition)
                    .and_then(PartitionOffsets::unknown_below),
            );
        let lane = state.lanes.entry(recipient.clone()).or_insert_with(|| {
            let (items, receiver) = mpsc::unbounded_channel();
            state.tasks.spawn(
                Lane::new(
                    recipient.clone(),
                    self.router.clone(),
                    receiver,
                    state.done.clone(),
                    state.pressure.subscribe(),
                    stored_through,
                )
                .run()
                .instrument(tracing::info_span!("lane", %recipient)),
            );
            LaneHandle {
                items,
                outstanding: 0,
            }
        });
        lane.outstanding += 1;
        let _ = lane.items.send(item);
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

    /// Records a notification as done; a lane with nothing left is dropped
    /// (its task ends once it has nothing either).
    fn finish(&self, done: Done, state: &mut State) {
        self.metrics
            .routed
            .get_or_create(&OutcomeLabels {
                outcome: done.outcome.label(),
            })
            .inc();
        if let Some(partition) = state.offsets.get_mut(&done.partition) {
            partition.done(done.offset);
        }
        if done.outcome == Outcome::Stored {
            let stored = (done.position, Instant::now());
            state
                .stores
                .entry(done.recipient.clone())
                .and_modify(|last| *last = (last.0.max(stored.0), stored.1))
                .or_insert(stored);
        }
        state.held -= 1;
        if let Some(lane) = state.lanes.get_mut(&done.recipient) {
            lane.outstanding -= 1;
            if lane.outstanding == 0 {
                state.lanes.remove(&done.recipient);
            }
        }
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
