//! Load for the fault scenarios, and its check: publishers that number each
//! recipient's notifications, clients on all three transports that write
//! down what they receive, a balancer in front of a role's processes, and a
//! report of what arrived against what was accepted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notif_sdk::{Error, Subscriber, Transport};
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::token;

const TRANSPORTS: [Transport; 3] = [Transport::WebSocket, Transport::Sse, Transport::LongPoll];

/// How long after a notification's expiry its delivery may still arrive:
/// it was sent before it expired and was on its way.
const EXPIRY_SLACK: Duration = Duration::from_secs(1);

/// Forwards each connection to the first of its backends that takes it,
/// starting from a different one each time.
pub struct Balancer {
    port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
    task: JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<u16>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let backends = Arc::new(Mutex::new(backends));
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((client, _)) = listener.accept().await {
                let ports = shared.lock().expect("backends").clone();
                next += 1;
                tokio::spawn(forward(client, ports, next));
            }
        });
        Balancer {
            port,
            backends,
            task,
        }
    }

    pub fn set(&self, backends: Vec<u16>) {
        *self.backends.lock().expect("backends") = backends;
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, ports: Vec<u16>, first: usize) {
    for i in 0..ports.len() {
        let port = ports[(first + i) % ports.len()];
        if let Ok(mut backend) = TcpStream::connect(("127.0.0.1", port)).await {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
            return;
        }
    }
}

/// What one recipient's client received, with when.
pub type Received = Arc<Mutex<Vec<(String, Instant)>>>;

/// One client per recipient through `url`, acknowledging what it receives.
pub fn record(url: &str, recipients: &[String]) -> (Vec<Received>, Vec<JoinHandle<Error>>) {
    let received: Vec<Received> = recipients.iter().map(|_| Received::default()).collect();
    let tasks = (0..recipients.len())
        .map(|i| client(url, recipients, i, received[i].clone()))
        .collect();
    (received, tasks)
}

/// The client of recipient `i`, on its transport (they take turns),
/// acknowledging what it receives and writing it down in `log`.
pub fn client(url: &str, recipients: &[String], i: usize, log: Received) -> JoinHandle<Error> {
    let mut subscription = Subscriber::new(url, token(&recipients[i]))
        .transport(TRANSPORTS[i % TRANSPORTS.len()])
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .subscribe();
    tokio::spawn(async move {
        loop {
            let notification = match subscription.next().await {
                Ok(notification) => notification,
                Err(ended) => return ended,
            };
            subscription.ack(&notification.id);
            log.lock()
                .expect("log")
                .push((notification.id, Instant::now()));
        }
    })
}

/// Stops the clients; a client whose subscription ended by itself fails the
/// run with its reason, which would otherwise show only as undelivered ids.
pub async fn stop(clients: Vec<JoinHandle<Error>>, recipients: &[String]) {
    for (client, recipient) in clients.into_iter().zip(recipients) {
        if client.is_finished() {
            let ended = client.await.expect("a client");
            panic!("{recipient}'s subscription ended: {ended}");
        }
        client.abort();
    }
}

/// Publishes to the recipients in turn, each notification to a recipient
/// with an id ending in the recipient's next sequence number.
pub struct Publisher {
    recipients: Vec<String>,
    /// The next sequence number of each recipient.
    sequence: Vec<usize>,
    /// The recipient the next round starts with.
    next: usize,
    /// Each recipient's accepted ids, in publish order.
    pub accepted: Vec<Vec<String>>,
    /// Every how many notifications one has a ttl, and how long it is.
    ttl: Option<(usize, Duration)>,
    /// When the accepted ones with a ttl expire at the latest.
    expiry: HashMap<String, Instant>,
}

impl Publisher {
    pub fn new(recipients: &[String]) -> Publisher {
        Publisher {
            recipients: recipients.to_vec(),
            sequence: vec![0; recipients.len()],
            next: 0,
            accepted: vec![Vec::new(); recipients.len()],
            ttl: None,
            expiry: HashMap::new(),
        }
    }

    /// Gives one notification in `every` a ttl of `ttl` (whole seconds).
    pub fn with_ttl(mut self, every: usize, ttl: Duration) -> Publisher {
        self.ttl = Some((every.max(1), ttl));
        self
    }

    pub fn accepted_count(&self) -> usize {
        self.accepted.iter().map(Vec::len).sum()
    }

