//! The notification as a client receives it, on every transport.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::inbox::Positioned;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The notification's id: the key for de-duplication and acknowledgement.
    pub id: String,
    /// Its per-recipient position: larger for later notifications, so a
    /// client resumes after the last position it saw.
    pub position: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
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
