//! `notifd distributor`'s flags, and starting it from them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::heartbeat::Heartbeats;
use super::live::Live;
use super::{Distributor, router};
use crate::admin::AdminArgs;
use crate::auth::config::JwtArgs;
use crate::auth::jwt::JwtVerifier;
use crate::config::ConfigError;
use crate::dependencies::Dependency;
use crate::forward_secret::{ForwardSecret, ForwardSecretArgs};
use crate::inbox::{Inbox, PostgresArgs};
use crate::listen;
use crate::metrics::DistributorMetrics;
use crate::presence::{Presence, RedisArgs};
use crate::process::Process;

#[derive(clap::Args, Debug, Clone)]
pub struct DistributorArgs {
    /// Address of the client endpoints (WebSocket, SSE, acknowledgements).
    #[arg(long, env = "NOTIF_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub listen: crate::listen::ListenArgs,
    /// Address of the internal port where directors forward notifications.
    /// Beyond loopback (as directors on other hosts need), only with
    /// --forward-secret.
    #[arg(long, env = "NOTIF_FORWARD_ADDR", default_value = "127.0.0.1:8082")]
    pub forward_addr: SocketAddr,
    /// The address directors reach the forward port at (the pod's IP and the
    /// port, in Kubernetes); defaults to --forward-addr.
    #[arg(long, env = "NOTIF_FORWARD_ADVERTISE_ADDR")]
    pub forward_advertise_addr: Option<String>,
    /// This distributor's id in presence; the pod's name in Kubernetes.
    #[arg(long, env = "NOTIF_DISTRIBUTOR_ID")]
    pub distributor_id: Option<String>,
    #[command(flatten)]
    pub forward_secret: ForwardSecretArgs,
    #[command(flatten)]
    pub connections: ConnectionArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// How client connections are held, in the distributor and in standalone.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Seconds a live notification waits for a client's acknowledgement.
    #[arg(long, env = "NOTIF_ACK_TIMEOUT_SECS", default_value_t = 10)]
    pub ack_timeout_secs: u64,
    /// The most live notifications queued for one connection; a slower client is disconnected.
    #[arg(long, env = "NOTIF_CONNECTION_QUEUE", default_value_t = 256)]
    pub connection_queue: usize,
    /// Seconds a connection stays in presence without a heartbeat.
    #[arg(long, env = "NOTIF_PRESENCE_TTL_SECS", default_value_t = 30)]
    pub presence_ttl_secs: u64,
}

/// What a distributor works with, besides its flags.
pub struct Parts {
    pub id: String,
    pub inbox: Arc<dyn Inbox>,
    pub presence: Arc<dyn Presence>,
    pub jwt: JwtVerifier,
    pub metrics: DistributorMetrics,
    pub stop: CancellationToken,
    /// Required on the forward port; none in one process.
    pub forward_secret: Option<ForwardSecret>,
}

impl ConnectionArgs {
    /// Fails on a flag that makes no sense, naming it.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.presence_ttl_secs < 3 {
            return Err(ConfigError::new(
                "--presence-ttl-secs",
                "must be at least 3",
            ));
        }
        Ok(())
    }

    /// The distributor over `parts`, after checking the flags.
    pub fn distributor(&self, parts: Parts) -> Result<Distributor, ConfigError> {
        self.check()?;
        let presence_ttl = Duration::from_secs(self.presence_ttl_secs);
        let live = Arc::new(Live::default());
        let heartbeats = Heartbeats::start(
            parts.presence.clone(),
            live.clone(),
            presence_ttl,
            parts.stop.clone(),
        );
        Ok(Distributor {
            id: parts.id,
            inbox: parts.inbox,
            presence: parts.presence,
            jwt: parts.jwt,
            presence_ttl,
            heartbeats,
            page_size: 100,
            metrics: parts.metrics,
            live,
            connection_queue: self.connection_queue.max(1),
            ack_timeout: Duration::from_secs(self.ack_timeout_secs),
            relay: Default::default(),
            stop: parts.stop,
            forward_secret: parts.forward_secret,
        })
    }
}

impl DistributorArgs {
    /// Holds client connections, takes notifications on the forward port
    /// and serves the admin port until `shutdown`, then closes connections
    /// and finishes the requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.connections.check()?;
        let jwt = self.jwt.verifier()?.ok_or_else(|| {
            ConfigError::new("--jwt-secret", "clients cannot authenticate: give --jwt-secret, --jwt-secret-file or --jwt-public-key-file")
        })?;
        let forward_secret = self.forward_secret.secret()?;
        if forward_secret.is_none() && !self.forward_addr.ip().is_loopback() {
            return Err(ConfigError::new(
                "--forward-secret",
                format!(
                    "is required when the forward port listens beyond this machine (--forward-addr {}): without it, anything that reaches the port could deliver or acknowledge notifications",
                    self.forward_addr
                ),
            )
            .into());
        }
        let inbox: Arc<dyn Inbox> = Arc::new(self.postgres.inbox()?);
        let presence: Arc<dyn Presence> = Arc::new(self.redis.presence().await?);
        let mut process = Process::until(shutdown);
        let distributor = Arc::new(
            self.connections.distributor(Parts {
                id: self
                    .distributor_id
                    .clone()
                    .unwrap_or_else(crate::notification::new_id),
                inbox: inbox.clone(),
                presence: presence.clone(),
                jwt,
                metrics: DistributorMetrics::default().register(&mut process.registry),
                stop: process.stop(),
                forward_secret,
            })?,
        );
        let public = listen::bind("--http-addr", self.http_addr).await?;
        let forward = listen::bind("--forward-addr", self.forward_addr).await?;
        let admin = listen::bind("--admin-addr", self.admin.admin_addr).await?;
        let advertised = match &self.forward_advertise_addr {
            Some(address) => address.clone(),
            None => forward.local_addr()?.to_string(),
        };
        tracing::info!(id = %distributor.id, http = %self.http_addr, admin = %self.admin.admin_addr, "distributor serving");
        process.spawn(announce(distributor.clone(), advertised));
        let forward_server = axum::serve(forward, super::forward_in::router(distributor.clone()))
            .with_graceful_shutdown(process.stop().cancelled_owned());
        process.spawn(async {
            if let Err(e) = forward_server.await {
                tracing::error!(error = %e, "the forward port failed");
            }
        });
        process.watch(vec![
            Dependency::Redis(presence),
            Dependency::Postgres(inbox),
        ]);
        process.ready_when(async {});
        let public_router = router(distributor).merge(crate::openapi::router());
        let serving = listen::serve(public, public_router, &self.listen, process.stop());
        process.run(admin, async { Ok(serving.await?) }).await?;
        tracing::info!("distributor stopped");
        Ok(())
    }
}

/// Announces where directors reach this distributor, until it stops; the
/// entry expires soon after, so directors stop trying a dead distributor.
async fn announce(distributor: Arc<Distributor>, address: String) {
    let ttl = distributor.presence_ttl;
    let mut beat = tokio::time::interval(ttl / 3);
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if let Err(e) = distributor.presence.announce_distributor(&distributor.id, &address, ttl).await {
                    tracing::warn!(error = %e, "cannot announce this distributor in presence");
                }
            }
            () = distributor.stop.cancelled() => return,
        }
    }
}
