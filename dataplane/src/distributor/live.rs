//! Live delivery inside one distributor: the connections it holds, by
//! recipient, and the notifications forwarded to them that wait for a
//! client's acknowledgement.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Envelope;
use crate::forward::Outcome;

/// Told when a client acknowledges a live notification.
struct AckWaiter {
    position: u64,
    done: oneshot::Sender<()>,
}

/// One connection's queue of live notifications.
struct Sink {
    connection: String,
    sender: mpsc::Sender<Envelope>,
}

/// A connected recipient: its connections' queues, and the ids its clients
/// acknowledged last.
#[derive(Default)]
struct Connected {
    sinks: Vec<Sink>,
    /// So that a notification forwarded again after it was acknowledged (a
    /// director replaying after a crash or a rebalance) is done at once,
    /// instead of waiting for an acknowledgement that will not come.
    acknowledged: VecDeque<String>,
}

/// Acknowledged ids remembered per connected recipient.
const REMEMBERED_ACKS: usize = 64;

#[derive(Default)]
pub struct Live {
    sinks: Mutex<HashMap<String, Connected>>,
    /// Waiting for an acknowledgement, by (recipient, id).
    waiters: Mutex<HashMap<(String, String), Vec<AckWaiter>>>,
}

/// A connection's end of its queue; unregisters on drop.
pub struct Subscription {
    live: Arc<Live>,
    recipient: String,
    connection: String,
    pub receiver: mpsc::Receiver<Envelope>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut sinks = self.live.sinks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(connected) = sinks.get_mut(&self.recipient) {
            connected.sinks.retain(|s| s.connection != self.connection);
            if connected.sinks.is_empty() {
                sinks.remove(&self.recipient);
            }
        }
    }
}

impl Live {
    /// Registers a connection of `recipient` with a queue of `capacity`.
    pub fn subscribe(
        self: &Arc<Self>,
        recipient: &str,
        connection: &str,
        capacity: usize,
    ) -> Subscription {
        let (sender, receiver) = mpsc::channel(capacity);
        let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
        sinks
            .entry(recipient.to_string())
            .or_default()
            .sinks
            .push(Sink {
                connection: connection.to_string(),
                sender,
            });
        Subscription {
            live: self.clone(),
            recipient: recipient.to_string(),
            connection: connection.to_string(),
            receiver,
        }
    }

    /// Hands `envelope` to every connection of `recipient` and waits up to
    /// `timeout` for one of them to acknowledge it. A connection whose queue
    /// is full is a slow client: it is dropped from the recipient's sinks
    /// (its queue's end then sees the channel close and closes the
    /// connection), and what it did not acknowledge stays durable elsewhere.
    pub async fn deliver(&self, recipient: &str, envelope: Envelope, timeout: Duration) -> Outcome {
        if self.was_acknowledged(recipient, &envelope.id) {
            return Outcome::Delivered;
        }
        let (acked, on_ack) = oneshot::channel();
        let key = (recipient.to_string(), envelope.id.clone());
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .push(AckWaiter {
                position: envelope.position,
                done: acked,
            });
        let sent = {
            let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
            match sinks.get_mut(recipient) {
                None => 0,
                Some(Connected { sinks: list, .. }) => {
                    list.retain(|sink| match sink.sender.try_send(envelope.clone()) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::info!(recipient, connection = %sink.connection, "closing a slow connection: its queue is full");
                            false
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    });
                    list.len()
                }
            }
        };
        let outcome = if sent == 0 {
            Outcome::NotConnected
        } else {
            match tokio::time::timeout(timeout, on_ack).await {
                Ok(Ok(())) => Outcome::Delivered,
                _ => Outcome::TimedOut,
            }
        };
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        outcome
    }

    /// A client of `recipient` acknowledged `ids`; returns those that were
    /// waiting here.
    pub fn acknowledge(&self, recipient: &str, ids: &[String]) -> Vec<String> {
        if let Some(connected) = self
            .sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(recipient)
        {
            let remembered = &mut connected.acknowledged;
            remembered.extend(ids.iter().cloned());
            let excess = remembered.len().saturating_sub(REMEMBERED_ACKS);
            remembered.drain(..excess);
        }
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        ids.iter()
            .filter(|id| {
                let Some(list) = waiters.remove(&(recipient.to_string(), (*id).clone())) else {
                    return false;
                };
                for waiter in list {
                    let _ = waiter.done.send(());
                }
                true
            })
            .cloned()
            .collect()
    }

    /// Whether a client of `recipient` connected here acknowledged `id` lately.
    fn was_acknowledged(&self, recipient: &str, id: &str) -> bool {
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(recipient)
            .is_some_and(|c| c.acknowledged.iter().any(|a| a == id))
    }

    /// A client of `recipient` acknowledged everything up to `position` (a
    /// long-poll cursor); returns the ids that were waiting here.
    pub fn acknowledge_through(&self, recipient: &str, position: u64) -> Vec<String> {
        let ids: Vec<String> = {
            let waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            waiters
                .iter()
                .filter(|((r, _), list)| {
                    r == recipient && list.iter().any(|w| w.position <= position)
                })
                .map(|((_, id), _)| id.clone())
                .collect()
        };
        self.acknowledge(recipient, &ids)
    }
}
