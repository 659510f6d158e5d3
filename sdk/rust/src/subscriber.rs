//! Subscribing as one recipient: a background task holds the connection,
//! makes it again when it drops, and hands notifications over in order,
//! each once.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::notification::Notification;
use crate::transport::{self, Ended, Link};

/// How a subscription connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /v1/connect/ws`; acknowledgements go over the socket.
    WebSocket,
    /// `GET /v1/connect/sse`; acknowledgements go by `POST /v1/ack`.
    Sse,
    /// `GET /v1/connect/poll`. Each poll acknowledges everything the
    /// application took from the previous ones (the protocol's cursor), so
    /// [`Subscription::ack`] changes nothing here.
    LongPoll,
}

/// Where a subscription is in its recipient's sequence; a new subscription
/// given it goes on from there, receiving only later notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resume {
    /// The position of the last notification handed out.
    pub after: Option<u64>,
}

/// Why a subscription ended. A dropped connection is not an error: it is
/// made again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The service refused the connection (a bad or expired token, say):
    /// connecting again cannot help.
    #[error("the service refused the connection: {status} {message}")]
    Refused { status: u16, message: String },
    /// The subscription has ended.
    #[error("the subscription has ended")]
    Ended,
}

/// Settings of a subscription.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub(crate) base_url: String,
    pub(crate) token: String,
    pub(crate) transport: Transport,
    pub(crate) resume: Resume,
    backoff_first: Duration,
    backoff_max: Duration,
}

impl Subscriber {
    /// `base_url` is the service's (a distributor's, or standalone's), e.g.
    /// `http://127.0.0.1:8080`; `token` a client JWT whose `sub` is the
    /// recipient.
    pub fn new(base_url: &str, token: impl Into<String>) -> Self {
        Subscriber {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.into(),
            transport: Transport::WebSocket,
            resume: Resume::default(),
            backoff_first: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }

    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Goes on from where an earlier subscription was.
    pub fn resume(mut self, resume: Resume) -> Self {
        self.resume = resume;
        self
    }

    /// The wait before reconnecting: `first`, doubling up to `max`, each
    /// wait a random time between half of it and all of it.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff_first = first;
        self.backoff_max = max.max(first);
        self
    }

    /// Connects in the background, within the current Tokio runtime.
    pub fn subscribe(self) -> Subscription {
        let (notifications, received) = mpsc::channel(1024);
        let (acks, to_ack) = mpsc::unbounded_channel();
        let (connected, watch_connected) = watch::channel(false);
        let (taken, watch_taken) = watch::channel(self.resume.after);
        let resume = self.resume;
        let link = Link::new(&self, notifications, to_ack, connected, watch_taken);
        let task = tokio::spawn(run(self, link));
        Subscription {
            received,
            acks,
            connected: watch_connected,
            taken,
            resume,
            task,
        }
    }

    fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .backoff_first
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let delay = doubled.min(self.backoff_max);
        delay.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// Connects, and connects again, until the connection is refused or the
/// subscription is dropped.
async fn run(subscriber: Subscriber, mut link: Link) {
    let mut failures = 0u32;
    loop {
        let ended = match subscriber.transport {
            Transport::WebSocket => transport::ws::run(&mut link).await,
            Transport::Sse => transport::sse::run(&mut link).await,
            Transport::LongPoll => transport::poll::run(&mut link).await,
        };
        let was_connected = link.disconnected();
        match ended {
            Ended::Refused(error) => {
                link.fail(error).await;
                return;
            }
            Ended::Dropped => return,
            Ended::Lost(reason) => {
                // Connect again on new connections: an idle pooled one may
                // lead to the server just lost (a hung one still holds it).
                link.renew_http();
                failures = if was_connected { 1 } else { failures + 1 };
                let delay = subscriber.delay(failures);
                tracing::debug!(%reason, ?delay, "connection lost; connecting again");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A recipient's notifications, in order, each once. Dropping it closes
/// the connection.
pub struct Subscription {
    received: mpsc::Receiver<Result<Notification, Error>>,
    acks: mpsc::UnboundedSender<String>,
    connected: watch::Receiver<bool>,
    /// Tells the connection what the application took (long-polling
    /// acknowledges only that).
    taken: watch::Sender<Option<u64>>,
    resume: Resume,
    task: JoinHandle<()>,
}

impl Subscription {
    /// The next notification; waits for one. After an error, the
    /// subscription has ended.
    pub async fn next(&mut self) -> Result<Notification, Error> {
        let notification = self.received.recv().await.ok_or(Error::Ended)??;
        self.resume.after = Some(notification.position);
        self.taken.send_replace(self.resume.after);
        Ok(notification)
    }

    /// Acknowledges a notification: it is not delivered again.
    pub fn ack(&self, id: &str) {
        let _ = self.acks.send(id.to_string());
    }

    /// Where this subscription is, for a later one to go on from.
    pub fn resume_point(&self) -> Resume {
        self.resume
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until the connection is up (for the first time, or again).
    pub async fn connected(&mut self) -> Result<(), Error> {
        self.connected
            .wait_for(|up| *up)
            .await
            .map(|_| ())
            .map_err(|_| Error::Ended)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}
