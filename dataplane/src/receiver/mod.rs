//! The receiver (`notifd receiver`): the publish API. A notification is
//! answered 202 only once the log has it durably; while the log is
//! unreachable, the answer is 503 with `Retry-After`, never 202.

mod config;
mod publish;
pub mod request;

pub use config::{LimitArgs, ReceiverArgs};
pub use publish::{Accepted, router};

use std::sync::Arc;

use crate::auth::publisher::PublisherAuth;
use crate::json_body::BodyLimits;
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
    /// The largest request body, and how long it may take to arrive.
    pub body: BodyLimits,
    pub metrics: ReceiverMetrics,
}
