//! The receiver (`notifd receiver`): the publish API. A notification is
//! answered 202 only once the log has it durably; while the log is
//! unreachable, the answer is 503 with `Retry-After`, never 202.

mod config;
mod publish;
pub mod request;

pub use config::{LimitArgs, ReceiverArgs};
pub use publish::{Accepted, router};

use std::sync::Arc;
use std::time::Duration;

use crate::auth::publisher::PublisherAuth;
use crate::log::Log;
use crate::metrics::ReceiverMetrics;
use request::Limits;

/// The publish API's part of the OpenAPI document ([`crate::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(publish::publish))]
pub struct ApiDoc;

/// Everything the publish handler needs.
pub struct Receiver {
    pub log: Arc<dyn Log>,
    pub auth: PublisherAuth,
    pub limits: Limits,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a request's body may take to arrive.
    pub body_timeout: Duration,
    pub metrics: ReceiverMetrics,
}
