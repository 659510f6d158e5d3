//! The notification as a client receives it, on every transport.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::inbox::Positioned;

/// A notification as a client receives it: a WebSocket `notification`
/// frame, the data of an SSE `notification` event, an item of a poll's
/// answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0193b0c4-5b1e-7c0a-9a55-3c1d2f0e8a11", "position": 1042, "kind": "chat", "payload": {"text": "hello"}, "published_at_ms": 1764032400123_u64}))]
pub struct Envelope {
    /// The notification's id: the key for de-duplication and acknowledgement.
    pub id: String,
    /// Its per-recipient position: larger for later notifications, so a
    /// client resumes after the last position it saw.
    pub position: u64,
    /// The publisher's label; absent when it gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub kind: Option<String>,
    /// The publisher's JSON, exactly as published.
    #[schema(value_type = Value)]
    pub payload: Box<RawValue>,
    /// When it was published, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
}

impl From<&Positioned> for Envelope {
    fn from(p: &Positioned) -> Self {
        Envelope {
            id: p.notification.id.clone(),
            position: p.position,
            kind: p.notification.kind.clone(),
            payload: p.notification.payload.clone(),
            published_at_ms: p.notification.published_at_ms,
        }
    }
}
