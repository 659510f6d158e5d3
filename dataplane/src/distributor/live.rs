//! Live delivery inside one distributor: the connections it holds, by
//! recipient; the notifications handed to them that wait for a client's
//! acknowledgement; and what each recipient acknowledged lately.
//!
//! A recipient's notifications are pipelined: a director hands up to its
//! delivery window of them here at once, in position order, each saying
//! which earlier one it follows (`follows`: the latest earlier one not yet
//! done). A connection takes a notification only when it has had the one it
//! follows, so that no connection ever receives a later notification while
//! missing an earlier one that is still on its way. When a director stores notifications in the inbox
//! instead, it says so (`stored`): connections read their inbox again
//! before anything live that comes after.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::Envelope;
use crate::forward::{Answer, Outcome};

/// Acknowledged ids remembered per recipient.
const REMEMBERED_ACKS: usize = 64;

/// How long a recipient with no connection here is remembered: its
/// acknowledgements still settle a notification forwarded again (a
/// director's retry, or a replay after a crash or a rebalance), and still
/// tell a late duplicate acknowledgement from an id never sent.
const REMEMBER_FOR: Duration = Duration::from_secs(600);

/// How often recipients past [`REMEMBER_FOR`] are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(10);

/// Where a handed notification stands in its recipient's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Order {
    /// The latest earlier notification not yet done, which a connection
    /// must have had to take this one.
    pub follows: Option<u64>,
    /// The last position its director stored lately: a connection that did
    /// not have it reads its inbox first.
    pub stored_through: Option<u64>,
}

/// What a connection's queue carries to its session.
#[derive(Debug)]
pub enum Feed {
    /// A live notification.
    Notification(Envelope),
    /// Notifications of the recipient were stored in the inbox: read it
    /// again before what follows.
    Stored,
    /// The connection left a notification unacknowledged for the
    /// acknowledgement timeout: it is closed as silent.
    Silent,
}

/// Why a live notification stopped waiting for its acknowledgement.
enum Settled {
    Acknowledged,
    /// Every connection it was handed to closed without acknowledging it.
    Abandoned,
}

/// A handed notification waiting for a client's acknowledgement.
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
    sender: mpsc::Sender<Feed>,
    /// The largest position it had, from the inbox, live, or as the
    /// client's resume point.
    through: Option<u64>,
}

impl Sink {
    /// Whether it had `position`.
    fn had(&self, position: u64) -> bool {
        self.through.is_some_and(|t| t >= position)
    }

    /// Whether it may take the notification at `position` that follows
    /// `follows`: it must have had that one, or it would receive this one
    /// out of order; and not this one already.
    fn takes(&self, position: u64, follows: Option<u64>) -> bool {
        follows.is_none_or(|f| self.had(f)) && !self.had(position)
    }

    /// Tells it that notifications through `through` were stored, unless it
    /// had them; false when its queue is full or closed.
    fn tell_stored(&mut self, through: u64) -> bool {
        if self.had(through) {
            return true;
        }
        let told = self.sender.try_send(Feed::Stored).is_ok();
        self.through = Some(through);
        told
    }
}

/// A recipient as this distributor knows it.
struct Recipient {
    sinks: Vec<Sink>,
    /// By notification id.
    waiting: HashMap<String, Vec<AckWaiter>>,
    /// The ids its clients acknowledged last, oldest first.
    acknowledged: VecDeque<String>,
    /// Everything up to it is acknowledged; never beyond what was sent, so
    /// that no acknowledgement covers a notification sent later.
    acknowledged_through: Option<u64>,
    /// The largest position sent to a connection of it here.
    sent_through: Option<u64>,
    /// The positions fed from its inbox here and not yet covered by a
    /// cumulative acknowledgement, lowest and highest: only then does one
    /// have rows to remove.
    inbox_fed: Option<(u64, u64)>,
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
            sent_through: None,
            inbox_fed: None,
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

