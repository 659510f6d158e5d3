//! `notif-bench`: the benchmark of SaaSaparilla Notifications (`just bench`).
//!
//! It starts the service (the three roles on the test servers, or
//! standalone), opens client connections with the Rust SDK, publishes
//! through the publish API in batches at a set rate, and prints what it
//! measured: the ceiling of notifications delivered per second (WebSocket
//! and SSE), publish-to-deliver latency (one busy recipient; many SSE and
//! WebSocket clients; clients beside others that never acknowledge), and
//! the memory one idle connection costs the server. Each
//! scenario runs on a fresh deployment. It is a benchmark, not a test: it
//! prints figures and fails only when it cannot run.

mod load;
mod memory;
mod operator;
mod process_stats;
mod redis_work;
mod scale;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use notif_sdk::{NewNotification, Transport};
use testenv::notifd::{Deployment, Env};

use load::Load;

/// The credentials the benchmark's deployments use.
const API_KEY: &str = "bench-publisher-key";
const JWT_SECRET: &str = "bench-jwt-secret";

#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// How the service is deployed.
    #[arg(value_enum, default_value = "distributed")]
    target: Target,
    /// The notifd binary; by default the one next to this program.
    #[arg(long)]
    notifd: Option<PathBuf>,
    /// Clients of the ceiling scenarios (WebSocket, then SSE).
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Notifications published per second in the ceiling scenarios: above
    /// the 20,000/s target, so that what is delivered shows whether it holds.
    #[arg(long, default_value_t = 22_000)]
    rate: u32,
    /// Seconds of publishing in the ceiling scenarios.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Notifications per second to the 10 recipients of the one-recipient
    /// scenario, together.
    #[arg(long, default_value_t = 5_000)]
    one_rate: u32,
    /// SSE clients of the SSE latency and the silent-clients scenarios.
    #[arg(long, default_value_t = 2_000)]
    sse_clients: usize,
    /// Notifications per second of the SSE latency scenario.
    #[arg(long, default_value_t = 10_000)]
    sse_rate: u32,
    /// Notifications per second of the silent-clients scenario, to all.
    #[arg(long, default_value_t = 5_000)]
    silent_rate: u32,
    /// Notifications per second of the latency scenario.
    #[arg(long, default_value_t = 5_000)]
    latency_rate: u32,
    /// WebSocket clients of the latency scenario.
    #[arg(long, default_value_t = 1_000)]
    latency_clients: usize,
    /// Seconds of publishing in each of the other load scenarios.
    #[arg(long, default_value_t = 30)]
    latency_secs: u64,
    /// Idle connections of the memory scenarios.
    #[arg(long, default_value_t = 20_000)]
    idle: usize,
    /// NotificationClusters the operator scenario applies.
    #[arg(long, default_value_t = 5)]
    clusters: usize,
    /// WebSocket clients of the scale run.
    #[arg(long, default_value_t = 2_000)]
    scale_clients: usize,
    /// Notifications per second of the scale run.
    #[arg(long, default_value_t = 2_000)]
    scale_rate: u32,
    /// Seconds of publishing in the scale run.
    #[arg(long, default_value_t = 40)]
    scale_secs: u64,
    /// Seconds the operator scenario watches the unchanged clusters.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// The scenarios to run, comma-separated; all by default.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Scenario::all())]
    only: Vec<Scenario>,
}

/// The service's scenarios, in the order they run.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Delivered per second to many WebSocket clients.
    CeilingWs,
    /// Delivered per second to many SSE clients.
    CeilingSse,
    /// Latency for a few busy recipients.
    OneRecipient,
    /// Latency for many SSE clients.
    LatencySse,
    /// Latency for many WebSocket clients.
    LatencyWs,
    /// Latency beside clients that never acknowledge.
    Silent,
    /// Server memory per idle connection.
    Memory,
}

