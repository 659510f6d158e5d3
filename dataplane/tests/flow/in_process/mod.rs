//! The whole service in this test process, built by the composition root
//! (`dataplane::compose`) on standalone's embedded backends, with a second
//! distributor beside the first. Each part fails as a seeded plan says
//! ([`plan`], [`faulty`]): the log's writes and reads, the inbox and
//! presence (which may also forget everything), the director's forwarding
//! stream, the director as a whole (it crashes and starts again from what
//! it committed), the second distributor (it stops, and a new one starts)
//! and the clients (they leave and come back). Every
//! scenario publishes [`NOTIFICATIONS`] through the public API to clients
//! on all three transports, while the faults come and go, and checks that
//! every accepted id arrives, in order per recipient, and that nothing
//! arrives after it expired.
//!
//! The plan is the same for a seed (each scenario has its own;
//! `NOTIF_FAULT_SEED=random` tries others, and `NOTIF_FAULT_TARGETS`, a
//! comma-separated list of [`Target`]s in lower case, other targets); the
//! order in which calls meet it is the machine's, as the service runs on
//! real sockets and threads. Every run prints its seed.

mod faulty;
mod plan;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dataplane::auth::api_keys::ApiKeys;
use dataplane::auth::jwt::JwtVerifier;
use dataplane::compose::{self, AllRoles, Backends, Metrics, Settings};
use dataplane::director::{Backends as RoutingBackends, Forwarder};
use dataplane::distributor::{Distributor, Parts, forward_in};
use dataplane::forward::Forward;
use dataplane::inbox::{Inbox, SqliteInbox};
use dataplane::listen::ListenArgs;
use dataplane::log::{Log, LogReader, SqliteLog};
use dataplane::metrics::DistributorMetrics;
use dataplane::presence::{MemoryPresence, Presence};
use dataplane::sqlite::Database;
use dataplane::standalone::{DataDir, StandaloneArgs};
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::faulty::Faulty;
use self::plan::{Fault, Plan, Target};
use crate::load::{Balancer, Publisher, Report, client, record, stop};
use crate::{API_KEY, JWT_SECRET, WINDOW};

/// Accepted notifications each scenario publishes at least.
const NOTIFICATIONS: usize = 100_000;
const RECIPIENTS: usize = 96;
/// Notifications per publish request; each waits for the one before.
const ROUND: usize = 500;
/// How long faults keep coming, and publishing lasts.
const FAULTS_FOR: Duration = Duration::from_secs(20);
/// How long after the last publish every accepted id has to arrive.
const SETTLE: Duration = Duration::from_secs(180);
/// One notification in so many has a ttl of [`TTL`]: some of them expire
/// while faults hold them up.
const TTL_EVERY: usize = 50;
const TTL: Duration = Duration::from_secs(5);

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    standalone: StandaloneArgs,
}

/// The service in process: the roles the composition root builds, with a
/// second distributor beside the first; the director reaches both over
/// the forwarding stream, and clients reach them through a balancer. It
/// keeps what it takes to start the director and the second distributor
/// again.
struct InProcess {
    /// The receiver's port (the first distributor's too).
    publish_url: String,
    /// Both distributors' client ports.
    clients: Balancer,
    first_http: u16,
    second: Option<Second>,
    /// How many second distributors have started: each has an id of its own.
    seconds: usize,
    settings: Settings,
    listen: ListenArgs,
    metrics: Metrics,
    plan: Arc<Plan>,
    database: Database,
    inbox: Arc<dyn Inbox>,
    presence: Arc<dyn Presence>,
    /// What `presence` wraps, to make it forget.
    memory_presence: Arc<MemoryPresence>,
    jwt: JwtVerifier,
    forward: Arc<dyn Forward>,
    routing: JoinHandle<()>,
    stop: CancellationToken,
    _data_dir: DataDir,
}

/// The second distributor, as `notifd distributor` runs: its own client
/// and forward ports, announced in presence.
struct Second {
    http: u16,
    stop: CancellationToken,
}

