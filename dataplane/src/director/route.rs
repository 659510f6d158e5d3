//! What the director does with a recipient's notifications, one step at a
//! time: forward them live to the distributors that hold the recipient's
//! connections, store them in the inbox, and tell the connections what was
//! stored. A recipient's lane (`lane`) puts the steps in order.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::ack_time::AckTime;
use crate::distributor::Envelope;
use crate::forward::{self, Answer, Forward, Message};
use crate::inbox::{Inbox, Positioned};
use crate::metrics::{DirectorMetrics, OutcomeLabels};
use crate::notification::now_ms;
use crate::presence::Presence;
use crate::retry::{self, Backoff};

/// How a notification was done with; the director may commit past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A client of its recipient acknowledged it.
    Delivered,
    /// In its recipient's inbox.
    Stored,
    /// Past its ttl: dropped, never delivered.
    Expired,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Stored => "stored",
            Outcome::Expired => "expired",
        }
    }
}

/// A notification to forward: what it follows, the last position stored
/// for its recipient lately, and how long it may wait.
pub struct Send {
    pub item: Arc<Positioned>,
    pub follows: Option<u64>,
    pub stored_through: Option<u64>,
    pub wait: Duration,
}

pub struct Router {
    pub inbox: Arc<dyn Inbox>,
    pub presence: Arc<dyn Presence>,
    /// Hands messages to the distributors holding recipients' connections.
    pub forward: Arc<dyn Forward>,
    /// Live delivery attempts before a notification goes to the inbox.
    pub attempts: u32,
    /// Between live attempts.
    pub retry_backoff: Backoff,
    /// While the inbox or presence is unreachable.
    pub outage_backoff: Backoff,
    /// The most notifications of one recipient sent live and not yet done.
    pub window: usize,
    /// How long a notification waits for an acknowledgement, all its live
    /// attempts together; the distributors' timeout.
    pub ack_timeout: Duration,
    /// How long acknowledgements take lately.
    pub ack_time: AckTime,
    pub metrics: DirectorMetrics,
}

impl Router {
    /// The distributors holding a connection of `recipient`, each once;
    /// retried while presence is unreachable, so it may take that long.
    pub async fn lookup(&self, recipient: &str) -> Vec<String> {
        let lookup = || self.presence.lookup(recipient);
        retry::until_ok("presence lookup", self.outage_backoff, lookup).await
    }

    /// Forwards `sends`, in order, to `distributors` (those of
    /// [`Router::lookup`]). Each future is one notification's outcome:
    /// delivered once one distributor says so, not connected when none
    /// holds a connection that takes it. `left_behind` is set whenever a
    /// distributor says a connection could not take one.
    pub fn forward(
        &self,
        recipient: &str,
        distributors: &[String],
        sends: Vec<Send>,
        left_behind: &Arc<AtomicBool>,
    ) -> Vec<BoxFuture<'static, forward::Outcome>> {
        sends
            .into_iter()
            .map(|send| {
                let message = Message::Notification {
                    envelope: Envelope::from(send.item.as_ref()),
                    follows: send.follows,
                    stored_through: send.stored_through,
                    wait_ms: send.wait.as_millis() as u64,
                };
                let answers: FuturesUnordered<_> = distributors
                    .iter()
                    .map(|d| {
                        let distributor = d.clone();
                        let answer = self.forward.send(d, recipient, message.clone());
                        answer.map(move |answer| (distributor, answer)).boxed()
                    })
                    .collect();
                let delivery = Delivery {
                    forward: self.forward.clone(),
                    distributors: distributors.to_vec(),
                    recipient: recipient.to_string(),
                    id: send.item.notification.id.clone(),
                    left_behind: left_behind.clone(),
                    metrics: self.metrics.clone(),
                };
                delivery.first_delivered(answers).boxed()
            })
            .collect()
    }

    /// Stores `items` in the inbox, retrying until it takes them.
    pub async fn store(&self, items: &[Arc<Positioned>]) {
        let batch: Vec<Positioned> = items.iter().map(|i| i.as_ref().clone()).collect();
        let store = || self.inbox.store(&batch);
        retry::until_ok("inbox store", self.outage_backoff, store).await;
        self.metrics.inbox_writes.inc_by(batch.len() as u64);
    }

    /// Tells the connections of `recipient` that its notifications through
    /// `through` were stored, so that each reads its inbox again before
    /// anything live that follows. Looked up after the store: a connection
    /// that registers later reads its inbox after the store.
    pub async fn tell_stored(&self, recipient: &str, through: u64) {
        let distributors = self.lookup(recipient).await;
        let told = distributors
            .iter()
            .map(|d| self.forward.send(d, recipient, Message::Stored { through }));
        futures::future::join_all(told).await;
    }

    pub fn delivered(&self, item: &Positioned) {
        let latency_ms = now_ms().saturating_sub(item.notification.published_at_ms);
        self.metrics
            .delivery_latency
            .observe(latency_ms as f64 / 1000.0);
    }
}

/// One notification forwarded to the distributors of its recipient.
struct Delivery {
    forward: Arc<dyn Forward>,
    /// Those it was forwarded to.
    distributors: Vec<String>,
    recipient: String,
    id: String,
    left_behind: Arc<AtomicBool>,
    metrics: DirectorMetrics,
}

type Answers = FuturesUnordered<BoxFuture<'static, (String, Answer)>>;

impl Delivery {
    /// Delivered as soon as one distributor says so; otherwise not connected
    /// when every one says that (or there is none), else timed out. Once one
    /// says delivered, the others still waiting are told, so that they stop
    /// waiting and do not close their connections as silent; their answers
    /// are still counted, in the background.
    async fn first_delivered(self, mut answers: Answers) -> forward::Outcome {
        let mut waiting: HashSet<String> = self.distributors.iter().cloned().collect();
        let mut outcome = forward::Outcome::NotConnected;
        while let Some((distributor, answer)) = answers.next().await {
            waiting.remove(&distributor);
            self.hear(answer);
            match answer.outcome {
                forward::Outcome::Delivered => {
                    for other in &waiting {
                        let acknowledged = Message::Acknowledged {
                            id: self.id.clone(),
                        };
                        // Not awaited: the notification's own answer from
                        // there follows, and is counted below.
                        drop(self.forward.send(other, &self.recipient, acknowledged));
                    }
                    tokio::spawn(async move {
                        while let Some((_, answer)) = answers.next().await {
                            self.hear(answer);
                        }
                    });
                    return forward::Outcome::Delivered;
                }
                forward::Outcome::TimedOut => outcome = forward::Outcome::TimedOut,
                forward::Outcome::NotConnected => {}
            }
        }
        outcome
    }

    fn hear(&self, answer: Answer) {
        if answer.left_behind {
            self.left_behind.store(true, Ordering::Relaxed);
        }
        count(&self.metrics, answer.outcome);
    }
}

fn count(metrics: &DirectorMetrics, outcome: forward::Outcome) {
    metrics
        .forwards
        .get_or_create(&OutcomeLabels {
            outcome: outcome.label(),
        })
        .inc();
}