    fn was_acknowledged(&self, envelope: &Envelope) -> bool {
        self.acknowledged_through
            .is_some_and(|through| envelope.position <= through)
            || self.acknowledged.iter().any(|a| *a == envelope.id)
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

    fn sent(&mut self, position: u64) {
        self.sent_through = self.sent_through.max(Some(position));
    }

    /// Closes `connection` with `last` as the last thing it is fed (none
    /// when its queue is full: the session then sees it closed as slow).
    fn close(&mut self, connection: &str, last: Feed) {
        if let Some(index) = self.sinks.iter().position(|s| s.connection == connection) {
            let _ = self.sinks.remove(index).sender.try_send(last);
        }
    }

    /// Whether it is of no more use: no connection, no waiter, nothing
    /// acknowledged lately.
    fn is_forgettable(&self, now: Instant) -> bool {
        self.sinks.is_empty()
            && self.waiting.is_empty()
            && now.duration_since(self.touched) > REMEMBER_FOR
    }
}

/// What a cumulative acknowledgement found here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Through {
    /// The largest position sent to the recipient here.
    pub sent: Option<u64>,
    /// It settled notifications waiting here.
    pub settled: bool,
    /// It covers notifications fed from the inbox here: rows to remove.
    pub inbox: bool,
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
    pub receiver: mpsc::Receiver<Feed>,
}