impl InProcess {
    async fn start(plan: Arc<Plan>) -> InProcess {
        let data_path = std::env::temp_dir().join(testenv::unique_name("in-process"));
        std::fs::create_dir_all(&data_path).expect("a data directory");
        let api_key_hash = ApiKeys::hash(API_KEY);
        let window = WINDOW.to_string();
        let flags = Flags::try_parse_from([
            "notifd",
            "--api-key-hashes",
            &api_key_hash,
            "--jwt-secret",
            JWT_SECRET,
            // The flow tests' short timings.
            "--ack-timeout-secs=2",
            "--retry-backoff-ms=50",
            "--delivery-window",
            &window,
            // A stopped distributor leaves presence soon.
            "--presence-ttl-secs=3",
        ])
        .expect("the flags");
        let args = flags.standalone;
        let data_dir = DataDir::lock(&data_path).expect("the data directory");
        let database = data_dir.database().await.expect("the database");
        let metrics = Metrics::register(&mut Registry::default());
        let log = Arc::new(
            SqliteLog::open(database.clone(), &metrics.director.consumer_lag)
                .await
                .expect("the log"),
        );
        let inbox: Arc<dyn Inbox> = Arc::new(SqliteInbox::new(database.clone()));
        let inbox: Arc<dyn Inbox> = Faulty::new(inbox, plan.clone(), Target::Inbox);
        let memory_presence = Arc::new(MemoryPresence::default());
        let presence: Arc<dyn Presence> = memory_presence.clone();
        let presence: Arc<dyn Presence> = Faulty::new(presence, plan.clone(), Target::Presence);
        let writer: Arc<dyn Log> = log.clone();
        let reader: Arc<dyn LogReader> = log;
        let jwt = args
            .jwt
            .verifier()
            .expect("the JWT flags")
            .expect("a secret");
        let credentials = compose::Credentials {
            publisher: args
                .publisher
                .load(Some(jwt.clone()))
                .expect("the API keys"),
            jwt: jwt.clone(),
        };
        let settings = Settings {
            limits: args.limits,
            routing: args.routing,
            connections: args.connections,
        };
        let stop = CancellationToken::new();
        let forwarder: Arc<dyn Forward> = Arc::new(Forwarder::new(presence.clone(), None));
        let forward: Arc<dyn Forward> = Faulty::new(forwarder, plan.clone(), Target::Forward);
        let roles = AllRoles::build(
            &settings,
            Backends {
                log: Faulty::new(writer, plan.clone(), Target::Log),
                reader: Faulty::new(reader, plan.clone(), Target::Reader),
                inbox: inbox.clone(),
                presence: presence.clone(),
            },
            credentials,
            metrics.clone(),
            stop.clone(),
            |_| forward.clone(),
        )
        .expect("the roles");
        let first_http = serve_distributor(
            roles.distributor.clone(),
            roles.router(),
            &args.listen,
            stop.clone(),
        )
        .await;
        let routing = tokio::spawn(roles.routing.run(stop.clone().cancelled_owned()));
        let mut service = InProcess {
            publish_url: format!("http://127.0.0.1:{first_http}"),
            clients: Balancer::start(vec![first_http]).await,
            first_http,
            second: None,
            seconds: 0,
            settings,
            listen: args.listen,
            metrics,
            plan,
            database,
            inbox,
            presence,
            memory_presence,
            jwt,
            forward,
            routing,
            stop,
            _data_dir: data_dir,
        };
        service.start_second().await;
        service
    }

    /// A second distributor starts, and the balancer sends clients to it too.
    async fn start_second(&mut self) {
        self.seconds += 1;
        let stop = self.stop.child_token();
        let distributor = self
            .settings
            .connections
            .distributor(Parts {
                id: format!("second-{}", self.seconds),
                inbox: self.inbox.clone(),
                presence: self.presence.clone(),
                jwt: self.jwt.clone(),
                metrics: DistributorMetrics::default(),
                stop: stop.clone(),
                forward_secret: None,
            })
            .expect("the distributor");
        let distributor = Arc::new(distributor);
        let router = dataplane::distributor::router(distributor.clone());
        let http = serve_distributor(distributor, router, &self.listen, stop.clone()).await;
        self.clients.set(vec![self.first_http, http]);
        self.second = Some(Second { http, stop });
    }

    /// The second distributor stops: its connections close, and their
    /// clients reconnect to the first.
    fn stop_second(&mut self) {
        if let Some(second) = self.second.take() {
            self.clients.set(vec![self.first_http]);
            second.stop.cancel();
            tracing::debug!(port = second.http, "the second distributor stopped");
        }
    }

    /// The director crashes: its routing ends where it is, nothing drained
    /// and nothing committed.
    fn crash_director(&self) {
        self.routing.abort();
    }

