//! The shared servers a role uses (Kafka, Redis, PostgreSQL), checked every
//! couple of seconds for `notif_dependency_up`. Readiness leaves them out
//! (see [`crate::admin::Ready`]); this is where an outage shows.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::inbox::Inbox;
use crate::log::{Log, LogReader};
use crate::metrics::{DependencyLabels, DependencyMetrics};
use crate::presence::Presence;

/// How often each server is checked.
const EVERY: Duration = Duration::from_secs(2);
/// A check that takes longer counts as down: a server that does not answer
/// may hold a connection open rather than refuse it.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A shared server, through the part of the role that reaches it.
pub enum Dependency {
    /// Kafka, as the receiver writes to it: down also while the topic's
    /// partition count is too old to write with.
    KafkaLog(Arc<dyn Log>),
    /// Kafka, as the director reads it.
    KafkaReader(Arc<dyn LogReader>),
    /// PostgreSQL, the inbox's database.
    Postgres(Arc<dyn Inbox>),
    /// Redis, presence's server.
    Redis(Arc<dyn Presence>),
}

impl Dependency {
    /// The `dependency` label.
    pub fn name(&self) -> &'static str {
        match self {
            Dependency::KafkaLog(_) | Dependency::KafkaReader(_) => "kafka",
            Dependency::Postgres(_) => "postgres",
            Dependency::Redis(_) => "redis",
        }
    }

    async fn is_reachable(&self) -> bool {
        let check = async {
            match self {
                Dependency::KafkaLog(log) => log.is_reachable().await,
                Dependency::KafkaReader(log) => log.is_reachable().await,
                Dependency::Postgres(inbox) => inbox.is_reachable().await,
                Dependency::Redis(presence) => presence.is_reachable().await,
            }
        };
        tokio::time::timeout(TIMEOUT, check).await.unwrap_or(false)
    }
}

/// Checks `dependencies` until `stop`, setting `notif_dependency_up` and
/// logging when one goes down or comes back.
pub async fn watch(
    dependencies: Vec<Dependency>,
    metrics: DependencyMetrics,
    stop: CancellationToken,
) {
    let mut was_up: Vec<Option<bool>> = vec![None; dependencies.len()];
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let checks = dependencies.iter().map(Dependency::is_reachable);
        let up = tokio::select! {
            up = futures::future::join_all(checks) => up,
            () = stop.cancelled() => return,
        };
        for ((dependency, up), was) in dependencies.iter().zip(up).zip(&mut was_up) {
            let name = dependency.name();
            metrics
                .up
                .get_or_create(&DependencyLabels { dependency: name })
                .set(i64::from(up));
            // Changes only: at start the receiver's log is down until it has
            // read the partition count, which is no news.
            match (*was, up) {
                (Some(true), false) => tracing::warn!(dependency = name, "not reachable"),
                (Some(false), true) => tracing::info!(dependency = name, "reachable again"),
                _ => {}
            }
            *was = Some(up);
        }
    }
}
