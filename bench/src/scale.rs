//! `notif-bench scale` (`just bench scale`): the service scaled out on this
//! machine (two instances of each role, presence on the Redis Cluster, the
//! inbox on both PostgreSQL servers), its clients spread over every
//! distributor and its publishes over every receiver, while one instance of
//! each role is killed and, later, started again. It prints the aggregate
//! and each instance's figures, what each role costs per CPU-second (the
//! inputs of docs/scaling.md), and checks that every accepted notification
//! arrived, in order.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use notif_sdk::{NewNotification, Publisher, Transport};
use testenv::notifd::{Deployment, Process, Storage};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::load::{IN_FLIGHT, TICKS_PER_SEC, record_ms, record_since};
use crate::process_stats::{cpu_seconds, server_cpu_seconds};
use crate::redis_work::Calls;

const ROLES: [&str; 3] = ["receiver", "director", "distributor"];
/// How long the clients get, after publishing stops, for the rest.
const DRAIN: Duration = Duration::from_secs(60);

pub struct Scale {
    /// WebSocket clients, a recipient each, spread over the distributors.
    pub clients: usize,
    /// Notifications published per second, spread over the receivers.
    pub rate: u32,
    pub duration: Duration,
}

/// What every recipient's client received, and when.
struct Received {
    /// Per recipient, the sequence numbers of what arrived, in order.
    arrivals: Vec<Mutex<Vec<u32>>>,
    /// Per distributor, what its clients received.
    by_distributor: Vec<AtomicU64>,
    total: AtomicU64,
    publishing: AtomicBool,
    in_window: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

/// One accepted notification: its sequence number, when its publish was
/// sent, and when it was answered.
#[derive(Clone, Copy)]
struct Accepted {
    sequence: u32,
    sent: Instant,
    answered: Instant,
}

/// What the publishers had accepted.
struct Published {
    offered: u64,
    /// Per recipient, what was accepted.
    accepted: Vec<Vec<Accepted>>,
    /// Batches that one receiver refused and the other then took.
    retried: u64,
    answered: Histogram<u64>,
}

impl Scale {
    pub async fn run(&self, mut deployment: Deployment) -> anyhow::Result<String> {
        let urls = |role: &str| -> Vec<String> {
            deployment
                .instances(role)
                .map(|p| format!("http://127.0.0.1:{}", p.http))
                .collect()
        };
        let (distributors, receivers) = (urls("distributor"), urls("receiver"));
        let recipients: Vec<String> = (0..self.clients).map(|i| format!("scale-{i}")).collect();
        let received = Arc::new(Received {
            arrivals: recipients.iter().map(|_| Mutex::default()).collect(),
            by_distributor: distributors.iter().map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            publishing: AtomicBool::new(false),
            in_window: AtomicU64::new(0),
            latency: Mutex::new(crate::load::milliseconds()),
        });
        let clients =
            crate::connect_all(&distributors, &recipients, Transport::WebSocket, |i, s| {
                tokio::spawn(take(s, i, i % distributors.len(), received.clone()))
            })
            .await;

        let before = Usage::now(&deployment).await;
        received.publishing.store(true, Ordering::Relaxed);
        let publishers: Vec<Publisher> = receivers
            .iter()
            .map(|url| Publisher::new(url, crate::API_KEY))
            .collect();
        let (published, faults) = tokio::join!(
            self.publish(&publishers, &recipients),
            kill_and_restart(&mut deployment, self.duration)
        );
        received.publishing.store(false, Ordering::Relaxed);
        let accepted: u64 = published.accepted.iter().map(|a| a.len() as u64).sum();
        let drained = Instant::now() + DRAIN;
        while received.total.load(Ordering::Relaxed) < accepted && Instant::now() < drained {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Acknowledgements, and the inbox's rows of what was stored and
        // then read, settle behind the last delivery.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = Usage::now(&deployment).await;
        for client in clients {
            client.abort();
        }
        let mut report = String::new();
        let check = check(&published, &received);
        writeln!(
            report,
            "scale: {} WebSocket clients over {} distributors, {}/s offered over {} receivers for {} s, 2 directors; {faults}",
            self.clients,
            distributors.len(),
            self.rate,
            receivers.len(),
            self.duration.as_secs()
        )?;
        let latency = received
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        writeln!(
            report,
            "  offered {}, accepted {} ({:.0}/s; {} batches taken by the other receiver after one refused), delivered {:.0}/s while publishing; latency p50 {} ms, p99 {} ms, max {} ms; publishes answered p50 {} ms, p99 {} ms\n  {check}",
            published.offered,
            accepted,
            accepted as f64 / self.duration.as_secs_f64(),
            published.retried,
            received.in_window.load(Ordering::Relaxed) as f64 / self.duration.as_secs_f64(),
            latency.value_at_percentile(50.0),
            latency.value_at_percentile(99.0),
            latency.max(),
            published.answered.value_at_percentile(50.0),
            published.answered.value_at_percentile(99.0),
        )?;
        let delivered: Vec<u64> = received
            .by_distributor
            .iter()
            .map(|d| d.load(Ordering::Relaxed))
            .collect();
        after.report(&before, &deployment, accepted, &delivered, &mut report)?;
        deployment.finish().await;
        Ok(report)
    }

    /// Publishes `rate` a second round robin over the recipients, each
    /// batch to the receivers in turn, and to the next one when a receiver
    /// refuses or is away (as a publisher retries).
    async fn publish(&self, publishers: &[Publisher], recipients: &[String]) -> Published {
        let per_tick = (self.rate / TICKS_PER_SEC).max(1) as usize;
        let ticks = self.duration.as_secs() * u64::from(TICKS_PER_SEC);
        let mut tick = tokio::time::interval(Duration::from_secs(1) / TICKS_PER_SEC);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let accepted: Arc<Vec<Mutex<Vec<Accepted>>>> =
            Arc::new(recipients.iter().map(|_| Mutex::default()).collect());
        let retried = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(Mutex::new(crate::load::milliseconds()));
        let mut next = 0usize;
        for round in 0..ticks {
            tick.tick().await;
            let batch: Vec<(usize, u32)> = (0..per_tick)
                .map(|_| {
                    next += 1;
                    (next % recipients.len(), (next / recipients.len()) as u32)
                })
                .collect();
            let notifications: Vec<NewNotification> = batch
                .iter()
                .map(|&(r, sequence)| {
                    let recipient = &recipients[r];
                    NewNotification::new(recipient, serde_json::json!({}))
                        .with_id(format!("{recipient}:{sequence}"))
                })
                .collect();
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let first = round as usize % publishers.len();
            let turn: Vec<Publisher> = publishers[first..]
                .iter()
                .chain(&publishers[..first])
                .cloned()
                .collect();
            let (accepted, retried, answered) =
                (accepted.clone(), retried.clone(), answered.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                for (attempt, publisher) in turn.iter().enumerate() {
                    if publisher.publish(&notifications).await.is_ok() {
                        let answered = Instant::now();
                        for (r, sequence) in batch {
                            accepted[r]
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Accepted {
                                    sequence,
                                    sent,
                                    answered,
                                });
                        }
                        if attempt > 0 {
                            retried.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
                record_since(&answered, sent);
                drop(permit);
            });
        }
        let _ = in_flight.acquire_many(IN_FLIGHT as u32).await;
        let accepted = accepted
            .iter()
            .map(|a| std::mem::take(&mut *a.lock().unwrap_or_else(|e| e.into_inner())))
            .collect();
        let answered = answered.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Published {
            offered: ticks * per_tick as u64,
            accepted,
            retried: retried.load(Ordering::Relaxed),
            answered,
        }
    }
}

/// One client: takes each notification, records it, acknowledges it.
async fn take(
    mut subscription: notif_sdk::Subscription,
    recipient: usize,
    distributor: usize,
    received: Arc<Received>,
) {
    while let Ok(notification) = subscription.next().await {
        subscription.ack(&notification.id);
        let Some(sequence) = notification
            .id
            .rsplit_once(':')
            .and_then(|(_, s)| s.parse::<u32>().ok())
        else {
            continue; // The deployment's warm-up notification.
        };
        received.arrivals[recipient]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sequence);
        received.by_distributor[distributor].fetch_add(1, Ordering::Relaxed);
        received.total.fetch_add(1, Ordering::Relaxed);
        if received.publishing.load(Ordering::Relaxed) {
            received.in_window.fetch_add(1, Ordering::Relaxed);
        }
        let latency =
            dataplane::notification::now_ms().saturating_sub(notification.published_at_ms);
        record_ms(&received.latency, latency);
    }
}

/// A quarter into the run, kills (SIGKILL) the first instance of each
/// role; at half, starts them again. Says what it did.
async fn kill_and_restart(deployment: &mut Deployment, duration: Duration) -> String {
    tokio::time::sleep(duration / 4).await;
    for process in first_instances(deployment) {
        process.kill();
    }
    tokio::time::sleep(duration / 4).await;
    for process in first_instances(deployment) {
        process.start().await;
    }
    format!(
        "the first receiver, director and distributor killed at {} s and started again at {} s",
        (duration / 4).as_secs(),
        (duration / 2).as_secs()
    )
}

fn first_instances(deployment: &mut Deployment) -> impl Iterator<Item = &mut Process> {
    let mut seen = HashSet::new();
    deployment
        .processes
        .iter_mut()
        .filter(move |p| seen.insert(p.name))
}

/// Every accepted notification arrived, and each recipient's in order
/// (duplicates aside)? Two notifications have an order when one's publish
/// was answered before the other's was sent; publishes of a recipient that
/// overlapped (one slow, then taken by the other receiver) may be in the
/// log either way.
fn check(published: &Published, received: &Received) -> String {
    let (mut missing, mut reordered, mut duplicates) = (0, 0, 0);
    for (accepted, arrivals) in published.accepted.iter().zip(&received.arrivals) {
        let arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashSet::new();
        let firsts: Vec<u32> = arrivals
            .iter()
            .copied()
            .filter(|s| seen.insert(*s))
            .collect();
        duplicates += arrivals.len() - firsts.len();
        missing += accepted
            .iter()
            .filter(|a| !seen.contains(&a.sequence))
            .count();
        // What arrived without being known accepted (its publish failed
        // after Kafka took it) may come anywhere.
        let by_sequence: HashMap<u32, &Accepted> =
            accepted.iter().map(|a| (a.sequence, a)).collect();
        let order: Vec<&Accepted> = firsts
            .iter()
            .filter_map(|s| by_sequence.get(s).copied())
            .collect();
        reordered += (0..order.len())
            .filter(|&j| {
                order[..j]
                    .iter()
                    .any(|earlier| order[j].answered < earlier.sent)
            })
            .count();
    }
    let verdict = match missing + reordered {
        0 => "nothing lost, nothing out of order",
        _ => "LOST OR REORDERED",
    };
    format!(
        "{verdict}: {missing} accepted and not delivered, {reordered} out of order, {duplicates} duplicates"
    )
}

/// What the instances, Redis and PostgreSQL had done at one moment.
struct Usage {
    /// Per process, in the deployment's order: its pid, CPU seconds, and
    /// the counter of its role's work (publishes accepted, notifications
    /// done with; none for a distributor).
    processes: Vec<(Option<u32>, f64, f64)>,
    redis: Calls,
    /// Rows inserted and deleted in the inbox, over its shards.
    inbox_rows: (i64, i64),
    /// CPU seconds of each of [`SERVERS`].
    servers: Vec<f64>,
}

impl Usage {
    async fn now(deployment: &Deployment) -> Usage {
        let mut processes = Vec::new();
        for process in &deployment.processes {
            let work = match process.pid() {
                Some(_) => work(process).await,
                None => 0.0,
            };
            processes.push((process.pid(), process.pid().map_or(0.0, cpu_seconds), work));
        }
        let Storage::Shards(shards) = &deployment.storage else {
            unreachable!("the scaled deployment shards its inbox")
        };
        let mut inbox_rows = (0, 0);
        for shard in shards {
            let pool = shard.pool().await;
            let (inserted, deleted): (i64, i64) = sqlx::query_as(
                "SELECT tup_inserted, tup_deleted FROM pg_stat_database WHERE datname = current_database()",
            )
            .fetch_one(&pool)
            .await
            .expect("pg_stat_database");
            inbox_rows.0 += inserted;
            inbox_rows.1 += deleted;
        }
        Usage {
            processes,
            redis: Calls::now(&testenv::redis_cluster_urls()).await,
            inbox_rows,
            servers: SERVERS
                .iter()
                .map(|(_, program)| server_cpu_seconds(program))
                .collect(),
        }
    }