    /// The director starts again, reading from what was committed.
    async fn restart_director(&mut self) {
        let reader: Arc<dyn LogReader> = Arc::new(
            SqliteLog::open(self.database.clone(), &self.metrics.director.consumer_lag)
                .await
                .expect("the log"),
        );
        let routing = self
            .settings
            .routing
            .consume(
                RoutingBackends {
                    log: Faulty::new(reader, self.plan.clone(), Target::Reader),
                    inbox: self.inbox.clone(),
                    presence: self.presence.clone(),
                    forward: self.forward.clone(),
                },
                Duration::from_secs(self.settings.connections.ack_timeout_secs),
                self.metrics.director.clone(),
            )
            .expect("routing");
        self.routing = tokio::spawn(routing.run(self.stop.clone().cancelled_owned()));
    }

    /// Prints where the notification `id` is: in the inbox, or still in
    /// the log, and how far the log is done.
    async fn show_where(&self, id: &str) {
        let recipient = id.rsplit_once('-').map_or(id, |(r, _)| r);
        let stored = self
            .inbox
            .pending(recipient, None, 10_000, 0)
            .await
            .expect("the inbox");
        let in_log: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log WHERE record LIKE ?")
            .bind(format!("%\"{id}\"%"))
            .fetch_one(&self.database.pool)
            .await
            .expect("the log");
        let committed: Option<i64> = sqlx::query_scalar("SELECT next_seq FROM log_committed")
            .fetch_optional(&self.database.pool)
            .await
            .expect("the log");
        println!(
            "{id}: in the inbox: {}, of {} stored for {recipient} (first {:?}); rows in the log: {in_log}; the log done before {committed:?}",
            stored.iter().any(|p| p.notification.id == id),
            stored.len(),
            stored.first().map(|p| (&p.notification.id, p.position)),
        );
    }

    async fn finish(self) {
        self.stop.cancel();
        let _ = self.routing.await;
    }
}

/// Serves `distributor`'s forward port and `public` (its client
/// endpoints, and whatever else the process serves) on ports of their own
/// until `stop`, and announces the forward port in presence meanwhile, as
/// `notifd distributor` does. Returns the public port.
async fn serve_distributor(
    distributor: Arc<Distributor>,
    public: axum::Router,
    listen: &ListenArgs,
    stop: CancellationToken,
) -> u16 {
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (http, forward) = (bind().await.expect("a port"), bind().await.expect("a port"));
    let http_port = http.local_addr().expect("its address").port();
    let forward_address = forward.local_addr().expect("its address").to_string();
    let (listen, serving) = (listen.clone(), stop.clone());
    tokio::spawn(async move {
        dataplane::listen::serve(http, public, &listen, serving)
            .await
            .expect("serving");
    });
    let forward_in = forward_in::router(distributor.clone());
    tokio::spawn(
        axum::serve(forward, forward_in)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    tokio::spawn(async move {
        let ttl = distributor.presence_ttl;
        let mut beat = tokio::time::interval(ttl / 3);
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    let announced = distributor.presence.announce_distributor(&distributor.id, &forward_address, ttl);
                    let _ = announced.await;
                }
                () = stop.cancelled() => return,
            }
        }
    });
    http_port
}

/// Publishes until [`NOTIFICATIONS`] were accepted, a round at a time,
/// spread over [`FAULTS_FOR`] while the service keeps up.
async fn publish(url: String, mut publisher: Publisher) -> (usize, Publisher) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    let mut published = 0;
    let mut tick = tokio::time::interval(FAULTS_FOR * ROUND as u32 / NOTIFICATIONS as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while publisher.accepted_count() < NOTIFICATIONS {
        tick.tick().await;
        published += ROUND;
        publisher
            .round(&http, &url, ROUND, Duration::from_millis(20))
            .await;
    }
    (published, publisher)
}

