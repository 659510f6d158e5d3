//! Live delivery inside one distributor: the connections it holds, by
//! recipient; the notifications forwarded to them that wait for a client's
//! acknowledgement; and what each recipient acknowledged lately.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Envelope;
use crate::forward::Outcome;

/// Acknowledged ids remembered per recipient.
const REMEMBERED_ACKS: usize = 64;

/// How long a recipient with no connection here is remembered: its
/// acknowledgements still settle a notification forwarded again (a
/// director's retry, or a replay after a crash or a rebalance), and still
/// tell a late duplicate acknowledgement from an id never sent.
const REMEMBER_FOR: Duration = Duration::from_secs(600);

/// How often recipients past [`REMEMBER_FOR`] are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(10);

/// Why a live notification stopped waiting for its acknowledgement.
enum Settled {
    Acknowledged,
    /// Every connection it was handed to closed without acknowledging it.
    Abandoned,
}

/// A forwarded notification waiting for a client's acknowledgement.
struct AckWaiter {
    /// Tells this waiter from others for the same id (forwarded twice).
    token: u64,
    position: u64,
    /// The connections it was handed to that are still open.
    connections: Vec<String>,
    done: Option<oneshot::Sender<Settled>>,
}

impl AckWaiter {
    fn settle(&mut self, how: Settled) {
        if let Some(done) = self.done.take() {
            let _ = done.send(how);
        }
    }
}

/// One connection's queue of live notifications.
struct Sink {
    connection: String,
    sender: mpsc::Sender<Envelope>,
}

/// A recipient as this distributor knows it.
struct Recipient {
    sinks: Vec<Sink>,
    /// By notification id.
    waiting: HashMap<String, Vec<AckWaiter>>,
    /// The ids its clients acknowledged last, oldest first.
    acknowledged: VecDeque<String>,
    /// A long-poll cursor: everything up to it is acknowledged.
    acknowledged_through: Option<u64>,
    /// When a connection of it last closed or a client of it acknowledged.
    touched: Instant,
}

impl Recipient {
    fn new() -> Recipient {
        Recipient {
            sinks: Vec::new(),
            waiting: HashMap::new(),
            acknowledged: VecDeque::new(),
            acknowledged_through: None,
            touched: Instant::now(),
        }
    }

    fn remember(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if !self.acknowledged.contains(&id) {
                self.acknowledged.push_back(id);
            }
        }
        let excess = self.acknowledged.len().saturating_sub(REMEMBERED_ACKS);
        self.acknowledged.drain(..excess);
        self.touched = Instant::now();
    }

    fn was_acknowledged(&self, id: &str, position: u64) -> bool {
        self.acknowledged_through
            .is_some_and(|through| position <= through)
            || self.acknowledged.iter().any(|a| a == id)
    }

    /// Settles and removes the waiters for `id`; whether there were any.
    fn settle(&mut self, id: &str) -> bool {
        let Some(mut list) = self.waiting.remove(id) else {
            return false;
        };
        for waiter in &mut list {
            waiter.settle(Settled::Acknowledged);
        }
        true
    }

    /// Whether it is of no more use: no connection, no waiter, nothing
    /// acknowledged lately.
    fn is_forgettable(&self, now: Instant) -> bool {
        self.sinks.is_empty()
            && self.waiting.is_empty()
            && now.duration_since(self.touched) > REMEMBER_FOR
    }
}

/// What this distributor knows of an acknowledged id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// A live notification waited for it; it no longer does.
    Held,
    /// The recipient acknowledged it lately.
    Acknowledged,
    /// Neither.
    Unknown,
}

struct State {
    recipients: HashMap<String, Recipient>,
    next_token: u64,
    forgotten_at: Instant,
}

impl State {
    fn recipient(&mut self, recipient: &str) -> &mut Recipient {
        self.recipients
            .entry(recipient.to_string())
            .or_insert_with(Recipient::new)
    }

    /// Forgets recipients past [`REMEMBER_FOR`], every [`FORGET_EVERY`].
    fn forget_old(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.forgotten_at) < FORGET_EVERY {
            return;
        }
        self.forgotten_at = now;
        self.recipients.retain(|_, r| !r.is_forgettable(now));
    }
}

pub struct Live {
    state: Mutex<State>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            state: Mutex::new(State {
                recipients: HashMap::new(),
                next_token: 0,
                forgotten_at: Instant::now(),
            }),
        }
    }
}

/// A connection's end of its queue; unregisters on drop.
pub struct Subscription {
    live: Arc<Live>,
    recipient: String,
    connection: String,
    /// How long, after the connection closes, what was handed to it still
    /// waits for its acknowledgement.
    linger: Duration,
    pub receiver: mpsc::Receiver<Envelope>,
}

