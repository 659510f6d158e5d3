//! The composition root of a process that plays every role: the receiver,
//! the director's routing and the distributor, built from their flags
//! (each checked as it is used, before anything binds) and the backends
//! they share. `notifd standalone` builds its process here on embedded
//! backends; tests assemble the same process around backends that fail on
//! purpose. The director hands notifications to the distributor in process,
//! through whatever `forward` makes of it (the distributor itself, in
//! standalone).

use std::sync::Arc;

use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::auth::jwt::JwtVerifier;
use crate::auth::publisher::PublisherAuth;
use crate::config::ConfigError;
use crate::director::{Backends as RoutingBackends, Consume, RoutingArgs};
use crate::distributor::{ConnectionArgs, Distributor, Parts};
use crate::forward::Forward;
use crate::inbox::Inbox;
use crate::log::{Log, LogReader};
use crate::metrics::{DirectorMetrics, DistributorMetrics, ReceiverMetrics};
use crate::presence::Presence;
use crate::receiver::{LimitArgs, Receiver};

/// The flags that shape the roles.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: LimitArgs,
    pub routing: RoutingArgs,
    pub connections: ConnectionArgs,
}

impl Settings {
    /// Fails on a flag that makes no sense, naming it; before anything is
    /// opened, bound or connected to.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.limits.check()?;
        self.routing.check()?;
        self.connections.check()
    }
}

/// What the roles keep and find things in.
pub struct Backends {
    pub log: Arc<dyn Log>,
    pub reader: Arc<dyn LogReader>,
    pub inbox: Arc<dyn Inbox>,
    pub presence: Arc<dyn Presence>,
}

/// Who may publish and who may connect.
pub struct Credentials {
    pub publisher: PublisherAuth,
    pub jwt: JwtVerifier,
}

/// Every role's metrics, registered on one registry.
#[derive(Clone)]
pub struct Metrics {
    pub receiver: ReceiverMetrics,
    pub director: DirectorMetrics,
    pub distributor: DistributorMetrics,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        Metrics {
            receiver: ReceiverMetrics::default().register(registry),
            director: DirectorMetrics::default().register(registry),
            distributor: DistributorMetrics::default().register(registry),
        }
    }
}

/// The roles of one process, built and not yet running.
pub struct AllRoles {
    pub receiver: Arc<Receiver>,
    pub distributor: Arc<Distributor>,
    /// The director's routing loop; it runs until its shutdown future
    /// completes, then drains.
    pub routing: Consume,
}

impl AllRoles {
    /// The roles over `backends`; `stop` closes the distributor's
    /// connections. Fails on a flag that makes no sense, naming it.
    pub fn build(
        settings: &Settings,
        backends: Backends,
        credentials: Credentials,
        metrics: Metrics,
        stop: CancellationToken,
        forward: impl FnOnce(Arc<Distributor>) -> Arc<dyn Forward>,
    ) -> Result<AllRoles, ConfigError> {
        let receiver =
            settings
                .limits
                .receiver(backends.log, credentials.publisher, metrics.receiver)?;
        let distributor = Arc::new(settings.connections.distributor(Parts {
            id: "standalone".into(),
            inbox: backends.inbox.clone(),
            presence: backends.presence.clone(),
            jwt: credentials.jwt,
            metrics: metrics.distributor,
            stop,
            forward_secret: None,
        })?);
        let routing = settings.routing.consume(
            RoutingBackends {
                log: backends.reader,
                inbox: backends.inbox,
                presence: backends.presence,
                forward: forward(distributor.clone()),
            },
            distributor.ack_timeout,
            metrics.director,
        )?;
        Ok(AllRoles {
            receiver: Arc::new(receiver),
            distributor,
            routing,
        })
    }

    /// The public API: publishing, connecting and acknowledging, and the
    /// OpenAPI document.
    pub fn router(&self) -> Router {
        crate::receiver::router(self.receiver.clone())
            .merge(crate::distributor::router(self.distributor.clone()))
            .merge(crate::openapi::router())
    }
}
