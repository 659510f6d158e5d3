//! `notifd receiver`'s flags, and starting it from them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Receiver, request::Limits, router};
use crate::admin::AdminArgs;
use crate::auth::config::{JwtArgs, PublisherAuthArgs};
use crate::auth::publisher::PublisherAuth;
use crate::config::ConfigError;
use crate::dependencies::Dependency;
use crate::json_body::BodyLimits;
use crate::listen;
use crate::log::{KafkaArgs, KafkaLog, Log};
use crate::metrics::ReceiverMetrics;
use crate::process::Process;

#[derive(clap::Args, Debug, Clone)]
pub struct ReceiverArgs {
    /// Address of the publish API.
    #[arg(long, env = "NOTIF_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub listen: crate::listen::ListenArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub auth: PublisherAuthArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// What a publish request may hold, in the receiver and in standalone.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// The most notifications in one batch.
    #[arg(long, env = "NOTIF_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,
    /// The largest payload of one notification, in bytes of JSON.
    #[arg(long, env = "NOTIF_MAX_PAYLOAD_BYTES", default_value_t = 64 * 1024)]
    pub max_payload_bytes: usize,
    /// The largest request body, in bytes.
    #[arg(long, env = "NOTIF_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// The longest ttl a publisher may set, in seconds.
    #[arg(long, env = "NOTIF_MAX_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub max_ttl_secs: u64,
    /// Seconds a request's body may take to arrive; a slower one is answered 408.
    #[arg(long, env = "NOTIF_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,
}

impl LimitArgs {
    /// Fails on a flag that makes no sense, naming it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.max_batch == 0 {
            return Err(ConfigError::new("--max-batch", "must be at least 1"));
        }
        Ok(())
    }

    /// The receiver writing to `log`, after checking the flags.
    pub fn receiver(
        &self,
        log: Arc<dyn Log>,
        auth: PublisherAuth,
        metrics: ReceiverMetrics,
    ) -> Result<Receiver, ConfigError> {
        self.check()?;
        Ok(Receiver {
            log,
            auth,
            limits: Limits {
                max_batch: self.max_batch,
                max_payload_bytes: self.max_payload_bytes,
                max_ttl_secs: self.max_ttl_secs,
            },
            body: BodyLimits {
                max_bytes: self.max_body_bytes,
                timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            },
            metrics,
        })
    }
}

impl ReceiverArgs {
    /// Serves the publish API and the admin port until `shutdown` completes,
    /// then finishes the requests in flight (each waits for its write).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.limits.check()?;
        let auth = self.auth.load(self.jwt.verifier()?)?;
        let kafka = Arc::new(KafkaLog::new(&self.kafka.config()).map_err(|e| {
            ConfigError::new(
                "--kafka-property",
                format!("Kafka refuses the client settings: {e}"),
            )
        })?);
        let log: Arc<dyn Log> = kafka.clone();
        let mut process = Process::until(shutdown);
        let metrics = ReceiverMetrics::default().register(&mut process.registry);
        let receiver = Arc::new(self.limits.receiver(log.clone(), auth, metrics)?);

        let public = listen::bind("--http-addr", self.http_addr).await?;
        let admin = listen::bind("--admin-addr", self.admin.admin_addr).await?;
        tracing::info!(http = %self.http_addr, admin = %self.admin.admin_addr, topic = %self.kafka.kafka_topic, "receiver serving");
        // Ready once the partition count is read: the first publishes would
        // wait for it. Later, Kafka away does not make it unready.
        process.ready_when(async move { kafka.partition_count_read().await });
        process.watch(vec![Dependency::KafkaLog(log)]);
        let public_router = router(receiver).merge(crate::openapi::router());
        let serving = listen::serve(public, public_router, &self.listen, process.stop());
        process.run(admin, async { Ok(serving.await?) }).await?;
        tracing::info!("receiver stopped");
        Ok(())
    }
}