impl Scenario {
    fn all() -> Vec<Scenario> {
        Scenario::value_variants().to_vec()
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Target {
    /// receiver, director and distributor on Kafka, PostgreSQL and Redis.
    Distributed,
    /// `notifd standalone`.
    Standalone,
    /// The operator, on the test environment's API server and Kafka.
    Operator,
    /// Two instances of each role on the Redis Cluster and both PostgreSQL
    /// servers, while one of each is killed and started again.
    Scale,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let service = match args.target {
        Target::Distributed => Service::Distributed,
        Target::Standalone => Service::Standalone,
        Target::Scale => Service::Scaled,
        Target::Operator => {
            let binary = std::env::current_exe()?.with_file_name("notification-operator");
            let idle = Duration::from_secs(args.idle_secs);
            return operator::run(&binary, args.clusters, idle).await;
        }
    };
    // Tens of thousands of sockets, here and in the servers started from
    // here: as root, raise the hard limit too; otherwise go up to it.
    let files = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, files, files).is_err() {
        rlimit::increase_nofile_limit(files)?;
    }
    let notifd = match &args.notifd {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("notifd"),
    };
    anyhow::ensure!(
        notifd.is_file(),
        "no notifd at {}: build it (cargo build --release -p dataplane) or give --notifd",
        notifd.display()
    );
    let bench = Bench { service, notifd };
    println!(
        "notif-bench: {:?}, on this machine, everything local",
        args.target
    );

    if let Service::Scaled = bench.service {
        let scale = scale::Scale {
            clients: args.scale_clients,
            rate: args.scale_rate,
            duration: Duration::from_secs(args.scale_secs),
        };
        print!("{}", scale.run(bench.deploy().await).await?);
        return Ok(());
    }
    for scenario in Scenario::all() {
        if args.only.contains(&scenario) {
            bench.run(scenario, &args).await?;
        }
    }
    Ok(())
}

impl Bench {
    /// Runs one scenario and prints its figures.
    async fn run(&self, scenario: Scenario, args: &Args) -> anyhow::Result<()> {
        let duration = Duration::from_secs(args.duration_secs);
        let short = Duration::from_secs(args.latency_secs);
        match scenario {
            Scenario::CeilingWs | Scenario::CeilingSse => {
                let transport = if scenario == Scenario::CeilingWs {
                    Transport::WebSocket
                } else {
                    Transport::Sse
                };
                let ceiling = self
                    .load(Load {
                        clients: args.clients,
                        silent: 0,
                        transport,
                        rate: args.rate,
                        duration,
                    })
                    .await;
                println!(
                    "ceiling: {:.0} notifications/s delivered (target ≥ 20,000/s; WebSocket before the delivery window: 21,601 and 21,994/s) to {} {transport:?} clients, {} s at {}/s offered\n  {ceiling}",
                    ceiling.delivered_per_sec(),
                    args.clients,
                    args.duration_secs,
                    args.rate
                );
            }
            Scenario::OneRecipient => {
                let one = self
                    .load(Load {
                        clients: 10,
                        silent: 0,
                        transport: Transport::Sse,
                        rate: args.one_rate,
                        duration: short,
                    })
                    .await;
                println!(
                    "one recipient: p99 {} ms publish-to-deliver (target ≤ 50 ms) for 10 SSE recipients offered {}/s each (target 500/s); {} not delivered\n  {one}",
                    one.latency_ms(99.0),
                    args.one_rate / 10,
                    one.left_behind()
                );
            }
            Scenario::LatencySse => {
                let sse = self
                    .load(Load {
                        clients: args.sse_clients,
                        silent: 0,
                        transport: Transport::Sse,
                        rate: args.sse_rate,
                        duration: short,
                    })
                    .await;
                println!(
                    "latency: p99 {} ms publish-to-deliver (target ≤ 15 ms) at {}/s to {} SSE clients\n  {sse}",
                    sse.latency_ms(99.0),
                    args.sse_rate,
                    args.sse_clients
                );
            }
            Scenario::LatencyWs => {
                let latency = self
                    .load(Load {
                        clients: args.latency_clients,
                        silent: 0,
                        transport: Transport::WebSocket,
                        rate: args.latency_rate,
                        duration: short,
                    })
                    .await;
                println!(
                    "latency: p99 {} ms publish-to-deliver (target ≤ 50 ms) at {}/s to {} WebSocket clients\n  {latency}",
                    latency.latency_ms(99.0),
                    args.latency_rate,
                    args.latency_clients
                );
            }
            Scenario::Silent => {
                // The same load on the acknowledging clients, alone and then
                // beside clients that never acknowledge (a tenth of them
                // all), which get their share on top.
                let acking = args.sse_clients * 9 / 10;
                let silent = args.sse_clients - acking;
                let baseline = Load {
                    clients: acking,
                    silent: 0,
                    transport: Transport::Sse,
                    rate: args.silent_rate * 9 / 10,
                    duration: short,
                };
                let alone = self.load(baseline).await;
                let beside = self
                    .load(Load {
                        clients: acking,
                        silent,
                        transport: Transport::Sse,
                        rate: args.silent_rate,
                        duration: short,
                    })
                    .await;
                println!(
                    "silent clients: the {acking} acknowledging SSE clients' p50/p99 {}/{} ms alone, {}/{} ms beside {silent} that never acknowledge (target: p99 within 1.5×)\n  alone:  {alone}\n  beside: {beside}",
                    alone.latency_ms(50.0),
                    alone.latency_ms(99.0),
                    beside.latency_ms(50.0),
                    beside.latency_ms(99.0),
                );
            }
            Scenario::Memory => {
                // The server holds every idle connection as an open file, and
                // so does this process: neither may hold more than the hard
                // limit allows.
                let (_, hard_limit) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
                let idle = args
                    .idle
                    .min(usize::try_from(hard_limit.saturating_sub(1000)).unwrap_or(usize::MAX));
                if idle < args.idle {
                    println!(
                        "memory: {idle} idle connections, not {}: this machine allows {hard_limit} open files per process",
                        args.idle
                    );
                }
                for transport in [Transport::WebSocket, Transport::Sse] {
                    let memory = self.idle(transport, idle).await;
                    let target = match transport {
                        Transport::WebSocket => " (target ≤ 16 KiB)",
                        _ => "",
                    };
                    println!(
                        "memory: {:.1} KiB of server RSS per idle {transport:?} connection{target}\n  {memory}",
                        memory.per_connection_kib()
                    );
                }
            }
        }
        Ok(())
    }
}

/// How the measured notifd runs.
#[derive(Debug, Clone, Copy)]
enum Service {
    Distributed,
    Standalone,
    Scaled,
}

/// Starts deployments to measure.
struct Bench {
    service: Service,
    notifd: PathBuf,
}

impl Bench {
    async fn deploy(&self) -> Deployment {
        let env: Env = vec![
            (
                "NOTIF_API_KEY_HASHES",
                dataplane::auth::api_keys::ApiKeys::hash(API_KEY),
            ),
            ("NOTIF_JWT_SECRET", JWT_SECRET.to_string()),
            // Every load client connects from 127.0.0.1.
            ("NOTIF_MAX_CONNECTIONS_PER_ADDRESS", "0".to_string()),
        ];
        let deployment = match self.service {
            Service::Distributed => Deployment::distributed(&self.notifd, 6, env).await,
            Service::Scaled => Deployment::scaled(&self.notifd, 2, 8, env).await,
            Service::Standalone => {
                let dir = std::env::temp_dir().join(testenv::unique_name("bench"));
                Deployment::standalone(&self.notifd, &dir, env).await
            }
        };
        // A receiver on a new topic holds the first publishes through its
        // fence (docs/ordering.md), and a new director joins its consumer
        // group first: the measured load starts once a first notification
        // went all the way to a client.
        let receiver = format!("http://127.0.0.1:{}", deployment.role("receiver").http);
        let distributor = format!("http://127.0.0.1:{}", deployment.role("distributor").http);
        let mut client = notif_sdk::Subscriber::new(&distributor, token("bench-warm-up"))
            .transport(Transport::WebSocket)
            .subscribe();
        client.connected().await.expect("a first client connects");
        notif_sdk::Publisher::new(&receiver, API_KEY)
            .publish(&[NewNotification::new("bench-warm-up", serde_json::json!({}))])
            .await
            .expect("the receiver accepts a first publish");
        let first = tokio::time::timeout(Duration::from_secs(120), client.next())
            .await
            .expect("a first notification is delivered within 2 minutes")
            .expect("a first notification is delivered");
        client.ack(&first.id);
        deployment
    }

