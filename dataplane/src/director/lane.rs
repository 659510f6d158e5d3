//! One recipient's lane: its notifications, in the order they were read,
//! delivered live through a window, or stored, never out of order.
//!
//! Up to the window's size of them are sent live at once, each saying which
//! one it follows, so that a connection never receives one while missing an
//! earlier one still on its way. An acknowledgement frees its place. When one
//! is not delivered (its connections closed, or stayed silent), nothing more
//! is sent until every one sent has its outcome; then those not delivered are
//! sent again, in order, while the acknowledgement timeout allows, or stored
//! in the inbox together with everything queued behind them, and the
//! recipient's connections are told to read their inbox again (and every
//! later notification carries the last position stored, for a connection
//! that was not told). A failing lane waits at most the acknowledgement
//! timeout from its first send before it stores what it holds. When a
//! connection could not take one (it opened after the one it follows was
//! sent), the window empties before more are sent. And when the
//! director holds too many, lanes whose oldest notification sent waits far
//! longer than clients that keep up take store theirs at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::route::{Outcome, Router, Send};
use crate::forward;
use crate::inbox::Positioned;

/// Under pressure (the director holds more than half of what it may), a
/// lane whose oldest notification sent has waited for its acknowledgement
/// this long, and this many times as long as acknowledgements take lately,
/// stores what it holds instead of waiting out the acknowledgement timeout.
/// Far longer than a client that keeps up takes on a fast link; a client on
/// a slow one then gets its notifications through the inbox, a little
/// later. Time spent queued in the director does not count: when the
/// director itself is slow, every client would look slow, and storing
/// costs more than delivering.
const PRESSURE_AGE: Duration = Duration::from_millis(200);
const PRESSURE_TIMES_TYPICAL: u32 = 4;

/// A notification read from the log, with where it was read.
#[derive(Clone)]
pub struct Item {
    pub partition: i32,
    pub offset: i64,
    pub epoch: u32,
    pub positioned: Arc<Positioned>,
}

/// A notification done with, for the director to commit past.
pub struct Done {
    pub recipient: String,
    pub partition: i32,
    pub offset: i64,
    pub position: u64,
    pub outcome: Outcome,
}

/// A notification sent live and not yet delivered.
struct Flight {
    item: Item,
    /// When it was first sent: all its attempts together take at most the
    /// acknowledgement timeout.
    first_sent: Instant,
    attempt: u32,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    /// Not delivered; `offline` when no distributor had a connection that
    /// took it.
    Failed {
        offline: bool,
    },
}

type Outcomes = FuturesUnordered<BoxFuture<'static, (u64, forward::Outcome)>>;

pub struct Lane {
    recipient: String,
    router: Arc<Router>,
    /// Ends when the director has nothing more for this lane.
    items: mpsc::UnboundedReceiver<Item>,
    done: mpsc::UnboundedSender<Done>,
    /// Whether the director holds too many notifications.
    pressure: watch::Receiver<bool>,
    /// The last position stored for the recipient lately, by this lane or
    /// an earlier one: every notification sent says it, so that a
    /// connection not told of the store reads its inbox first.
    stored_through: Option<u64>,
    /// Set when a distributor says a connection of the recipient could not
    /// take a notification, as it had not had the one before: the lane then
    /// lets its window empty once, so that the next one follows nothing and
    /// every connection takes it (a tab opened while the window never
    /// empties would otherwise get nothing live).
    left_behind: Arc<AtomicBool>,
}

impl Lane {
    /// The lane of `recipient`, given its notifications by `items` and
    /// saying on `done` what became of each; `stored_through` as in the
    /// field.
    pub fn new(
        recipient: String,
        router: Arc<Router>,
        items: mpsc::UnboundedReceiver<Item>,
        done: mpsc::UnboundedSender<Done>,
        pressure: watch::Receiver<bool>,
        stored_through: Option<u64>,
    ) -> Lane {
        Lane {
            recipient,
            router,
            items,
            done,
            pressure,
            stored_through,
            left_behind: Arc::default(),
        }
    }