    /// Publishes `count` notifications in one batch through `url`, tried
    /// three times (on other receivers, behind a balancer) while it is not
    /// accepted, `pause` apart; whether it was.
    pub async fn round(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        count: usize,
        pause: Duration,
    ) -> bool {
        let mut ids: Vec<(usize, String, Option<Duration>)> = Vec::with_capacity(count);
        for _ in 0..count {
            let i = self.next % self.recipients.len();
            self.next += 1;
            self.sequence[i] += 1;
            let ttl = self
                .ttl
                .filter(|(every, _)| self.next.is_multiple_of(*every))
                .map(|(_, ttl)| ttl);
            let id = format!("{}-{:07}", self.recipients[i], self.sequence[i]);
            ids.push((i, id, ttl));
        }
        let notifications: Vec<_> = ids
            .iter()
            .map(|(i, id, ttl)| {
                let mut notification =
                    serde_json::json!({"recipient": self.recipients[*i], "id": id, "payload": id});
                if let Some(ttl) = ttl {
                    notification["ttl"] = ttl.as_secs().into();
                }
                notification
            })
            .collect();
        let body = serde_json::json!({ "notifications": notifications });
        for _ in 0..3 {
            let answer = http
                .post(format!("{url}/v1/notifications"))
                .bearer_auth(crate::API_KEY)
                .json(&body)
                .send()
                .await;
            if answer.is_ok_and(|a| a.status() == StatusCode::ACCEPTED) {
                // The service set each expiry when the request came, before now.
                let answered = Instant::now();
                for (i, id, ttl) in ids {
                    if let Some(ttl) = ttl {
                        self.expiry.insert(id.clone(), answered + ttl);
                    }
                    self.accepted[i].push(id);
                }
                return true;
            }
            tokio::time::sleep(pause).await;
        }
        false
    }
}

/// What the clients received against what was accepted.
#[derive(Debug, Default)]
pub struct Report {
    pub published: usize,
    pub accepted: usize,
    pub delivered: usize,
    pub duplicates: usize,
    /// Accepted, not delivered, and not expired.
    pub lost: usize,
    pub reordered: usize,
    /// Accepted with a ttl, and expired before they were delivered.
    pub expired: usize,
    /// Delivered well after they expired.
    pub expired_delivered: usize,
    /// The latest a delivery arrived after its notification expired.
    pub latest_after_expiry: Duration,
    /// The longest a client that stayed online went without a notification.
    pub longest_pause: Duration,
    /// The first ids lost (a few), and the first received out of order
    /// (after the one named second), to start looking.
    pub first_lost: Vec<String>,
    pub first_reordered: Option<(String, String)>,
}

impl Report {
    /// `online(i)` tells whether recipient `i`'s client stayed online, for
    /// the longest pause.
    pub fn of(
        published: usize,
        publisher: &Publisher,
        received: &[Received],
        online: impl Fn(usize) -> bool,
    ) -> Report {
        let mut report = Report {
            published,
            ..Report::default()
        };
        let now = Instant::now();
        for (i, (ids, log)) in publisher.accepted.iter().zip(received).enumerate() {
            let log = log.lock().expect("log");
            let mut seen = HashSet::new();
            // Ids end in their sequence: a later one received first is out
            // of order (an id accepted or not: a publish may have been
            // written and its answer lost).
            let mut last: Option<&String> = None;
            for (id, at) in log.iter() {
                if !seen.insert(id.clone()) {
                    report.duplicates += 1;
                    continue;
                }
                if let Some(last) = last.filter(|last| sequence(id) <= sequence(last)) {
                    report.reordered += 1;
                    report
                        .first_reordered
                        .get_or_insert_with(|| (id.clone(), last.clone()));
                }
                last = Some(id);
                if let Some(late) = publisher
                    .expiry
                    .get(id)
                    .and_then(|e| at.checked_duration_since(*e))
                {
                    report.latest_after_expiry = report.latest_after_expiry.max(late);
                    if late > EXPIRY_SLACK {
                        report.expired_delivered += 1;
                    }
                }
            }
            report.accepted += ids.len();
            for id in ids {
                if seen.contains(id) {
                    report.delivered += 1;
                } else if publisher.expiry.get(id).is_some_and(|expiry| *expiry < now) {
                    report.expired += 1;
                } else {
                    report.lost += 1;
                    if report.first_lost.len() < 12 {
                        report.first_lost.push(id.clone());
                    }
                }
            }
            if online(i) {
                let pauses = log.windows(2).map(|pair| pair[1].1 - pair[0].1);
                report.longest_pause = pauses.fold(report.longest_pause, Duration::max);
            }
        }
        report
    }

    pub fn is_complete(&self) -> bool {
        self.lost == 0
    }
}

/// The sequence number an id ends in.
fn sequence(id: &str) -> &str {
    id.rsplit('-').next().unwrap_or(id)
}
