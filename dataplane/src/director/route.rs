//! What the director does with one notification: deliver it live to the
//! distributors that hold its recipient's connections, retrying with backoff
//! up to the configured attempts; otherwise store it in the inbox.

use std::sync::Arc;

use futures::future::join_all;

use crate::distributor::Envelope;
use crate::forward::{self, Forward};
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

pub struct Router {
    pub inbox: Arc<dyn Inbox>,
    pub presence: Arc<dyn Presence>,
    /// Hands a notification to a distributor holding its recipient's connections.
    pub forward: Arc<dyn Forward>,
    /// Live delivery attempts before a notification goes to the inbox.
    pub attempts: u32,
    /// Between live attempts.
    pub retry_backoff: Backoff,
    /// While the inbox or presence is unreachable.
    pub outage_backoff: Backoff,
    pub metrics: DirectorMetrics,
}

impl Router {
    /// Routes one notification to the end: this returns only once it is done,
    /// retrying while the inbox or presence is unreachable.
    pub async fn route(&self, item: &Positioned) -> Outcome {
        for attempt in 0..self.attempts {
            if attempt > 0 {
                self.metrics.retries.inc();
                tokio::time::sleep(self.retry_backoff.delay(attempt)).await;
            }
            if is_expired(item) {
                return Outcome::Expired;
            }
            let outcomes = self.forward(item).await;
            if outcomes.contains(&forward::Outcome::Delivered) {
                return self.delivered(item);
            }
            if outcomes
                .iter()
                .all(|o| *o == forward::Outcome::NotConnected)
            {
                break; // Offline (or presence was stale): no point retrying.
            }
        }
        if is_expired(item) {
            return Outcome::Expired;
        }
        let store = || self.inbox.store(std::slice::from_ref(item));
        retry::until_ok("inbox store", self.outage_backoff, store).await;
        self.metrics.inbox_writes.inc();
        // The connect/store race: a client that connected after the lookup
        // above may have read its inbox before this store. Connections join
        // live delivery before they read the inbox, so forwarding once more
        // reaches any such client. Its acknowledgement settles the live
        // delivery only (see the distributor's acknowledge), so the stored
        // copy is removed here.
        if self
            .forward(item)
            .await
            .contains(&forward::Outcome::Delivered)
        {
            let recipient = item.notification.recipient.as_str();
            let id = std::slice::from_ref(&item.notification.id);
            let remove = || self.inbox.acknowledge(recipient, id);
            retry::until_ok("inbox acknowledge", self.outage_backoff, remove).await;
            return self.delivered(item);
        }
        Outcome::Stored
    }

    fn delivered(&self, item: &Positioned) -> Outcome {
        let latency_ms = now_ms().saturating_sub(item.notification.published_at_ms);
        self.metrics
            .delivery_latency
            .observe(latency_ms as f64 / 1000.0);
        Outcome::Delivered
    }

    /// Forwards to every distributor holding a connection of the recipient;
    /// empty when there is none.
    async fn forward(&self, item: &Positioned) -> Vec<forward::Outcome> {
        let recipient = item.notification.recipient.as_str();
        let lookup = || self.presence.lookup(recipient);
        let distributors = retry::until_ok("presence lookup", self.outage_backoff, lookup).await;
        let envelope = Envelope::from(item);
        let forwards = distributors
            .iter()
            .map(|d| self.forward.forward(d, recipient, envelope.clone()));
        let outcomes = join_all(forwards).await;
        for outcome in &outcomes {
            let label = match outcome {
                forward::Outcome::Delivered => "delivered",
                forward::Outcome::NotConnected => "not_connected",
                forward::Outcome::TimedOut => "timed_out",
            };
            self.metrics
                .forwards
                .get_or_create(&OutcomeLabels { outcome: label })
                .inc();
        }
        outcomes
    }
}

fn is_expired(item: &Positioned) -> bool {
    item.notification
        .expires_at_ms
        .is_some_and(|expiry| expiry <= now_ms())
}
