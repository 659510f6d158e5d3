//! The distributor (`notifd distributor`): holds clients' connections
//! (WebSocket and SSE), registers them in presence, sends each client its
//! inbox in position order and takes its acknowledgements.
//!
//! Live delivery (notifications forwarded by the director to a connected
//! client) and long-polling are not built yet: a client receives what its
//! inbox holds when it connects.

mod ack;
mod config;
mod envelope;
mod session;
mod sse;
mod token;
mod ws;

pub use config::DistributorArgs;
pub use envelope::Envelope;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::auth::jwt::JwtVerifier;
use crate::inbox::Inbox;
use crate::metrics::DistributorMetrics;
use crate::presence::Presence;

/// Everything the client endpoints need.
pub struct Distributor {
    /// This distributor's id in presence, unique among the running ones.
    pub id: String,
    pub inbox: Arc<dyn Inbox>,
    pub presence: Arc<dyn Presence>,
    pub jwt: JwtVerifier,
    /// How long a connection stays in presence without a heartbeat; the
    /// heartbeat runs at a third of it.
    pub presence_ttl: Duration,
    /// Notifications read from the inbox at a time.
    pub page_size: u32,
    pub metrics: DistributorMetrics,
    /// Cancelled when the distributor stops: every connection closes, so
    /// that its client reconnects to another distributor.
    pub stop: CancellationToken,
}

pub fn router(distributor: Arc<Distributor>) -> Router {
    Router::new()
        .route("/v1/connect/sse", get(sse::connect))
        .route("/v1/connect/ws", get(ws::connect))
        .route("/v1/ack", post(ack::acknowledge))
        .with_state(distributor)
}
