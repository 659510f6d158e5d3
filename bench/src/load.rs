//! The load: clients that take and acknowledge what they receive (and,
//! beside them, clients that never acknowledge), and a publisher that sends
//! batches at a set rate; what was delivered and how long it took.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use notif_sdk::{NewNotification, Publisher, Transport};
use testenv::notifd::{Deployment, Storage};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::redis_work::{Calls, Work};

/// Batches sent per second.
pub const TICKS_PER_SEC: u32 = 100;
/// Batches in flight at once, at most.
pub const IN_FLIGHT: usize = 64;
/// How long the clients get, after publishing stops, for the rest.
const DRAIN: Duration = Duration::from_secs(15);

pub struct Load {
    /// Clients that acknowledge what they take (over `POST /v1/ack` for
    /// SSE, as browsers do), each a recipient of its own.
    pub clients: usize,
    /// Clients connected beside them that never acknowledge; what is
    /// published is spread over all the recipients alike.
    pub silent: usize,
    pub transport: Transport,
    /// Notifications published per second, to all the recipients.
    pub rate: u32,
    pub duration: Duration,
}

/// What the clients counted.
#[derive(Default)]
struct Received {
    /// Delivered while publishing went on.
    in_window: AtomicU64,
    total: AtomicU64,
    /// Publish-to-deliver, in ms.
    latency: Mutex<Option<Histogram<u64>>>,
    publishing: std::sync::atomic::AtomicBool,
}

impl Received {
    /// Does `f` with the latency histogram, while it is still being kept.
    fn latency(&self, f: impl FnOnce(&mut Histogram<u64>)) {
        if let Some(histogram) = self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            f(histogram);
        }
    }
}

pub struct Figures {
    duration: Duration,
    offered: u64,
    accepted: u64,
    refused: u64,
    delivered_in_window: u64,
    delivered: u64,
    latency: Histogram<u64>,
    /// From sending a publish to its answer, in ms: the part of the
    /// latency spent before the notifications are durable and go on.
    answered: Histogram<u64>,
    /// What Redis did for it, when the service keeps presence there.
    redis: Option<Work>,
}

/// A histogram of milliseconds, from 1 ms to 2 minutes.
pub fn milliseconds() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000, 3).expect("valid bounds")
}

/// Records the milliseconds since `since` in a shared histogram.
pub fn record_since(histogram: &Mutex<Histogram<u64>>, since: Instant) {
    let ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
    record_ms(histogram, ms);
}

/// Records `ms` in a shared histogram (0 as 1, its least).
pub fn record_ms(histogram: &Mutex<Histogram<u64>>, ms: u64) {
    let mut histogram = histogram.lock().unwrap_or_else(|e| e.into_inner());
    let _ = histogram.record(ms.max(1));
}

impl Load {
    pub async fn run(&self, deployment: &Deployment) -> Figures {
        let connect_url = format!("http://127.0.0.1:{}", deployment.role("distributor").http);
        let publish_url = format!("http://127.0.0.1:{}", deployment.role("receiver").http);
        let recipients: Vec<String> = (0..self.clients).map(|i| format!("bench-{i}")).collect();
        let silent: Vec<String> = (0..self.silent)
            .map(|i| format!("bench-silent-{i}"))
            .collect();
        let received = Arc::new(Received {
            latency: Mutex::new(Some(milliseconds())),
            ..Received::default()
        });
        let connect_url = [connect_url];
        let mut clients = crate::connect_all(&connect_url, &recipients, self.transport, |_, s| {
            tokio::spawn(take(s, received.clone()))
        })
        .await;
        clients.extend(
            crate::connect_all(&connect_url, &silent, self.transport, |_, s| {
                tokio::spawn(ignore(s))
            })
            .await,
        );

        let publisher = Publisher::new(&publish_url, crate::API_KEY);
        warm_up(&publisher, &recipients, &received).await;

        // Redis holds presence only in the distributed service.
        let on_redis = !matches!(deployment.storage, Storage::DataDir(_));
        let redis_before = match on_redis {
            true => Some(Calls::now(&[testenv::redis_url()]).await),
            false => None,
        };
        received.publishing.store(true, Ordering::Relaxed);
        let everyone: Vec<String> = recipients.iter().chain(&silent).cloned().collect();
        let (offered, accepted, refused, answered) = self.publish(&publisher, &everyone).await;
        received.publishing.store(false, Ordering::Relaxed);
        let delivered_in_window = received.in_window.load(Ordering::Relaxed);

        // What the acknowledging clients were sent: their share.
        let theirs = accepted * self.clients as u64 / everyone.len() as u64;
        let drained = Instant::now() + DRAIN;
        while received.total.load(Ordering::Relaxed) < theirs && Instant::now() < drained {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let redis = match redis_before {
            Some(before) => Some(Calls::now(&[testenv::redis_url()]).await.since(
                &before,
                accepted,
                "accepted notification",
            )),
            None => None,
        };
        for client in clients {
            client.abort();
        }
        let latency = received
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("taken once");
        Figures {
            duration: self.duration,
            offered,
            accepted,
            refused,
            delivered_in_window,
            delivered: received.total.load(Ordering::Relaxed),
            latency,
            answered,
            redis,
        }
    }

    /// Publishes `rate` a second for the duration, round robin over the
    /// recipients; returns how many were offered, accepted and refused, and
    /// how long the answers took.
    async fn publish(
        &self,
        publisher: &Publisher,
        recipients: &[String],
    ) -> (u64, u64, u64, Histogram<u64>) {
        let per_tick = (self.rate / TICKS_PER_SEC).max(1) as usize;
        let ticks = self.duration.as_secs() * u64::from(TICKS_PER_SEC);
        let mut tick = tokio::time::interval(Duration::from_secs(1) / TICKS_PER_SEC);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let accepted = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(Mutex::new(milliseconds()));
        let mut next = 0usize;
        for _ in 0..ticks {
            tick.tick().await;
            let batch: Vec<NewNotification> = (0..per_tick)
                .map(|_| {
                    next += 1;
                    let recipient = &recipients[next % recipients.len()];
                    NewNotification::new(recipient, serde_json::json!({ "n": next }))
                })
                .collect();
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let (publisher, accepted, refused, answered) = (
                publisher.clone(),
                accepted.clone(),
                refused.clone(),
                answered.clone(),
            );
            tokio::spawn(async move {
                let count = batch.len() as u64;
                let sent = Instant::now();
                match publisher.publish(&batch).await {
                    Ok(_) => accepted.fetch_add(count, Ordering::Relaxed),
                    Err(_) => refused.fetch_add(count, Ordering::Relaxed),
                };
                record_since(&answered, sent);
                drop(permit);
            });
        }
        // The last batches' answers.
        let _ = in_flight.acquire_many(IN_FLIGHT as u32).await;
        let answered = answered.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (
            ticks * per_tick as u64,
            accepted.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed),
            answered,
        )
    }
}

