//! `notification-operator run`: the admin port, leader election on a Lease,
//! and the controller while this process leads.

use std::net::SocketAddr;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Context};
use crate::metrics::Metrics;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespaces whose NotificationClusters to reconcile, comma-separated; all when empty.
    #[arg(long, env = "NOTIF_OPERATOR_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Address of the admin port: /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "NOTIF_OPERATOR_ADMIN_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub admin_addr: SocketAddr,
    /// The Lease the operator's replicas elect a leader on.
    #[arg(
        long,
        env = "NOTIF_OPERATOR_LEASE_NAME",
        default_value = "notification-operator"
    )]
    pub lease_name: String,
    /// The Lease's namespace: the operator's own.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's name in the Lease; the pod's name in Kubernetes.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a leader's Lease lasts without renewal; another replica takes
    /// over after this when the leader dies without releasing it.
    #[arg(long, env = "NOTIF_OPERATOR_LEASE_SECS", default_value_t = 15)]
    pub lease_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach the Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("--admin-addr {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leader election on Lease {lease}: {reason}")]
    Lease { lease: String, reason: String },
    #[error("lost the leader Lease {0}; exiting so that a new leader starts clean")]
    LostLease(String),
}

impl RunArgs {
    /// Runs until `shutdown` is cancelled (SIGTERM) or the lease is lost.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        let client = Client::try_default().await?;
        let identity = self.identity.clone().unwrap_or_else(hostname);
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        let metrics = metrics.register(&mut registry);

        let listener = tokio::net::TcpListener::bind(self.admin_addr)
            .await
            .map_err(|source| RunError::Admin {
                addr: self.admin_addr,
                source,
            })?;
        let admin = tokio::spawn(crate::admin::serve(
            listener,
            registry,
            shutdown.clone().cancelled_owned(),
        ));

        let lease = format!("{}/{}", self.lease_namespace, self.lease_name);
        let lease_error = |e: kube_lease_manager::LeaseManagerError| RunError::Lease {
            lease: lease.clone(),
            reason: e.to_string(),
        };
        let manager = LeaseManagerBuilder::new(client.clone(), &self.lease_name)
            .with_namespace(&self.lease_namespace)
            .with_identity(&identity)
            .with_duration(self.lease_secs)
            .with_grace(self.lease_secs.div_ceil(3).max(1))
            .with_field_manager("notification-operator")
            .build()
            .await
            .map_err(lease_error)?;
        let (mut leading, lease_task) = manager.watch().await;
        tracing::info!(%identity, %lease, "waiting to lead");

        let leads = tokio::select! {
            _ = shutdown.cancelled() => Ok(false),
            led = leading.wait_for(|leads| *leads) => led.map(|_| true),
        };
        let outcome = match leads {
            Ok(false) => Ok(()),
            Ok(true) => {
                self.lead(
                    &client,
                    &identity,
                    &metrics,
                    &mut leading,
                    &shutdown,
                    &lease,
                )
                .await
            }
            Err(_) => Err(RunError::Lease {
                lease: lease.clone(),
                reason: "the lease task stopped".into(),
            }),
        };

        // Dropping the receiver makes the lease task release the Lease.
        drop(leading);
        match lease_task.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the Lease"),
            Err(e) => tracing::warn!(error = %e, "the lease task failed"),
        }
        shutdown.cancel();
        if let Ok(Err(e)) = admin.await {
            tracing::warn!(error = %e, "the admin port failed");
        }
        outcome
    }

    /// Reconciles while this process leads: until shutdown, or until the
    /// lease is lost (then the controller stops and the process exits).
    async fn lead(
        &self,
        client: &Client,
        identity: &str,
        metrics: &Metrics,
        leading: &mut tokio::sync::watch::Receiver<bool>,
        shutdown: &CancellationToken,
        lease: &str,
    ) -> Result<(), RunError> {
        tracing::info!(%identity, %lease, namespaces = ?self.namespaces, "leading: reconciling");
        metrics.leader.set(1);
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "notification-operator".into(),
                instance: Some(identity.to_string()),
            },
        );
        let ctx = Arc::new(Context::new(client.clone(), recorder, metrics.clone()));
        let stop = shutdown.child_token();
        let controller = controller::run(ctx, self.namespaces.clone(), stop.clone());
        tokio::pin!(controller);
        let lost = tokio::select! {
            _ = &mut controller => false,
            _ = leading.wait_for(|leads| !*leads) => true,
        };
        if lost {
            stop.cancel();
            controller.await;
        }
        metrics.leader.set(0);
        if lost {
            return Err(RunError::LostLease(lease.to_string()));
        }
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "notification-operator".into())
}