impl Drop for Subscription {
    /// Nothing more is handed to the connection. Notifications handed to it
    /// and to no other open one stop waiting after its linger (at once, for
    /// a WebSocket or SSE stream), so that their director sends them again,
    /// to where the client reconnected, or stores them, without waiting out
    /// the acknowledgement timeout.
    fn drop(&mut self) {
        let mut state = self.live.lock();
        if let Some(recipient) = state.recipients.get_mut(&self.recipient) {
            recipient.sinks.retain(|s| s.connection != self.connection);
            recipient.touched = Instant::now();
        }
        drop(state);
        let (live, recipient, connection) = (
            self.live.clone(),
            std::mem::take(&mut self.recipient),
            std::mem::take(&mut self.connection),
        );
        if self.linger.is_zero() {
            live.abandon(&recipient, &connection);
        } else {
            let linger = self.linger;
            tokio::spawn(async move {
                tokio::time::sleep(linger).await;
                live.abandon(&recipient, &connection);
            });
        }
    }
}

impl Live {
    /// The state, once recipients past [`REMEMBER_FOR`] are forgotten (now
    /// and then: it costs a clock reading when it is not time yet).
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.forget_old();
        state
    }

    /// Registers a connection of `recipient` with a queue of `capacity`;
    /// what is handed to it waits `linger` for its acknowledgement after it
    /// closes (a long-poll's, that the next poll's cursor brings).
    pub fn subscribe(
        self: &Arc<Self>,
        recipient: &str,
        connection: &str,
        capacity: usize,
        linger: Duration,
    ) -> Subscription {
        let (sender, receiver) = mpsc::channel(capacity);
        self.lock().recipient(recipient).sinks.push(Sink {
            connection: connection.to_string(),
            sender,
        });
        Subscription {
            live: self.clone(),
            recipient: recipient.to_string(),
            connection: connection.to_string(),
            linger,
            receiver,
        }
    }

    /// `connection` of `recipient` is gone: what waits for it alone is
    /// abandoned.
    fn abandon(&self, recipient: &str, connection: &str) {
        let mut state = self.lock();
        let Some(entry) = state.recipients.get_mut(recipient) else {
            return;
        };
        for waiter in entry.waiting.values_mut().flatten() {
            waiter.connections.retain(|c| c != connection);
            if waiter.connections.is_empty() {
                waiter.settle(Settled::Abandoned);
            }
        }
    }

    /// Hands `envelope` to every connection of `recipient` and waits up to
    /// `timeout` for one of them to acknowledge it. A connection whose queue
    /// is full is a slow client: it is dropped from the recipient's sinks
    /// (its queue's end then sees the channel close and closes the
    /// connection), and what it did not acknowledge stays durable elsewhere.
    pub async fn deliver(&self, recipient: &str, envelope: Envelope, timeout: Duration) -> Outcome {
        let (token, settled) = {
            let mut state = self.lock();
            state.next_token += 1;
            let token = state.next_token;
            let Some(entry) = state.recipients.get_mut(recipient) else {
                return Outcome::NotConnected;
            };
            if entry.was_acknowledged(&envelope.id, envelope.position) {
                return Outcome::Delivered;
            }
            let mut connections = Vec::new();
            entry
                .sinks
                .retain(|sink| match sink.sender.try_send(envelope.clone()) {
                    Ok(()) => {
                        connections.push(sink.connection.clone());
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(recipient, connection = %sink.connection, "closing a slow connection: its queue is full");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
            if connections.is_empty() {
                return Outcome::NotConnected;
            }
            // Registered under the same lock as the sends, so that no
            // acknowledgement can come before it.
            let (done, settled) = oneshot::channel();
            entry
                .waiting
                .entry(envelope.id.clone())
                .or_default()
                .push(AckWaiter {
                    token,
                    position: envelope.position,
                    connections,
                    done: Some(done),
                });
            (token, settled)
        };
        let outcome = match tokio::time::timeout(timeout, settled).await {
            Ok(Ok(Settled::Acknowledged)) => Outcome::Delivered,
            _ => Outcome::TimedOut,
        };
        let mut state = self.lock();
        if let Some(entry) = state.recipients.get_mut(recipient)
            && let Some(list) = entry.waiting.get_mut(&envelope.id)
        {
            list.retain(|w| w.token != token);
            if list.is_empty() {
                entry.waiting.remove(&envelope.id);
            }
        }
        outcome
    }

    /// A client of `recipient` acknowledged `ids`: the live notifications
    /// waiting for them are done. Says, per id, what was known of it.
    pub fn acknowledge(&self, recipient: &str, ids: &[String]) -> Vec<Known> {
        let mut state = self.lock();
        let Some(entry) = state.recipients.get_mut(recipient) else {
            return vec![Known::Unknown; ids.len()];
        };
        ids.iter()
            .map(|id| {
                if entry.settle(id) {
                    entry.remember([id.clone()]);
                    Known::Held
                } else if entry.acknowledged.contains(id) {
                    Known::Acknowledged
                } else {
                    Known::Unknown
                }
            })
            .collect()
    }

    /// `ids` of `recipient` were acknowledged elsewhere (its inbox, or
    /// another distributor): a notification forwarded here again is done.
    pub fn remember(&self, recipient: &str, ids: &[String]) {
        if !ids.is_empty() {
            let mut state = self.lock();
            state.recipient(recipient).remember(ids.iter().cloned());
        }
    }

    /// A client of `recipient` acknowledged everything up to `position` (a
    /// long-poll cursor): what waits here up to it is done.
    pub fn acknowledge_through(&self, recipient: &str, position: u64) {
        let mut state = self.lock();
        let entry = state.recipient(recipient);
        entry.acknowledged_through = entry.acknowledged_through.max(Some(position));
        entry.touched = Instant::now();
        let ids: Vec<String> = entry
            .waiting
            .iter()
            .filter(|(_, list)| list.iter().any(|w| w.position <= position))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            entry.settle(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn envelope(id: &str, position: u64) -> Envelope {
        Envelope {
            id: id.into(),
            position,
            kind: None,
            payload: RawValue::from_string("{}".into()).expect("JSON"),
            published_at_ms: 0,
        }
    }

    /// Delivers in the background, as the forwarding stream does.
    fn deliver(live: &Arc<Live>, id: &str, position: u64) -> tokio::task::JoinHandle<Outcome> {
        let (live, envelope) = (live.clone(), envelope(id, position));
        tokio::spawn(async move { live.deliver("u", envelope, TIMEOUT).await })
    }

    #[tokio::test(start_paused = true)]
    async fn an_acknowledgement_delivers_and_is_remembered_after_the_connection_closes() {
        let live = Arc::new(Live::default());
        let mut tab = live.subscribe("u", "c1", 4, Duration::ZERO);
        let delivery = deliver(&live, "n1", 1);
        assert_eq!(tab.receiver.recv().await.expect("handed over").id, "n1");
        let ids = ["n1".to_string(), "n1".to_string(), "never".to_string()];
        assert_eq!(
            live.acknowledge("u", &ids),
            [Known::Held, Known::Acknowledged, Known::Unknown]
        );
        assert_eq!(delivery.await.expect("done"), Outcome::Delivered);
        drop(tab);
        // A director's replay: done at once, with no connection here.
        let replay = live.deliver("u", envelope("n1", 1), TIMEOUT).await;
        assert_eq!(replay, Outcome::Delivered);
        assert_eq!(
            live.deliver("u", envelope("n2", 2), TIMEOUT).await,
            Outcome::NotConnected
        );
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_closed_connection_held_alone_stops_waiting_at_once() {
        let live = Arc::new(Live::default());
        let (mut first, mut second) = (
            live.subscribe("u", "c1", 4, Duration::ZERO),
            live.subscribe("u", "c2", 4, Duration::ZERO),
        );
        let started = tokio::time::Instant::now();
        let delivery = deliver(&live, "n1", 1);
        first.receiver.recv().await.expect("handed to the first");
        second.receiver.recv().await.expect("and to the second");
        drop(first);
        tokio::task::yield_now().await;
        assert!(
            !delivery.is_finished(),
            "the second connection still has it"
        );
        drop(second);
        assert_eq!(delivery.await.expect("done"), Outcome::TimedOut);
        assert!(
            started.elapsed() < TIMEOUT,
            "without waiting out the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_polls_notification_waits_its_linger_for_the_next_cursor() {
        let live = Arc::new(Live::default());
        let mut poll = live.subscribe("u", "p1", 4, Duration::from_secs(2));
        let delivery = deliver(&live, "n1", 7);
        poll.receiver.recv().await.expect("handed over");
        drop(poll);
        tokio::time::sleep(Duration::from_secs(1)).await;
        live.acknowledge_through("u", 7);
        assert_eq!(delivery.await.expect("done"), Outcome::Delivered);
        // The cursor covers a replay too, and nothing after it.
        assert_eq!(
            live.deliver("u", envelope("n1", 7), TIMEOUT).await,
            Outcome::Delivered
        );
        let mut next = live.subscribe("u", "p2", 4, Duration::from_secs(2));
        let later = deliver(&live, "n2", 8);
        next.receiver.recv().await.expect("n2 is sent");
        drop(next);
        assert_eq!(
            later.await.expect("done"),
            Outcome::TimedOut,
            "after the linger"
        );
    }
}
