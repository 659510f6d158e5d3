//! Faults under load, one part of the service away each: a process killed
//! or paused while another of its role serves, or presence lost (the
//! shared servers stopped are in `exclusive`, with the same harness).
//! Publishers and clients, on all three transports, reach a role of two
//! processes through a balancer (what a Service does in Kubernetes) before,
//! during and after the fault; a quarter of the recipients are offline
//! through the fault. A report of what the clients received checks that
//! every accepted id arrives, in order per recipient.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notif_sdk::{Error, Subscriber, Transport};
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Service, token};

/// Recipients, each with one client; their transports take turns.
const RECIPIENTS: usize = 12;
const TRANSPORTS: [Transport; 3] = [Transport::WebSocket, Transport::Sse, Transport::LongPoll];
/// Between rounds of one notification to each recipient.
const TICK: Duration = Duration::from_millis(40);

/// How long publishing lasts, and when the fault comes and ends.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub load: Duration,
    pub fault_at: Duration,
    pub recovery_at: Duration,
}

impl Timeline {
    /// The fault at `fault_at`, lasting `outage` (or the seconds in
    /// `NOTIF_FAULT_OUTAGE_SECS`, as `just fault-long` sets them), and
    /// `after` more of publishing once it ends.
    pub fn outage(fault_at: Duration, outage: Duration, after: Duration) -> Timeline {
        let outage = std::env::var("NOTIF_FAULT_OUTAGE_SECS")
            .ok()
            .map(|secs| {
                Duration::from_secs(secs.parse().expect("NOTIF_FAULT_OUTAGE_SECS: seconds"))
            })
            .unwrap_or(outage);
        Timeline {
            load: fault_at + outage + after,
            fault_at,
            recovery_at: fault_at + outage,
        }
    }

    /// How long after publishing every accepted id may take to arrive.
    fn settle(&self) -> Duration {
        SETTLE + (self.recovery_at - self.fault_at)
    }
}

/// A process killed, and started again 1.2 s later.
fn kill() -> Timeline {
    let second = Duration::from_millis(1200);
    Timeline::outage(second, second, second)
}

/// What the fault closure is called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Fault,
    Recovery,
}

/// How long every accepted id has to arrive after the last round.
const SETTLE: Duration = Duration::from_secs(60);

/// Forwards each connection to the first of its backends that takes it,
/// starting from a different one each time.
struct Balancer {
    port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
    task: JoinHandle<()>,
}

