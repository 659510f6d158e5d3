//! Faults under load, one part of the service away each: a process killed
//! or paused while another of its role serves, or presence lost (the
//! shared servers stopped are in `exclusive`, with the same harness).
//! Publishers and clients, on all three transports, reach a role of two
//! processes through a balancer (what a Service does in Kubernetes) before,
//! during and after the fault; a quarter of the recipients are offline
//! through the fault. A report of what the clients received checks that
//! every accepted id arrives, in order per recipient.

use std::time::Duration;

use tokio::time::Instant;

use crate::Service;
use crate::load::{Balancer, Publisher, Report, client, record, stop};

/// Recipients, each with one client; their transports take turns.
const RECIPIENTS: usize = 96;
/// Between rounds of publishing; a round waits for the one before it to be
/// answered.
const TICK: Duration = Duration::from_millis(40);
/// Notifications offered per second during an outage of seconds: more
/// than the service takes here, so that it runs at its limit.
const SHORT_RATE: usize = 10_000;
/// Notifications offered per second during an outage of minutes: what
/// piles up for the recipients cut off must still arrive within
/// [`Timeline::settle`] once the outage ends.
const LONG_RATE: usize = 300;
/// An outage at least this long is a long one.
const LONG: Duration = Duration::from_secs(60);
/// Each scenario publishes until at least this many were accepted, however
/// long its timeline, so that the eight scenarios of the suite (five here,
/// three in `exclusive`) accept 100,000 between them.
const ACCEPTED_AT_LEAST: usize = 12_500;
/// The longest publishing may go on past its timeline to get there.
const ACCEPTED_WITHIN: Duration = Duration::from_secs(120);

/// How long publishing lasts and how fast, and when the fault comes and
/// ends.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    pub load: Duration,
    pub fault_at: Duration,
    pub recovery_at: Duration,
    /// Notifications offered per second.
    pub rate: usize,
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
            rate: if outage >= LONG {
                LONG_RATE
            } else {
                SHORT_RATE
            },
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

/// Whether recipient `i` goes offline for the fault: its client leaves when
/// the fault comes and a new one connects a moment after it ends, so what
/// was published meanwhile must wait in its inbox. A quarter of the
/// recipients, as many on each transport.
fn offline_through_the_fault(i: usize) -> bool {
    i % 4 == 3
}

/// How long after the recovery the offline recipients' clients come back.
const BACK_ONLINE: Duration = Duration::from_secs(1);

/// Publishes `timeline.rate` notifications a second, a round every
/// [`TICK`], for `timeline.load` and on until [`ACCEPTED_AT_LEAST`] were
/// accepted, through `url`. Returns how many were published, and the
/// publisher with what was accepted.
async fn publish(url: String, mut publisher: Publisher, timeline: Timeline) -> (usize, Publisher) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    let per_round = (timeline.rate * TICK.as_millis() as usize / 1000).max(1);
    let mut published = 0;
    let mut tick = tokio::time::interval(TICK);
    let end = Instant::now() + timeline.load;
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= end
            && (publisher.accepted_count() >= ACCEPTED_AT_LEAST || now >= end + ACCEPTED_WITHIN)
        {
            break;
        }
        published += per_round;
        publisher.round(&http, &url, per_round, TICK).await;
    }
    (published, publisher)
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
    // A first round, one notification each, reaches every client before
    // the clock starts: the fault then comes while live delivery flows, not
    // while a new director still joins its consumer group.
    let mut publisher = Publisher::new(&recipients);
    let warmed_up = publisher
        .round(&reqwest::Client::new(), publish_url, RECIPIENTS, TICK)
        .await;
    assert!(warmed_up, "the first round is accepted");
    testenv::wait_until("the first round reaches every client", SETTLE, async || {
        received
            .iter()
            .all(|log| !log.lock().expect("log").is_empty())
    })
    .await;
    let started = Instant::now();
    let publisher = tokio::spawn(publish(publish_url.to_string(), publisher, timeline));
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
    let (published, publisher) = publisher.await.expect("the publisher");
    let published = published + RECIPIENTS;
    let online = |i| !offline_through_the_fault(i);
    let deadline = Instant::now() + timeline.settle();
    while !Report::of(published, &publisher, &received, online).is_complete()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(clients, &recipients).await;
    let report = Report::of(published, &publisher, &received, online);
    println!("{name}: {report:?}");
    assert!(
        report.accepted >= ACCEPTED_AT_LEAST,
        "{name}: fewer than {ACCEPTED_AT_LEAST} accepted: {report:?}"
    );
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
/// their committed offsets. When the outage ends it joins again, and the
/// partitions are shared out once more while publishing goes on.
#[tokio::test]
async fn a_director_joining_and_killed_under_load_loses_nothing() {
    let service = Service::distributed().await;
    let publish_url = service.publish_url();
    let mut killer = None;
    let mut rejoined = None;
    let fault = async |phase| match phase {
        Phase::Fault => {
            let mut joining = service.role("director").twin();
            joining.start().await;
            killer = Some(tokio::spawn(kill_once_assigned(joining)));
        }
        Phase::Recovery => {
            let mut killed = killer.take().expect("it joined").await.expect("killed");
            killed.start().await;
            rejoined = Some(killed);
        }
    };
    let timeline = Timeline::outage(
        Duration::from_millis(1200),
        Duration::from_millis(1200),
        Duration::from_millis(5600),
    );
    let report = under_load(
        "director",
        &publish_url,
        &service.connect_url(),
        timeline,
        fault,
    )
    .await;
    assert_most_accepted(&report);
    drop(rejoined);
    service.finish().await;
}

