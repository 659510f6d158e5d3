//! `notifd director`'s flags, and starting it from them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::registry::Registry;
use rdkafka::consumer::{Consumer, StreamConsumer};

use super::{Consume, Forwarder, LagContext, Router};
use crate::admin::{self, AdminArgs, Readiness};
use crate::config::ConfigError;
use crate::inbox::{Inbox, PostgresArgs};
use crate::log::KafkaArgs;
use crate::metrics::DirectorMetrics;
use crate::presence::{Presence, RedisArgs};
use crate::retry::{self, Backoff};

#[derive(clap::Args, Debug, Clone)]
pub struct DirectorArgs {
    /// The Kafka consumer group the directors share.
    #[arg(long, env = "NOTIF_KAFKA_GROUP", default_value = "notif-director")]
    pub kafka_group: String,
    /// Live delivery attempts before a notification goes to the inbox.
    #[arg(long, env = "NOTIF_DELIVERY_ATTEMPTS", default_value_t = 3)]
    pub delivery_attempts: u32,
    /// Milliseconds before the first retry of a live delivery; doubling after.
    #[arg(long, env = "NOTIF_RETRY_BACKOFF_MS", default_value_t = 200)]
    pub retry_backoff_ms: u64,
    /// Seconds the distributors wait for a client's acknowledgement (as they are configured).
    #[arg(long, env = "NOTIF_ACK_TIMEOUT_SECS", default_value_t = 10)]
    pub ack_timeout_secs: u64,
    /// The most notifications held at once; reading stops there while routing stalls.
    #[arg(long, env = "NOTIF_MAX_HELD", default_value_t = 10_000)]
    pub max_held: usize,
    /// Seconds a stop waits for notifications being routed before it commits and exits.
    #[arg(long, env = "NOTIF_DRAIN_TIMEOUT_SECS", default_value_t = 10)]
    pub drain_timeout_secs: u64,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

struct DirectorReadiness {
    inbox: Arc<dyn Inbox>,
    consumer: Arc<StreamConsumer<LagContext>>,
    topic: String,
}

#[async_trait]
impl Readiness for DirectorReadiness {
    async fn check(&self) -> Result<(), String> {
        if !self.inbox.is_reachable().await {
            return Err("PostgreSQL is not reachable".into());
        }
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        let kafka = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false);
        match kafka {
            true => Ok(()),
            false => Err("Kafka is not reachable".into()),
        }
    }
}

impl DirectorArgs {
    /// The consumer, as every director of the group makes it.
    pub fn consumer(
        &self,
        metrics: DirectorMetrics,
    ) -> Result<StreamConsumer<LagContext>, ConfigError> {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.kafka.kafka_bootstrap_servers)
            .set("group.id", &self.kafka_group)
            // Offsets are committed by hand, only up to what is done.
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // While the inbox is away the director reads nothing, for as long
            // as the outage lasts: it must not be thrown out of the group.
            .set("max.poll.interval.ms", "1800000")
            // A director that dies (no chance to leave the group) holds its
            // partitions until its session times out: keep that short.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "3000")
            // Statistics carry the consumer lag, reported as a metric.
            .set("statistics.interval.ms", "5000");
        for (key, value) in &self.kafka.kafka_property {
            config.set(key, value);
        }
        let consumer: StreamConsumer<LagContext> = config
            .create_with_context(LagContext { metrics })
            .map_err(|e| {
                ConfigError::new(
                    "--kafka-property",
                    format!("Kafka refuses the consumer settings: {e}"),
                )
            })?;
        consumer
            .subscribe(&[&self.kafka.kafka_topic])
            .map_err(|e| ConfigError::new("--kafka-topic", e.to_string()))?;
        Ok(consumer)
    }

    /// Routes notifications and serves the admin port until `shutdown`, then
    /// drains and commits what is done.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let inbox = self.postgres.inbox()?;
        // The schema first: until PostgreSQL answers, nothing can be stored.
        retry::until_ok("inbox migrations", Backoff::DEFAULT, || inbox.migrate()).await;
        let inbox: Arc<dyn Inbox> = Arc::new(inbox);
        if self.delivery_attempts == 0 {
            return Err(ConfigError::new("--delivery-attempts", "must be at least 1").into());
        }
        let presence: Arc<dyn Presence> = Arc::new(self.redis.presence().await?);

        let mut registry = Registry::default();
        let metrics = DirectorMetrics::default().register(&mut registry);
        let consumer = Arc::new(self.consumer(metrics.clone())?);
        let admin_listener = crate::serve::bind("--admin-addr", self.admin.admin_addr).await?;
        let readiness = DirectorReadiness {
            inbox: inbox.clone(),
            consumer: consumer.clone(),
            topic: self.kafka.kafka_topic.clone(),
        };
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_server = tokio::spawn(
            axum::serve(admin_listener, admin::router(registry, Arc::new(readiness)))
                .with_graceful_shutdown(async move {
                    let _ = admin_stopped.await;
                })
                .into_future(),
        );

        tracing::info!(topic = %self.kafka.kafka_topic, group = %self.kafka_group, "director routing");
        Consume {
            consumer,
            topic: self.kafka.kafka_topic.clone(),
            router: Arc::new(Router {
                inbox,
                presence: presence.clone(),
                // The distributor's own timeout decides; this one only
                // catches a distributor that went silent.
                forwarder: Forwarder::new(presence, Duration::from_secs(self.ack_timeout_secs + 5)),
                attempts: self.delivery_attempts,
                retry_backoff: Backoff {
                    first: Duration::from_millis(self.retry_backoff_ms),
                    max: Duration::from_secs(30),
                },
                outage_backoff: Backoff::DEFAULT,
                metrics: metrics.clone(),
            }),
            metrics,
            max_held: self.max_held.max(1),
            commit_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
        }
        .run(shutdown)
        .await;
        let _ = stop_admin.send(());
        admin_server.await??;
        tracing::info!("director stopped");
        Ok(())
    }
}