    async fn load(&self, load: Load) -> load::Figures {
        let deployment = self.deploy().await;
        let figures = load.run(&deployment).await;
        deployment.finish().await;
        figures
    }

    async fn idle(&self, transport: Transport, connections: usize) -> memory::Figures {
        let deployment = self.deploy().await;
        let figures = memory::idle(&deployment, transport, connections).await;
        deployment.finish().await;
        figures
    }
}

/// A client token for `recipient`, valid for an hour.
fn token(recipient: &str) -> String {
    let claims = dataplane::auth::jwt::Claims {
        sub: recipient.to_string(),
        exp: dataplane::notification::now_ms() / 1000 + 3600,
        scope: String::new(),
    };
    dataplane::auth::jwt::sign_with_secret(&claims, JWT_SECRET.as_bytes())
        .expect("HS256 signs with any secret")
}

/// Opens a subscription per recipient over `transport`, a wave at a time,
/// the recipients spread over `urls` in turn, each handled by `handle`
/// (given the recipient's index); returns once every one is connected.
async fn connect_all(
    urls: &[String],
    recipients: &[String],
    transport: Transport,
    handle: impl Fn(usize, notif_sdk::Subscription) -> tokio::task::JoinHandle<()>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(recipients.len());
    for (wave, recipients) in recipients.chunks(500).enumerate() {
        let mut subscriptions = Vec::with_capacity(recipients.len());
        for (i, recipient) in recipients.iter().enumerate() {
            let index = wave * 500 + i;
            let url = &urls[index % urls.len()];
            // A client whose server went away comes back within a second
            // of its return.
            let subscription = notif_sdk::Subscriber::new(url, token(recipient))
                .transport(transport)
                .backoff(Duration::from_millis(100), Duration::from_secs(1))
                .subscribe();
            subscriptions.push((index, subscription));
        }
        for (index, mut subscription) in subscriptions {
            tokio::time::timeout(Duration::from_secs(60), subscription.connected())
                .await
                .expect("each client connects within a minute")
                .expect("connected");
            tasks.push(handle(index, subscription));
        }
    }
    tasks
}