/// Kills `director` once it reads partitions (it shows their lag), and
/// gives it back to be started again.
async fn kill_once_assigned(mut director: testenv::notifd::Process) -> testenv::notifd::Process {
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
    director
}

/// One of two distributors paused (SIGSTOP) for 6 s under load, then let go
/// on: its connections and its forwarding stream hang instead of closing.
/// Its notifications wait out the acknowledgement timeout and are stored;
/// its clients get them once it goes on, or from the other distributor,
/// which they reconnect to once they have heard nothing, not even a
/// keep-alive, for the SDK's 75 s: a long pause costs them no more. The
/// balancer leaves the paused one out meanwhile, as a Service does once
/// its pod fails the readiness probe (a hung kernel still accepts
/// connections, which would hang too).
#[tokio::test]
async fn a_paused_distributor_loses_nothing() {
    let service = Service::distributed().await;
    let second = service.second_distributor().await;
    let distributors = Balancer::start(vec![service.role("distributor").http, second.http]).await;
    let publish_url = service.publish_url();
    let paused = service.role("distributor");
    let fault = async |phase| match phase {
        Phase::Fault => {
            paused.pause();
            distributors.set(vec![second.http]);
        }
        Phase::Recovery => {
            paused.resume();
            distributors.set(vec![paused.http, second.http]);
        }
    };
    let timeline = Timeline::outage(
        Duration::from_secs(1),
        Duration::from_secs(6),
        Duration::from_secs(3),
    );
    let report = under_load("paused", &publish_url, &distributors.url(), timeline, fault).await;
    assert_most_accepted(&report);
    assert!(
        report.longest_pause < Duration::from_secs(120),
        "clients left the paused distributor: {report:?}"
    );
    drop(second);
    service.finish().await;
}

/// Redis loses every presence entry of the service under load (a flush, or
/// a failover to a replica that had none), and again every second while
/// the outage lasts (none by default, minutes in `just fault-long`): the
/// director finds the recipients offline and stores their notifications
/// until the distributors' heartbeats list their connections again.
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
    let mut flushing = None;
    let fault = async |phase| match phase {
        Phase::Fault => {
            let flushed = flush_presence(&mut redis, &prefix).await;
            assert!(flushed > 0, "presence held the clients");
            let (mut redis, prefix) = (redis.clone(), prefix.clone());
            flushing = Some(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    flush_presence(&mut redis, &prefix).await;
                }
            }));
        }
        Phase::Recovery => flushing.take().expect("flushing").abort(),
    };
    let timeline = Timeline::outage(
        Duration::from_secs(2),
        Duration::ZERO,
        Duration::from_secs(4),
    );
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

/// Deletes the service's presence entries (those under `prefix`); how many.
async fn flush_presence(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(redis)
        .await
        .expect("the service's keys");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(redis)
            .await
            .expect("deleted");
    }
    keys.len()
}
