//! `notifd director`'s flags, and starting it from them.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Consume, Forwarder, Router};
use crate::admin::AdminArgs;
use crate::config::ConfigError;
use crate::dependencies::Dependency;
use crate::forward::Forward;
use crate::forward_secret::ForwardSecretArgs;
use crate::inbox::{Inbox, PostgresArgs};
use crate::listen;
use crate::log::{KafkaArgs, KafkaReader, LogReader};
use crate::metrics::DirectorMetrics;
use crate::presence::{GatheredLookups, Presence, RedisArgs};
use crate::process::Process;
use crate::retry::{self, Backoff};

#[derive(clap::Args, Debug, Clone)]
pub struct DirectorArgs {
    /// The Kafka consumer group the directors share.
    #[arg(long, env = "NOTIF_KAFKA_GROUP", default_value = "notif-director")]
    pub kafka_group: String,
    /// Seconds the distributors wait for a client's acknowledgement (as they are configured).
    #[arg(long, env = "NOTIF_ACK_TIMEOUT_SECS", default_value_t = 10)]
    pub ack_timeout_secs: u64,
    #[command(flatten)]
    pub routing: RoutingArgs,
    #[command(flatten)]
    pub forward_secret: ForwardSecretArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// How notifications are routed, in the director and in standalone.
#[derive(clap::Args, Debug, Clone)]
pub struct RoutingArgs {
    /// Live delivery attempts before a notification goes to the inbox.
    #[arg(long, env = "NOTIF_DELIVERY_ATTEMPTS", default_value_t = 3)]
    pub delivery_attempts: u32,
    /// Milliseconds before the first retry of a live delivery; doubling after.
    #[arg(long, env = "NOTIF_RETRY_BACKOFF_MS", default_value_t = 200)]
    pub retry_backoff_ms: u64,
    /// The most notifications of one recipient sent live and not yet acknowledged.
    #[arg(long, env = "NOTIF_DELIVERY_WINDOW", default_value_t = 128)]
    pub delivery_window: usize,
    /// The most notifications held at once; reading stops there while routing stalls.
    #[arg(long, env = "NOTIF_MAX_HELD", default_value_t = 10_000)]
    pub max_held: usize,
    /// Seconds a stop waits for notifications being routed before it commits and exits.
    #[arg(long, env = "NOTIF_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
    pub drain_timeout_secs: u64,
    /// Hours a notification may wait in the inbox for its recipient before it is purged.
    #[arg(long, env = "NOTIF_INBOX_RETENTION_HOURS", default_value_t = 7 * 24)]
    pub inbox_retention_hours: u64,
}

/// What routing works with.
pub struct Backends {
    pub log: Arc<dyn LogReader>,
    pub inbox: Arc<dyn Inbox>,
    pub presence: Arc<dyn Presence>,
    pub forward: Arc<dyn Forward>,
}

impl RoutingArgs {
    /// Fails on a flag that makes no sense, naming it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.delivery_attempts == 0 {
            return Err(ConfigError::new(
                "--delivery-attempts",
                "must be at least 1",
            ));
        }
        if self.delivery_window == 0 {
            return Err(ConfigError::new("--delivery-window", "must be at least 1"));
        }
        Ok(())
    }

    /// The routing loop over `backends`, after checking the flags;
    /// `ack_timeout` is the distributors' acknowledgement timeout.
    pub fn consume(
        &self,
        backends: Backends,
        ack_timeout: Duration,
        metrics: DirectorMetrics,
    ) -> Result<Consume, ConfigError> {
        self.check()?;
        Ok(Consume {
            log: backends.log,
            router: Arc::new(Router {
                inbox: backends.inbox,
                presence: backends.presence,
                forward: backends.forward,
                attempts: self.delivery_attempts,
                retry_backoff: Backoff {
                    first: Duration::from_millis(self.retry_backoff_ms),
                    max: Duration::from_secs(30),
                },
                outage_backoff: Backoff::DEFAULT,
                window: self.delivery_window,
                ack_timeout,
                ack_time: Default::default(),
                metrics: metrics.clone(),
            }),
            metrics,
            max_held: self.max_held.max(1),
            commit_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
        })
    }
}

impl RoutingArgs {
    /// Purges the inbox now and then, until `stop`.
    pub fn purge(
        &self,
        inbox: Arc<dyn Inbox>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + use<> {
        let retention = Duration::from_secs(self.inbox_retention_hours.saturating_mul(3600));
        super::purge::run(inbox, retention, Duration::from_secs(300), stop)
    }
}

impl DirectorArgs {
    /// Routes notifications and serves the admin port until `shutdown`, then
    /// drains and commits what is done.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.routing.check()?;
        let forward_secret = self.forward_secret.secret()?;
        let inbox = self.postgres.inbox()?;
        // The schema first: until PostgreSQL answers, nothing can be stored.
        retry::until_ok("inbox migrations", Backoff::DEFAULT, || inbox.migrate()).await;
        let inbox: Arc<dyn Inbox> = Arc::new(inbox);
        let presence: Arc<dyn Presence> = Arc::new(self.redis.presence().await?);
        // Lanes' lookups share round trips to Redis (docs/scaling.md).
        let lookups: Arc<dyn Presence> = Arc::new(GatheredLookups::new(presence.clone()));

        let mut process = Process::until(shutdown);
        let metrics = DirectorMetrics::default().register(&mut process.registry);
        let log: Arc<dyn LogReader> = Arc::new(
            KafkaReader::new(&self.kafka.config(), &self.kafka_group, metrics.clone()).map_err(
                |e| {
                    ConfigError::new(
                        "--kafka-property",
                        format!("Kafka refuses the consumer settings: {e}"),
                    )
                },
            )?,
        );
        let forward = Forwarder::new(presence.clone(), forward_secret);
        let consume = self.routing.consume(
            Backends {
                log: log.clone(),
                inbox: inbox.clone(),
                presence: lookups,
                forward: Arc::new(forward),
            },
            Duration::from_secs(self.ack_timeout_secs),
            metrics,
        )?;
        let admin = listen::bind("--admin-addr", self.admin.admin_addr).await?;
        process.watch(vec![
            Dependency::KafkaReader(log),
            Dependency::Redis(presence),
            Dependency::Postgres(inbox.clone()),
        ]);
        tracing::info!(topic = %self.kafka.kafka_topic, group = %self.kafka_group, "director routing");
        process.spawn(self.routing.purge(inbox, process.stop()));
        process.ready_when(async {});
        let routing = consume.run(process.stop().cancelled_owned());
        process
            .run(admin, async {
                routing.await;
                Ok(())
            })
            .await?;
        tracing::info!("director stopped");
        Ok(())
    }
}