impl Subscription {
    /// The connection was fed the notifications at positions `first` to
    /// `last` from the inbox: they count as sent, and as had by it.
    pub fn fed(&self, first: u64, last: u64) {
        let mut state = self.live.lock();
        let entry = state.recipient(&self.recipient);
        entry.sent(last);
        entry.inbox_fed = Some(match entry.inbox_fed {
            Some((low, high)) => (low.min(first), high.max(last)),
            None => (first, last),
        });
        let position = last;
        if let Some(sink) = entry
            .sinks
            .iter_mut()
            .find(|s| s.connection == self.connection)
        {
            sink.through = sink.through.max(Some(position));
        }
    }
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

/// A handed notification's wait for its acknowledgement; whatever ends the
/// wait (an outcome, or the forwarding stream going away), the waiter goes.
struct Waiting {
    live: Arc<Live>,
    recipient: String,
    id: String,
    token: u64,
}

impl Waiting {
    /// Closes, as silent, the connections it was handed to that are still
    /// open: none of them acknowledged it in time.
    fn close_silent(&self) {
        let mut state = self.live.lock();
        let Some(entry) = state.recipients.get_mut(&self.recipient) else {
            return;
        };
        let connections: Vec<String> = entry
            .waiting
            .get(&self.id)
            .and_then(|list| list.iter().find(|w| w.token == self.token))
            .map(|w| w.connections.clone())
            .unwrap_or_default();
        for connection in connections {
            tracing::info!(recipient = %self.recipient, %connection, "closing a silent connection: it acknowledged nothing in time");
            entry.close(&connection, Feed::Silent);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = self.live.lock();
        if let Some(entry) = state.recipients.get_mut(&self.recipient)
            && let Some(list) = entry.waiting.get_mut(&self.id)
        {
            list.retain(|w| w.token != self.token);
            if list.is_empty() {
                entry.waiting.remove(&self.id);
            }
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

    /// Registers a connection of `recipient` with a queue of `capacity`,
    /// resuming after `after`. What is handed to it waits `linger` for its
    /// acknowledgement after it closes (a long-poll's, that the next poll's
    /// cursor brings).
    pub fn subscribe(
        self: &Arc<Self>,
        recipient: &str,
        connection: &str,
        capacity: usize,
        linger: Duration,
        after: Option<u64>,
    ) -> Subscription {
        let (sender, receiver) = mpsc::channel(capacity);
        self.lock().recipient(recipient).sinks.push(Sink {
            connection: connection.to_string(),
            sender,
            through: after,
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

    /// Hands `envelope` at once to every connection of `recipient` that
    /// takes it (see [`Sink::takes`]); the returned future waits up to
    /// `wait` for one of them to acknowledge it, and says whether a
    /// connection was left behind. Connections that leave it unacknowledged
    /// that long are closed as silent. A connection whose queue is full is a
    /// slow client: it is dropped from the recipient's sinks (its session
    /// then sees the queue close and closes the connection), and what it did
    /// not acknowledge stays durable elsewhere.
    pub fn hand(
        self: &Arc<Self>,
        recipient: &str,
        envelope: Envelope,
        order: Order,
        wait: Duration,
    ) -> BoxFuture<'static, Answer> {
        let ready = |outcome: Outcome| futures::future::ready(Answer::from(outcome)).boxed();
        let (id, position) = (envelope.id.clone(), envelope.position);
        let (token, settled, left_behind) = {
            let mut state = self.lock();
            state.next_token += 1;
            let token = state.next_token;
            let Some(entry) = state.recipients.get_mut(recipient) else {
                return ready(Outcome::NotConnected);
            };
            if entry.was_acknowledged(&envelope) {
                return ready(Outcome::Delivered);
            }
            let mut connections = Vec::new();
            let mut left_behind = false;
            entry.sinks.retain_mut(|sink| {
                // A connection not told of what was stored before (it was
                // not listed in presence then, say) is told now, first.
                if let Some(stored) = order.stored_through
                    && !sink.tell_stored(stored)
                {
                    return false;
                }
                if !sink.takes(position, order.follows) {
                    left_behind |= !sink.had(position);
                    return true;
                }
                match sink.sender.try_send(Feed::Notification(envelope.clone())) {
                    Ok(()) => {
                        sink.through = sink.through.max(Some(position));
                        connections.push(sink.connection.clone());
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(recipient, connection = %sink.connection, "closing a slow connection: its queue is full");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            if connections.is_empty() {
                return futures::future::ready(Answer {
                    outcome: Outcome::NotConnected,
                    left_behind,
                })
                .boxed();
            }
            entry.sent(position);
            // Registered under the same lock as the sends, so that no
            // acknowledgement can come before it.
            let (done, settled) = oneshot::channel();
            entry
                .waiting
                .entry(id.clone())
                .or_default()
                .push(AckWaiter {
                    token,
                    position,
                    connections,
                    done: Some(done),
                });
            (token, settled, left_behind)
        };
        let waiting = Waiting {
            live: self.clone(),
            recipient: recipient.to_string(),
            id,
            token,
        };
        async move {
            let outcome = match tokio::time::timeout(wait, settled).await {
                Ok(Ok(Settled::Acknowledged)) => Outcome::Delivered,
                Ok(_) => Outcome::TimedOut,
                Err(_) => {
                    waiting.close_silent();
                    Outcome::TimedOut
                }
            };
            Answer {
                outcome,
                left_behind,
            }
        }
        .boxed()
    }

    /// `recipient`'s notifications through `through` were stored in the
    /// inbox: each of its connections reads the inbox again before what is
    /// handed to it later. Delivered when one connection was told.
    pub fn stored(&self, recipient: &str, through: u64) -> Outcome {
        let mut state = self.lock();
        let Some(entry) = state.recipients.get_mut(recipient) else {
            return Outcome::NotConnected;
        };
        let mut told = false;
        entry.sinks.retain_mut(|sink| {
            let kept = sink.tell_stored(through);
            told |= kept;
            kept
        });
        match told {
            true => Outcome::Delivered,
            false => Outcome::NotConnected,
        }
    }

    /// Makes `connection` of `recipient` read its inbox again before what
    /// is handed to it next (it may have missed a `stored`); a connection
    /// whose queue is full is closed as slow, and reads it on reconnecting.
    pub fn read_inbox_again(&self, recipient: &str, connection: &str) {
        let mut state = self.lock();
        if let Some(entry) = state.recipients.get_mut(recipient) {
            entry.sinks.retain(|sink| {
                sink.connection != connection || sink.sender.try_send(Feed::Stored).is_ok()
            });
        }
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

    /// A client of `recipient` acknowledged everything up to `position`:
    /// what was sent here up to it is done (waiting, or forwarded here
    /// again); never anything beyond what was sent.
    pub fn acknowledge_through(&self, recipient: &str, position: u64) -> Through {
        let mut state = self.lock();
        let entry = state.recipient(recipient);
        let sent = entry.sent_through;
        let Some(position) = sent.map(|sent| sent.min(position)) else {
            return Through::default();
        };
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
        let inbox = entry.inbox_fed.is_some_and(|(low, _)| low <= position);
        entry.inbox_fed = entry
            .inbox_fed
            .filter(|(_, high)| *high > position)
            .map(|(low, high)| (low.max(position + 1), high));
        Through {
            sent,
            settled: !ids.is_empty(),
            inbox,
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

    fn connect(live: &Arc<Live>, connection: &str, linger: Duration) -> Subscription {
        live.subscribe("u", connection, 4, linger, None)
    }

    fn order(follows: Option<u64>) -> Order {
        Order {
            follows,
            stored_through: None,
        }
    }

    fn hand(
        live: &Arc<Live>,
        id: &str,
        position: u64,
        follows: Option<u64>,
    ) -> tokio::task::JoinHandle<Outcome> {
        let order = order(follows);
        tokio::spawn(
            live.hand("u", envelope(id, position), order, TIMEOUT)
                .map(|a| a.outcome),
        )
    }

    async fn next_id(subscription: &mut Subscription) -> String {
        match subscription.receiver.recv().await {
            Some(Feed::Notification(envelope)) => envelope.id,
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_is_pipelined_in_order_and_one_cumulative_ack_settles_it() {
        let live = Arc::new(Live::default());
        let mut tab = connect(&live, "c1", Duration::ZERO);
        let deliveries = [
            hand(&live, "n1", 1, None),
            hand(&live, "n2", 2, Some(1)),
            hand(&live, "n3", 3, Some(2)),
        ];
        for id in ["n1", "n2", "n3"] {
            assert_eq!(next_id(&mut tab).await, id, "all sent before any ack");
        }
        assert_eq!(live.acknowledge_through("u", 3).sent, Some(3));
        for delivery in deliveries {
            assert_eq!(delivery.await.expect("done"), Outcome::Delivered);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_missing_the_notification_followed_does_not_take_the_next() {
        let live = Arc::new(Live::default());
        let mut first = connect(&live, "c1", Duration::ZERO);
        let n1 = hand(&live, "n1", 1, None);
        assert_eq!(next_id(&mut first).await, "n1");
        let mut second = connect(&live, "c2", Duration::ZERO);
        let n2 = hand(&live, "n2", 2, Some(1));
        assert_eq!(next_id(&mut first).await, "n2");
        let n3 = hand(&live, "n3", 3, None);
        assert_eq!(next_id(&mut first).await, "n3");
        assert_eq!(
            next_id(&mut second).await,
            "n3",
            "n1 and n2 were done before n3 was sent: nothing is missing"
        );
        live.acknowledge_through("u", 3);
        for delivery in [n1, n2, n3] {
            assert_eq!(delivery.await.expect("done"), Outcome::Delivered);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_cannot_take_a_notification_is_reported_left_behind() {
        let live = Arc::new(Live::default());
        let mut first = connect(&live, "c1", Duration::ZERO);
        let n1 = hand(&live, "n1", 1, None);
        next_id(&mut first).await;
        let _second = connect(&live, "c2", Duration::ZERO);
        let n2 = live.hand("u", envelope("n2", 2), order(Some(1)), TIMEOUT);
        next_id(&mut first).await;
        live.acknowledge_through("u", 2);
        assert_eq!(n1.await.expect("done"), Outcome::Delivered);
        let answer = n2.await;
        assert_eq!(answer.outcome, Outcome::Delivered);
        assert!(answer.left_behind, "the second had not had n1");
        let n3 = live.hand("u", envelope("n3", 3), order(None), TIMEOUT);
        next_id(&mut first).await;
        live.acknowledge_through("u", 3);
        assert!(!n3.await.left_behind, "both took n3");
    }

    #[tokio::test(start_paused = true)]
    async fn connections_hear_of_what_was_stored_and_count_it_as_had() {
        let live = Arc::new(Live::default());
        let mut tab = connect(&live, "c1", Duration::ZERO);
        assert_eq!(live.stored("u", 1), Outcome::Delivered);
        assert!(matches!(tab.receiver.recv().await, Some(Feed::Stored)));
        let n2 = hand(&live, "n2", 2, Some(1));
        assert_eq!(next_id(&mut tab).await, "n2", "it reads n1 from the inbox");
        live.acknowledge("u", &["n2".to_string()]);
        assert_eq!(n2.await.expect("done"), Outcome::Delivered);
        assert_eq!(live.stored("v", 1), Outcome::NotConnected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_can_be_made_to_read_its_inbox_again() {
        let live = Arc::new(Live::default());
        let mut tab = connect(&live, "c1", Duration::ZERO);
        let mut other = connect(&live, "c2", Duration::ZERO);
        live.read_inbox_again("u", "c1");
        assert!(matches!(tab.receiver.recv().await, Some(Feed::Stored)));
        assert!(other.receiver.try_recv().is_err(), "only the one named");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_not_told_of_what_was_stored_reads_its_inbox_before_the_next() {
        let live = Arc::new(Live::default());
        let mut tab = connect(&live, "c1", Duration::ZERO);
        let order = Order {
            follows: None,
            stored_through: Some(1),
        };
        let n2 = tokio::spawn(
            live.hand("u", envelope("n2", 2), order, TIMEOUT)
                .map(|a| a.outcome),
        );
        assert!(matches!(tab.receiver.recv().await, Some(Feed::Stored)));
        assert_eq!(next_id(&mut tab).await, "n2");
        live.acknowledge_through("u", 2);
        assert_eq!(n2.await.expect("done"), Outcome::Delivered);
        let n3 = tokio::spawn(
            live.hand("u", envelope("n3", 3), order, TIMEOUT)
                .map(|a| a.outcome),
        );
        assert_eq!(next_id(&mut tab).await, "n3", "told once");
        drop(tab);
        assert_eq!(n3.await.expect("done"), Outcome::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_acknowledges_nothing_in_time_is_closed_as_silent() {
        let live = Arc::new(Live::default());
        let mut silent = connect(&live, "c1", Duration::ZERO);
        let started = tokio::time::Instant::now();
        let n1 = hand(&live, "n1", 1, None);
        assert_eq!(next_id(&mut silent).await, "n1");
        assert_eq!(n1.await.expect("done"), Outcome::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
        assert!(matches!(silent.receiver.recv().await, Some(Feed::Silent)));
        assert!(silent.receiver.recv().await.is_none(), "then it is closed");
        assert_eq!(
            live.hand("u", envelope("n2", 2), Order::default(), TIMEOUT)
                .await
                .outcome,
            Outcome::NotConnected
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cumulative_ack_beyond_what_was_sent_does_not_cover_later_notifications() {
        let live = Arc::new(Live::default());
        let mut tab = connect(&live, "c1", Duration::ZERO);
        let n1 = hand(&live, "n1", 1, None);
        next_id(&mut tab).await;
        assert_eq!(live.acknowledge_through("u", u64::MAX).sent, Some(1));
        assert_eq!(n1.await.expect("done"), Outcome::Delivered);
        let n2 = hand(&live, "n2", 2, None);
        assert_eq!(
            next_id(&mut tab).await,
            "n2",
            "n2 is sent, not taken as done"
        );
        drop(tab);
        assert_eq!(n2.await.expect("done"), Outcome::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn an_acknowledgement_is_remembered_after_the_connection_closes() {
        let live = Arc::new(Live::default());
        let mut tab = connect(&live, "c1", Duration::ZERO);
        let delivery = hand(&live, "n1", 1, None);
        next_id(&mut tab).await;
        let ids = ["n1".to_string(), "n1".to_string(), "never".to_string()];
        assert_eq!(
            live.acknowledge("u", &ids),
            [Known::Held, Known::Acknowledged, Known::Unknown]
        );
        assert_eq!(delivery.await.expect("done"), Outcome::Delivered);
        drop(tab);
        // A director's replay: done at once, with no connection here.
        let replay = live
            .hand("u", envelope("n1", 1), Order::default(), TIMEOUT)
            .await
            .outcome;
        assert_eq!(replay, Outcome::Delivered);
        assert_eq!(
            live.hand("u", envelope("n2", 2), Order::default(), TIMEOUT)
                .await
                .outcome,
            Outcome::NotConnected
        );
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_closed_connection_held_alone_stops_waiting_at_once() {
        let live = Arc::new(Live::default());
        let mut first = connect(&live, "c1", Duration::ZERO);
        let mut second = connect(&live, "c2", Duration::ZERO);
        let started = tokio::time::Instant::now();
        let delivery = hand(&live, "n1", 1, None);
        next_id(&mut first).await;
        next_id(&mut second).await;
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
        let mut poll = connect(&live, "p1", Duration::from_secs(2));
        let delivery = hand(&live, "n1", 7, None);
        next_id(&mut poll).await;
        drop(poll);
        tokio::time::sleep(Duration::from_secs(1)).await;
        live.acknowledge_through("u", 7);
        assert_eq!(delivery.await.expect("done"), Outcome::Delivered);
        // The cursor covers a replay too, and nothing after it.
        assert_eq!(
            live.hand("u", envelope("n1", 7), Order::default(), TIMEOUT)
                .await
                .outcome,
            Outcome::Delivered
        );
        let mut next = connect(&live, "p2", Duration::from_secs(2));
        let later = hand(&live, "n2", 8, None);
        next_id(&mut next).await;
        drop(next);
        assert_eq!(
            later.await.expect("done"),
            Outcome::TimedOut,
            "after the linger"
        );
    }
}