    /// Each instance's work and CPU between `before` and now, each role's
    /// work per CPU-second, and Redis's and PostgreSQL's per notification.
    fn report(
        &self,
        before: &Usage,
        deployment: &Deployment,
        accepted: u64,
        delivered: &[u64],
        out: &mut String,
    ) -> std::fmt::Result {
        for role in ROLES {
            let (mut work_sum, mut cpu_sum) = (0.0, 0.0);
            let instances = deployment.processes.iter().enumerate();
            let instances = instances.filter(|(_, p)| p.name == role);
            for (n, (i, _)) in instances.enumerate() {
                let (pid, cpu, work) = self.processes[i];
                let (was, cpu_then, work_then) = before.processes[i];
                // An instance started again counts from its new start.
                let restarted = pid != was;
                let (cpu, work) = match restarted {
                    true => (cpu, work),
                    false => (cpu - cpu_then, work - work_then),
                };
                let (work, what) = match role {
                    "receiver" => (work, "publishes accepted"),
                    "director" => (work, "notifications done with"),
                    _ => (delivered[n] as f64, "deliveries to its clients"),
                };
                // A role's cost comes from the instances that ran
                // throughout: a killed one's work before it died is lost.
                if !restarted {
                    work_sum += work;
                    cpu_sum += cpu;
                }
                let since = if restarted {
                    " (since its restart)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "  {role} {}: {work:.0} {what}, {cpu:.1} CPU-s{since}",
                    n + 1
                )?;
            }
            writeln!(
                out,
                "  {role}s that ran throughout: {:.0} per CPU-second",
                work_sum / cpu_sum.max(1e-9)
            )?;
        }
        let per = |n: f64| n / accepted.max(1) as f64;
        let cpu_us = |i: usize| per((self.servers[i] - before.servers[i]) * 1e6);
        writeln!(
            out,
            "  {}\n  PostgreSQL per accepted notification: {:.3} inbox rows written, {:.3} removed (over both shards), {:.1} µs of CPU\n  Kafka per accepted notification: {:.1} µs of the broker's CPU",
            self.redis
                .since(&before.redis, accepted, "accepted notification"),
            per((self.inbox_rows.0 - before.inbox_rows.0) as f64),
            per((self.inbox_rows.1 - before.inbox_rows.1) as f64),
            cpu_us(1),
            cpu_us(0),
        )
    }
}

/// The counter of `process`'s work, from its metrics.
async fn work(process: &Process) -> f64 {
    let metric = match process.name {
        "receiver" => "notif_publish_accepted_total",
        "director" => "notif_director_notifications_total",
        // What a distributor's clients received, the benchmark counts.
        _ => return 0.0,
    };
    let url = format!("http://127.0.0.1:{}/metrics", process.admin);
    let Ok(response) = reqwest::get(url).await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    testenv::metric_sum(&text, metric)
}

/// The shared servers whose CPU the run reports, by what their command
/// lines contain: the Kafka broker, and every PostgreSQL process (both
/// servers and their backends).
const SERVERS: [(&str, &str); 2] = [("Kafka", "kafka.Kafka"), ("PostgreSQL", "postgres")];