impl Balancer {
    async fn start(backends: Vec<u16>) -> Balancer {
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

    fn set(&self, backends: Vec<u16>) {
        *self.backends.lock().expect("backends") = backends;
    }

    fn url(&self) -> String {
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
type Received = Arc<Mutex<Vec<(String, Instant)>>>;

/// One client per recipient through `url`, acknowledging what it receives.
fn record(url: &str, recipients: &[String]) -> (Vec<Received>, Vec<JoinHandle<Error>>) {
    let received: Vec<Received> = recipients.iter().map(|_| Received::default()).collect();
    let tasks = (0..recipients.len())
        .map(|i| client(url, recipients, i, received[i].clone()))
        .collect();
    (received, tasks)
}

/// The client of recipient `i`, on its transport, acknowledging what it
/// receives and writing it down in `log`.
fn client(url: &str, recipients: &[String], i: usize, log: Received) -> JoinHandle<Error> {
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
async fn stop(clients: Vec<JoinHandle<Error>>, recipients: &[String]) {
    for (client, recipient) in clients.into_iter().zip(recipients) {
        if client.is_finished() {
            let ended = client.await.expect("a client");
            panic!("{recipient}'s subscription ended: {ended}");
        }
        client.abort();
    }
}

/// Whether recipient `i` goes offline for the fault: its client leaves when
/// the fault comes and a new one connects a moment after it ends, so what
/// was published meanwhile must wait in its inbox. One of each transport.
fn offline_through_the_fault(i: usize) -> bool {
    i % 4 == 3
}

/// How long after the recovery the offline recipients' clients come back.
const BACK_ONLINE: Duration = Duration::from_secs(1);

/// Publishes a round of one notification to each recipient every
/// [`TICK`] for `load`, from round 1, through `url`. Returns how many were
/// published, and each recipient's accepted ids, in publish order.
async fn publish(
    url: String,
    recipients: Vec<String>,
    load: Duration,
) -> (usize, Vec<Vec<String>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    let mut accepted = vec![Vec::new(); recipients.len()];
    let mut published = 0;
    let mut tick = tokio::time::interval(TICK);
    let end = Instant::now() + load;
    for round in 1.. {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        published += recipients.len();
        if let Some(ids) = publish_round(&http, &url, &recipients, round).await {
            for (list, id) in accepted.iter_mut().zip(ids) {
                list.push(id);
            }
        }
    }
    (published, accepted)
}

/// Publishes one notification to each recipient, `{recipient}-{round}`,
/// tried three times (on other receivers, behind a balancer) while it is
/// not accepted; their ids once accepted.
async fn publish_round(
    http: &reqwest::Client,
    url: &str,
    recipients: &[String],
    round: usize,
) -> Option<Vec<String>> {
    let ids: Vec<String> = recipients
        .iter()
        .map(|r| format!("{r}-{round:05}"))
        .collect();
    let notifications: Vec<_> = recipients
        .iter()
        .zip(&ids)
        .map(|(r, id)| serde_json::json!({"recipient": r, "id": id, "payload": round}))
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
            return Some(ids);
        }
        tokio::time::sleep(TICK).await;
    }
    None
}

/// What the clients received against what was accepted.
#[derive(Debug, Default)]
pub struct Report {
    pub published: usize,
    pub accepted: usize,
    delivered: usize,
    duplicates: usize,
    lost: usize,
    reordered: usize,
    /// The longest a client that stayed online went without a notification.
    longest_pause: Duration,
}

impl Report {
    fn of(published: usize, accepted: &[Vec<String>], received: &[Received]) -> Report {
        let mut report = Report {
            published,
            ..Report::default()
        };
        for (i, (ids, log)) in accepted.iter().zip(received).enumerate() {
            let log = log.lock().expect("log");
            let mut seen = HashSet::new();
            // Ids end in their round: a later one received first is out of
            // order (an id accepted or not: a publish may have been written
            // and its answer lost).
            let mut last_round = None;
            for (id, _) in log.iter() {
                if !seen.insert(id.clone()) {
                    report.duplicates += 1;
                    continue;
                }
                let round = id.rsplit('-').next().map(str::to_string);
                if round <= last_round {
                    report.reordered += 1;
                }
                last_round = round;
            }
            report.accepted += ids.len();
            report.delivered += ids.iter().filter(|id| seen.contains(*id)).count();
            if !offline_through_the_fault(i) {
                let pauses = log.windows(2).map(|pair| pair[1].1 - pair[0].1);
                report.longest_pause = pauses.fold(report.longest_pause, Duration::max);
            }
        }
        report.lost = report.accepted - report.delivered;
        report
    }

    fn is_complete(&self) -> bool {
        self.lost == 0
    }
}

/// Runs the load through `publish_url` and `connect_url`, with `fault`
/// called as `timeline` says; waits for every accepted id; prints the
/// report and checks that nothing accepted was lost or reordered.
pub async fn under_load(
    name: &str,
    publish_url: &str,
    connect_url: &str,
    timeline: Timeline,
    mut fault: impl AsyncFnMut(Phase),
) -> Report {
    let recipients: Vec<String> = (0..RECIPIENTS).map(|i| format!("{name}-{i}")).collect();
    let (received, mut clients) = record(connect_url, &recipients);
    // Round 0 reaches every client before the clock starts: the fault then
    // comes while live delivery flows, not while a new director still joins
    // its consumer group.
    let http = reqwest::Client::new();
    let warm_up = publish_round(&http, publish_url, &recipients, 0).await;
    let warm_up = warm_up.expect("round 0 is accepted");
    testenv::wait_until("round 0 reaches every client", SETTLE, async || {
        received
            .iter()
            .zip(&warm_up)
            .all(|(log, id)| log.lock().expect("log").iter().any(|(got, _)| got == id))
    })
    .await;
    let started = Instant::now();
    let publisher = tokio::spawn(publish(
        publish_url.to_string(),
        recipients.clone(),
        timeline.load,
    ));
    tokio::time::sleep_until(started + timeline.fault_at).await;
    let offline: Vec<usize> = (0..RECIPIENTS)
        .filter(|i| offline_through_the_fault(*i))
        .collect();
    for &i in &offline {
        clients[i].abort();
    }
    fault(Phase::Fault).await;
    tokio::time::sleep_until(started + timeline.recovery_at).await;
    fault(Phase::Recovery).await;
    tokio::time::sleep(BACK_ONLINE).await;
    for &i in &offline {
        clients[i] = client(connect_url, &recipients, i, received[i].clone());
    }
    let (published, mut accepted) = publisher.await.expect("the publisher");
    for (list, id) in accepted.iter_mut().zip(warm_up) {
        list.insert(0, id);
    }
    let published = published + RECIPIENTS;
    let deadline = Instant::now() + timeline.settle();
    while !Report::of(published, &accepted, &received).is_complete() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(clients, &recipients).await;
    let report = Report::of(published, &accepted, &received);
    println!("{name}: {report:?}");
    assert!(report.accepted > 0, "{name}: nothing was accepted");
    assert_eq!(
        (report.lost, report.reordered),
        (0, 0),
        "{name}: {report:?}"
    );
    report
}

/// Asserts that publishers went on through the fault: at least 90% of what
/// they published was accepted.
fn assert_most_accepted(report: &Report) {
    assert!(
        report.accepted * 10 >= report.published * 9,
        "most was accepted: {report:?}"
    );
}

#[tokio::test]
async fn a_killed_distributors_clients_reconnect_to_the_other_and_lose_nothing() {
    let mut service = Service::distributed().await;
    let second = service.second_distributor().await;
    let distributors = Balancer::start(vec![service.role("distributor").http, second.http]).await;
    let publish_url = service.publish_url();
    let fault = async |phase| match phase {
        Phase::Fault => service.role_mut("distributor").kill(),
        Phase::Recovery => {
            let restarted = service.role_mut("distributor");
            restarted.start().await;
            distributors.set(vec![restarted.http, second.http]);
        }
    };
    let report = under_load(
        "distributor",
        &publish_url,
        &distributors.url(),
        kill(),
        fault,
    )
    .await;
    assert_most_accepted(&report);
    drop(second);
    service.finish().await;
}

#[tokio::test]
async fn a_killed_receivers_publishers_go_on_with_the_other_and_lose_nothing() {
    let mut service = Service::distributed().await;
    let mut second = service.role("receiver").twin();
    second.start().await;
    let receivers = Balancer::start(vec![service.role("receiver").http, second.http]).await;
    let connect_url = service.connect_url();
    let fault = async |phase| match phase {
        Phase::Fault => service.role_mut("receiver").kill(),
        Phase::Recovery => {
            let restarted = service.role_mut("receiver");
            restarted.start().await;
            receivers.set(vec![restarted.http, second.http]);
        }
    };
    let report = under_load("receiver", &receivers.url(), &connect_url, kill(), fault).await;
    assert_most_accepted(&report);
    drop(second);
    service.finish().await;
}

/// A second director joins the consumer group under load, takes some of
/// the partitions, and is killed as soon as it reads them: they go back to
/// the first after the group's session timeout, which replays them from
/// their committed offsets.
#[tokio::test]
async fn a_director_joining_and_killed_under_load_loses_nothing() {
    let service = Service::distributed().await;
    let publish_url = service.publish_url();
    let mut killer = None;
    let fault = async |phase| match phase {
        Phase::Fault => {
            let mut joining = service.role("director").twin();
            joining.start().await;
            killer = Some(tokio::spawn(kill_once_assigned(joining)));
        }
        Phase::Recovery => killer.take().expect("it joined").await.expect("killed"),
    };
    // Publishing goes on while it joins, and after it was killed.
    let timeline = Timeline {
        load: Duration::from_secs(8),
        fault_at: Duration::from_millis(1200),
        recovery_at: Duration::from_millis(2400),
    };
    let report = under_load(
        "director",
        &publish_url,
        &service.connect_url(),
        timeline,
        fault,
    )
    .await;
    assert_most_accepted(&report);
    service.finish().await;
}

/// Kills `director` once it reads partitions (it shows their lag).
async fn kill_once_assigned(mut director: testenv::notifd::Process) {
    let metrics = format!("http://127.0.0.1:{}/metrics", director.admin);
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = match reqwest::get(&metrics).await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("notif_consumer_lag{") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second director read no partition"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    director.kill();
}

/// One of two distributors paused (SIGSTOP) for 6 s under load, then let go
/// on: its connections and its forwarding stream hang instead of closing.
/// Its notifications wait out the acknowledgement timeout and are stored;
/// its clients get them once it goes on, or from the other distributor.
#[tokio::test]
async fn a_paused_distributor_loses_nothing() {
    let service = Service::distributed().await;
    let second = service.second_distributor().await;
    let distributors = Balancer::start(vec![service.role("distributor").http, second.http]).await;
    let publish_url = service.publish_url();
    let paused = service.role("distributor");
    let fault = async |phase| match phase {
        Phase::Fault => paused.pause(),
        Phase::Recovery => paused.resume(),
    };
    let timeline = Timeline::outage(
        Duration::from_secs(1),
        Duration::from_secs(6),
        Duration::from_secs(3),
    );
    let report = under_load("paused", &publish_url, &distributors.url(), timeline, fault).await;
    assert_most_accepted(&report);
    drop(second);
    service.finish().await;
}

/// Redis loses every presence entry of the service under load (a flush, or
/// a failover to a replica that had none): the director finds the
/// recipients offline and stores their notifications until the
/// distributors' heartbeats list their connections again.
#[tokio::test]
async fn presence_flushed_under_load_loses_nothing() {
    let service = Service::distributed().await;
    let prefix = service
        .role("distributor")
        .env("NOTIF_REDIS_KEY_PREFIX")
        .expect("a key prefix")
        .to_string();
    let publish_url = service.publish_url();
    let redis = redis::Client::open(testenv::redis_url()).expect("a Redis client");
    let mut redis = redis
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let fault = async |phase| {
        if phase == Phase::Fault {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut redis)
                .await
                .expect("the service's keys");
            assert!(!keys.is_empty(), "presence holds the clients");
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut redis)
                .await
                .expect("deleted");
        }
    };
    let timeline = Timeline {
        load: Duration::from_secs(6),
        fault_at: Duration::from_secs(2),
        recovery_at: Duration::from_secs(2),
    };
    under_load(
        "flushed",
        &publish_url,
        &service.connect_url(),
        timeline,
        fault,
    )
    .await;
    service.finish().await;
}
