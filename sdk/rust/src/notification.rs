//! The notification as a client receives it.

use serde::Deserialize;
use serde_json::value::RawValue;

/// One notification, as every transport carries it.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    /// Its id: the key for de-duplication and acknowledgement.
    pub id: String,
    /// Its place in the recipient's sequence: later ones have larger positions.
    pub position: u64,
    /// The publisher's optional label.
    #[serde(default)]
    pub kind: Option<String>,
    /// The publisher's JSON, exactly as published.
    pub payload: Box<RawValue>,
    /// When the service accepted it, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
}
