//! The distributor (`notifd distributor`): holds clients' connections
//! (WebSocket and SSE), registers them in presence, sends each client its
//! inbox in position order and takes its acknowledgements.
//!
//! Live delivery: directors forward notifications over a stream to the
//! distributors that hold their recipients' connections (`forward_in`); the
//! distributor hands each to the recipient's connections and reports whether
//! a client acknowledged it in time. An acknowledgement that reaches another
//! distributor than the connection (`POST /v1/ack` behind a load balancer)
//! is passed on to it (`relay`).

mod ack;
mod config;
mod envelope;
pub mod forward_in;
pub mod heartbeat;
pub mod live;
mod poll;
mod relay;
mod session;
mod sse;
mod token;
mod ws;

pub use config::{ConnectionArgs, DistributorArgs, Parts};
pub use envelope::Envelope;
pub use poll::PollResponse;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::forward_secret::ForwardSecret;

use crate::auth::jwt::JwtVerifier;
use crate::inbox::Inbox;
use crate::metrics::DistributorMetrics;
use crate::presence::Presence;

/// How often a quiet connection gets a keep-alive (an SSE comment, a
/// WebSocket ping): proxies keep it open, and a client that hears nothing
/// for several of them knows its distributor is gone, even when nothing
/// closed the connection (a hung process, a lost peer).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

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
    /// The connections held here, which the heartbeat keeps in presence.
    pub heartbeats: Arc<heartbeat::Heartbeats>,
    /// Notifications read from the inbox at a time.
    pub page_size: u32,
    pub metrics: DistributorMetrics,
    /// The connections held here, for live delivery.
    pub live: Arc<live::Live>,
    /// The most live notifications queued for one connection; a client that
    /// falls further behind is disconnected.
    pub connection_queue: usize,
    /// How long a live notification waits for a client's acknowledgement.
    pub ack_timeout: Duration,
    /// Passes acknowledgements on to the recipient's other distributors.
    pub relay: relay::Relay,
    /// What the forward port requires, and relayed acknowledgements carry.
    pub forward_secret: Option<ForwardSecret>,
    /// Cancelled when the distributor stops: every connection closes, so
    /// that its client reconnects to another distributor.
    pub stop: CancellationToken,
}

/// The client endpoints' part of the OpenAPI document ([`crate::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(ws::connect, sse::connect, poll::poll, ack::acknowledge),
    components(schemas(ws::ServerFrame, ws::ClientFrame))
)]
pub struct ApiDoc;

pub fn router(distributor: Arc<Distributor>) -> Router {
    Router::new()
        .route("/v1/connect/sse", get(sse::connect))
        .route("/v1/connect/ws", get(ws::connect))
        .route("/v1/connect/poll", get(poll::poll))
        .route(
            "/v1/ack",
            post(ack::acknowledge).layer(DefaultBodyLimit::max(ack::BODY.max_bytes)),
        )
        .with_state(distributor)
}