/// One notification to each acknowledging client, taken and acknowledged
/// before the measured load begins, then forgotten: what is measured is the
/// service holding its clients, not every client's first acknowledgement
/// (which opens its HTTP connection for acknowledgements) at the same moment.
async fn warm_up(publisher: &Publisher, recipients: &[String], received: &Received) {
    for chunk in recipients.chunks(1000) {
        let batch: Vec<NewNotification> = chunk
            .iter()
            .map(|recipient| {
                NewNotification::new(recipient, serde_json::json!({ "warm_up": true }))
            })
            .collect();
        publisher
            .publish(&batch)
            .await
            .expect("the warm-up is accepted");
    }
    let deadline = Instant::now() + DRAIN;
    while received.total.load(Ordering::Relaxed) < recipients.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "the warm-up reaches every client"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Acknowledgements go on behind the last delivery.
    tokio::time::sleep(Duration::from_millis(500)).await;
    received.total.store(0, Ordering::Relaxed);
    received.latency(Histogram::reset);
}

/// A client that takes what comes and never acknowledges it.
async fn ignore(mut subscription: notif_sdk::Subscription) {
    while subscription.next().await.is_ok() {}
}

/// One client: takes each notification, records its latency, acknowledges it.
async fn take(mut subscription: notif_sdk::Subscription, received: Arc<Received>) {
    while let Ok(notification) = subscription.next().await {
        subscription.ack(&notification.id);
        let latency =
            dataplane::notification::now_ms().saturating_sub(notification.published_at_ms);
        if received.publishing.load(Ordering::Relaxed) {
            received.in_window.fetch_add(1, Ordering::Relaxed);
        }
        received.total.fetch_add(1, Ordering::Relaxed);
        received.latency(|histogram| {
            let _ = histogram.record(latency.max(1));
        });
    }
}

impl Figures {
    pub fn delivered_per_sec(&self) -> f64 {
        self.delivered_in_window as f64 / self.duration.as_secs_f64()
    }

    /// Accepted for the acknowledging clients (all of them, without silent
    /// ones) and not delivered by the end of the drain.
    pub fn left_behind(&self) -> u64 {
        self.accepted.saturating_sub(self.delivered)
    }

    pub fn latency_ms(&self, percentile: f64) -> u64 {
        self.latency.value_at_percentile(percentile)
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offered {}, accepted {} ({:.0}/s), refused {}; delivered {} while publishing, {} in all; latency p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms; publishes answered (durable) p50 {} ms, p99 {} ms, max {} ms",
            self.offered,
            self.accepted,
            self.accepted as f64 / self.duration.as_secs_f64(),
            self.refused,
            self.delivered_in_window,
            self.delivered,
            self.latency_ms(50.0),
            self.latency_ms(99.0),
            self.latency_ms(99.9),
            self.latency.max(),
            self.answered.value_at_percentile(50.0),
            self.answered.value_at_percentile(99.0),
            self.answered.max(),
        )?;
        match &self.redis {
            Some(work) => write!(f, "; {work}"),
            None => Ok(()),
        }
    }
}