    pub async fn run(mut self) {
        let mut queue: VecDeque<Item> = VecDeque::new();
        let mut flight: VecDeque<Flight> = VecDeque::new();
        let mut outcomes = Outcomes::new();
        let mut open = true;
        let mut emptying = false;
        loop {
            emptying =
                (emptying || self.left_behind.swap(false, Ordering::Relaxed)) && !flight.is_empty();
            let failing = flight.iter().any(|f| f.state != State::Waiting);
            // Past it, the lane stops waiting for outcomes and stores what
            // it holds.
            let deadline = flight.front().and_then(|f| {
                let failed = failing.then(|| f.first_sent + self.router.ack_timeout);
                let pressed = (*self.pressure.borrow()).then(|| f.first_sent + self.slow());
                failed.into_iter().chain(pressed).min()
            });
            if failing && !flight.iter().any(|f| f.state == State::Waiting) {
                self.recover(&mut queue, &mut flight, &mut outcomes).await;
                continue;
            }
            if !failing && !emptying && flight.len() < self.router.window && !queue.is_empty() {
                self.send(&mut queue, &mut flight, &mut outcomes).await;
                continue;
            }
            if !open && queue.is_empty() && flight.is_empty() {
                return;
            }
            tokio::select! {
                item = self.items.recv(), if open => match item {
                    Some(item) => queue.push_back(item),
                    None => open = false,
                },
                Some((position, outcome)) = outcomes.next() => self.settle(position, outcome, &mut flight),
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.store_now(&mut queue, &mut flight, &mut outcomes).await;
                }
                // The deadline changes with it.
                Ok(()) = self.pressure.changed() => {}
            }
        }
    }

    /// Under pressure, how long the oldest notification sent may wait.
    fn slow(&self) -> Duration {
        PRESSURE_AGE.max(self.router.ack_time.typical() * PRESSURE_TIMES_TYPICAL)
    }

    /// Stores what the lane holds without waiting for the rest of the
    /// outcomes. What was handed over keeps waiting in the background, so
    /// that silent connections are still closed; one acknowledged after all
    /// leaves the inbox again (its acknowledgement settled it live).
    async fn store_now(
        &mut self,
        queue: &mut VecDeque<Item>,
        flight: &mut VecDeque<Flight>,
        outcomes: &mut Outcomes,
    ) {
        let ids: HashMap<u64, String> = flight
            .iter()
            .filter(|f| f.state == State::Waiting)
            .map(|f| {
                let positioned = &f.item.positioned;
                (positioned.position, positioned.notification.id.clone())
            })
            .collect();
        let waiting = std::mem::take(outcomes);
        self.store(queue, flight).await;
        let (inbox, recipient) = (self.router.inbox.clone(), self.recipient.clone());
        tokio::spawn(async move {
            let delivered: Vec<String> = waiting
                .filter_map(|(position, outcome)| {
                    let id = ids.get(&position).cloned();
                    async move { id.filter(|_| outcome == forward::Outcome::Delivered) }
                })
                .collect()
                .await;
            if !delivered.is_empty()
                && let Err(e) = inbox.acknowledge(&recipient, &delivered).await
            {
                tracing::warn!(error = %e, "cannot remove stored copies of notifications acknowledged live; they come again");
            }
        });
    }

    /// Sends what the window has room for, from the front of the queue.
    async fn send(
        &self,
        queue: &mut VecDeque<Item>,
        flight: &mut VecDeque<Flight>,
        outcomes: &mut Outcomes,
    ) {
        let room = self.router.window - flight.len();
        if room == 0 || queue.is_empty() {
            return;
        }
        // Looked up before the expiry check: the lookup waits while presence
        // is away, and what expires meanwhile must not be sent.
        let distributors = self.router.lookup(&self.recipient).await;
        let mut fresh = Vec::new();
        while fresh.len() < room
            && let Some(item) = queue.pop_front()
        {
            match item.positioned.notification.is_expired() {
                true => self.report(&item, Outcome::Expired),
                false => fresh.push(Flight {
                    item,
                    first_sent: Instant::now(),
                    attempt: 1,
                    state: State::Waiting,
                }),
            }
        }
        self.forward(&distributors, fresh, flight, outcomes);
    }

    /// Forwards `sending` to `distributors`, in order, behind what `flight`
    /// holds.
    fn forward(
        &self,
        distributors: &[String],
        sending: Vec<Flight>,
        flight: &mut VecDeque<Flight>,
        outcomes: &mut Outcomes,
    ) {
        if sending.is_empty() {
            return;
        }
        let mut follows = flight.back().map(|f| f.item.positioned.position);
        let sends = sending
            .iter()
            .map(|f| {
                let position = f.item.positioned.position;
                let send = Send {
                    item: f.item.positioned.clone(),
                    follows: follows.replace(position),
                    stored_through: self.stored_through,
                    wait: self
                        .router
                        .ack_timeout
                        .saturating_sub(f.first_sent.elapsed()),
                };
                (position, send)
            })
            .collect::<Vec<_>>();
        let positions: Vec<u64> = sends.iter().map(|(p, _)| *p).collect();
        let sent = self.router.forward(
            &self.recipient,
            distributors,
            sends.into_iter().map(|(_, s)| s).collect(),
            &self.left_behind,
        );
        for ((position, outcome), f) in positions.into_iter().zip(sent).zip(&sending) {
            // What happens to one notification on its way, under the lane's
            // span (the recipient).
            let span = tracing::debug_span!(
                "notification",
                id = %f.item.positioned.notification.id,
                partition = f.item.partition,
                offset = f.item.offset,
                attempt = f.attempt,
            );
            let outcome = outcome.map(move |o| {
                tracing::debug!(outcome = ?o, "answered");
                (position, o)
            });
            outcomes.push(outcome.instrument(span).boxed());
        }
        flight.extend(sending);
    }

    fn settle(&self, position: u64, outcome: forward::Outcome, flight: &mut VecDeque<Flight>) {
        let Some(index) = flight
            .iter()
            .position(|f| f.item.positioned.position == position && f.state == State::Waiting)
        else {
            return;
        };
        match outcome {
            forward::Outcome::Delivered => {
                if let Some(delivered) = flight.remove(index) {
                    if delivered.attempt == 1 {
                        self.router.ack_time.record(delivered.first_sent.elapsed());
                    }
                    self.router.delivered(&delivered.item.positioned);
                    self.report(&delivered.item, Outcome::Delivered);
                }
            }
            forward::Outcome::NotConnected => flight[index].state = State::Failed { offline: true },
            forward::Outcome::TimedOut => flight[index].state = State::Failed { offline: false },
        }
    }

    /// Every notification sent has its outcome, and some were not
    /// delivered: they go again, in order, after a backoff, while attempts
    /// allow, a connection had them, and at least half the acknowledgement
    /// timeout is left (a connection gets that long to acknowledge);
    /// otherwise to the inbox, with what is queued behind them.
    async fn recover(
        &mut self,
        queue: &mut VecDeque<Item>,
        flight: &mut VecDeque<Flight>,
        outcomes: &mut Outcomes,
    ) {
        let Some(first) = flight.front() else { return };
        let offline = flight
            .iter()
            .all(|f| f.state == State::Failed { offline: true });
        let attempt = first.attempt;
        let last_retry = first.first_sent + self.router.ack_timeout / 2;
        let retry_at = Instant::now() + self.router.retry_backoff.delay(attempt);
        if offline || attempt >= self.router.attempts || retry_at > last_retry {
            self.store(queue, flight).await;
            return;
        }
        self.router.metrics.retries.inc_by(flight.len() as u64);
        let sleep = tokio::time::sleep_until(retry_at);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                Some(item) = self.items.recv() => queue.push_back(item),
            }
        }
        let distributors = self.router.lookup(&self.recipient).await;
        let mut again = Vec::new();
        for mut f in std::mem::take(flight) {
            match f.item.positioned.notification.is_expired() {
                true => self.report(&f.item, Outcome::Expired),
                false => {
                    f.attempt += 1;
                    f.state = State::Waiting;
                    again.push(f);
                }
            }
        }
        self.forward(&distributors, again, flight, outcomes);
    }

    /// Stores what was sent and not delivered, and everything queued, in the
    /// inbox; tells the recipient's connections; then reports them done
    /// (only then, so that a new lane of the recipient cannot send anything
    /// live before the connections were told).
    async fn store(&mut self, queue: &mut VecDeque<Item>, flight: &mut VecDeque<Flight>) {
        let mut storing = Vec::new();
        let held = flight.drain(..).map(|f| f.item).chain(queue.drain(..));
        for item in held {
            match item.positioned.notification.is_expired() {
                true => self.report(&item, Outcome::Expired),
                false => storing.push(item),
            }
        }
        let Some(last) = storing.last() else { return };
        let through = last.positioned.position;
        let batch: Vec<Arc<Positioned>> = storing.iter().map(|i| i.positioned.clone()).collect();
        self.router.store(&batch).await;
        self.stored_through = Some(through);
        self.router.tell_stored(&self.recipient, through).await;
        for item in &storing {
            self.report(item, Outcome::Stored);
        }
    }

    fn report(&self, item: &Item, outcome: Outcome) {
        tracing::debug!(
            id = %item.positioned.notification.id,
            partition = item.partition,
            offset = item.offset,
            ?outcome,
            "routed",
        );
        let _ = self.done.send(Done {
            recipient: self.recipient.clone(),
            partition: item.partition,
            offset: item.offset,
            position: item.positioned.position,
            outcome,
        });
    }
}
