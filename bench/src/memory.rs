//! What an idle connection costs the server: its resident memory before and
//! after opening many connections that receive nothing; and, where presence
//! is on Redis, what their heartbeats cost Redis.

use std::fmt;
use std::time::Duration;

use notif_sdk::Transport;
use testenv::notifd::{Deployment, Storage};

use crate::process_stats::{cpu_seconds, rss_kib};
use crate::redis_work::{Calls, Work};

/// A connection's heartbeat period: a third of the presence TTL (30 s by
/// default), so that a window this long holds one heartbeat of each. The
/// server's CPU is measured over it too.
const HEARTBEAT: Duration = Duration::from_secs(10);

pub struct Figures {
    connections: usize,
    before_kib: u64,
    after_kib: u64,
    /// The server's CPU time per idle connection over a heartbeat period,
    /// in µs.
    cpu_us: f64,
    /// Redis's work for one heartbeat period of the idle connections.
    heartbeats: Option<Work>,
}

pub async fn idle(deployment: &Deployment, transport: Transport, connections: usize) -> Figures {
    let server = deployment.role("distributor");
    let pid = server.pid().expect("the distributor runs");
    let url = [format!("http://127.0.0.1:{}", server.http)];
    let recipients: Vec<String> = (0..connections).map(|i| format!("idle-{i}")).collect();
    // One connection first, so that what every server allocates once is
    // counted before, not per connection.
    let warm_up = crate::connect_all(&url, &recipients[..1], transport, idle_client).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kib = rss_kib(pid);
    let clients = crate::connect_all(&url, &recipients[1..], transport, idle_client).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kib = rss_kib(pid);
    let redis = match deployment.storage {
        Storage::DataDir(_) => None,
        _ => Some([testenv::redis_url()]),
    };
    let redis_before = match &redis {
        Some(redis) => Some(Calls::now(redis).await),
        None => None,
    };
    let cpu_before = cpu_seconds(pid);
    tokio::time::sleep(HEARTBEAT).await;
    let cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / connections as f64;
    let heartbeats = match (&redis, redis_before) {
        (Some(redis), Some(before)) => {
            let per = "connection heartbeat";
            Some(
                Calls::now(redis)
                    .await
                    .since(&before, connections as u64, per),
            )
        }
        _ => None,
    };
    for client in clients.into_iter().chain(warm_up) {
        client.abort();
    }
    Figures {
        connections: connections - 1,
        before_kib,
        after_kib,
        cpu_us,
        heartbeats,
    }
}

/// Holds the subscription open, receiving nothing.
fn idle_client(_: usize, mut subscription: notif_sdk::Subscription) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while subscription.next().await.is_ok() {} })
}

impl Figures {
    pub fn per_connection_kib(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.connections as f64
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections: RSS {} MiB before, {} MiB after; {:.1} µs of the server's CPU per connection per {} s",
            self.connections,
            self.before_kib / 1024,
            self.after_kib / 1024,
            self.cpu_us,
            HEARTBEAT.as_secs()
        )?;
        match &self.heartbeats {
            Some(work) => write!(f, "; {work}"),
            None => Ok(()),
        }
    }
}
