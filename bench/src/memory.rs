//! What an idle connection costs the server: its resident memory before and
//! after opening many connections that receive nothing.

use std::fmt;
use std::time::Duration;

use notif_sdk::Transport;
use testenv::notifd::Deployment;

pub struct Figures {
    connections: usize,
    before_kib: u64,
    after_kib: u64,
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
    for client in clients.into_iter().chain(warm_up) {
        client.abort();
    }
    Figures {
        connections: connections - 1,
        before_kib,
        after_kib,
    }
}

/// Holds the subscription open, receiving nothing.
fn idle_client(_: usize, mut subscription: notif_sdk::Subscription) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while subscription.next().await.is_ok() {} })
}

/// The process's resident set size, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in kB")
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
            "{} connections: RSS {} MiB before, {} MiB after",
            self.connections,
            self.before_kib / 1024,
            self.after_kib / 1024
        )
    }
}