/// Runs the load under faults on `targets`, as planned from `seed` (or
/// `NOTIF_FAULT_SEED`), and checks what arrived.
async fn scenario(name: &str, seed: u64, targets: &[Target]) {
    let targets = Target::from_env().unwrap_or(targets.to_vec());
    let mut plan = Plan::seeded(seed, FAULTS_FOR, &targets);
    println!("{name}: {plan}");
    plan.start();
    let plan = Arc::new(plan);
    let mut service = InProcess::start(plan.clone()).await;
    let recipients: Vec<String> = (0..RECIPIENTS).map(|i| format!("{name}-{i}")).collect();
    let connect_url = service.clients.url();
    let (received, mut clients) = record(&connect_url, &recipients);
    let publisher = Publisher::new(&recipients).with_ttl(TTL_EVERY, TTL);
    let publishing = tokio::spawn(publish(service.publish_url.clone(), publisher));

    // The faults that are events rather than calls: each window's start and
    // end, in the order of time.
    let mut events: Vec<(Duration, bool, usize)> = plan
        .windows
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            matches!(
                (w.target, w.fault),
                (Target::Director | Target::Distributor | Target::Clients, _)
                    | (Target::Presence, Fault::Forget)
            )
        })
        .flat_map(|(index, w)| [(w.from, true, index), (w.to, false, index)])
        .collect();
    events.sort();
    let mut left = HashSet::new();
    let mut forgetting = None;
    for (at, starts, index) in events {
        tokio::time::sleep_until(plan.started() + at).await;
        let window = plan.windows[index];
        // Only even ones leave: the odd ones stay, for the longest pause.
        let leaving = |every: usize| {
            (0..RECIPIENTS).filter(move |i| i % 2 == 0 && (i / 2 + index) % every == 0)
        };
        match (window.target, window.fault, starts) {
            (Target::Director, _, true) => service.crash_director(),
            (Target::Director, _, false) => service.restart_director().await,
            (Target::Distributor, _, true) => service.stop_second(),
            (Target::Distributor, _, false) => service.start_second().await,
            (Target::Presence, _, true) => {
                let presence = service.memory_presence.clone();
                forgetting = Some(tokio::spawn(async move {
                    loop {
                        presence.forget();
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }));
            }
            (Target::Presence, _, false) => {
                forgetting.take().expect("forgetting").abort();
            }
            (_, Fault::Leave { every }, true) => {
                for i in leaving(every) {
                    clients[i].abort();
                    left.insert(i);
                }
            }
            (_, Fault::Leave { every }, false) => {
                for i in leaving(every) {
                    clients[i] = client(&connect_url, &recipients, i, received[i].clone());
                }
            }
            _ => {}
        }
    }

    let (published, publisher) = publishing.await.expect("the publisher");
    let online = |i| !left.contains(&i);
    let deadline = Instant::now() + SETTLE;
    while !Report::of(published, &publisher, &received, online).is_complete()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(clients, &recipients).await;
    let report = Report::of(published, &publisher, &received, online);
    println!(
        "{name}: {report:?} in {:.1} s",
        plan.started().elapsed().as_secs_f64()
    );
    if let Some(lost) = report.first_lost.first() {
        service.show_where(lost).await;
        for w in &plan.windows {
            println!(
                "  {:?} {:?} {:.1}-{:.1} s",
                w.target,
                w.fault,
                w.from.as_secs_f64(),
                w.to.as_secs_f64()
            );
        }
    }
    service.finish().await;
    assert!(
        report.accepted >= NOTIFICATIONS,
        "{name}: fewer than {NOTIFICATIONS} accepted: {report:?}; {plan}"
    );
    assert_eq!(
        (report.lost, report.reordered, report.expired_delivered),
        (0, 0, 0),
        "{name}: lost, reordered, delivered after expiry: {report:?}; {plan}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_failing_loses_nothing() {
    scenario("log", 1, &[Target::Log, Target::Reader]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inbox_failing_loses_nothing() {
    scenario("inbox", 2, &[Target::Inbox, Target::Clients]).await;
}

/// Its seed found notifications sent after they expired, while a lane's
/// presence lookup waited out a stall.
#[tokio::test(flavor = "multi_thread")]
async fn presence_failing_and_forgetting_loses_nothing() {
    scenario(
        "presence",
        14_321_809_259_194_892_724,
        &[Target::Presence, Target::Clients],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hand_over_breaking_loses_nothing() {
    scenario(
        "forward",
        17_701_015_908_338_100_373,
        &[Target::Forward, Target::Clients],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_distributor_stopping_loses_nothing() {
    scenario("distributor", 6, &[Target::Distributor, Target::Clients]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_director_crashing_loses_nothing() {
    scenario("director", 5, &[Target::Director, Target::Clients]).await;
}

/// Its seed found notifications lost after a director crashed: the new
/// director's lanes did not know what the one before had stored without
/// reaching the recipient's connections (its message lost with a broken
/// stream, or a connection missing from presence); a connection took later
/// ones live, and its cumulative acknowledgement removed the stored ones
/// from the inbox.
#[tokio::test(flavor = "multi_thread")]
async fn everything_failing_at_once_loses_nothing() {
    scenario(
        "everything",
        15_056_305_123_176_942_106,
        &[
            Target::Log,
            Target::Reader,
            Target::Inbox,
            Target::Presence,
            Target::Forward,
            Target::Director,
            Target::Distributor,
            Target::Clients,
        ],
    )
    .await;
}
