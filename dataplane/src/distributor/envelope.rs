//! The notification as a client receives it, on every transport.

use serde::{Deserialize, Deserializer, Serialize, de::Error};
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
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
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

/// The largest position there can be: the inbox keeps positions as signed
/// 64-bit integers.
pub const MAX_POSITION: u64 = i64::MAX as u64;

/// A client's resume point that some notification could have: at most
/// [`MAX_POSITION`] (a cursor beyond every position would see nothing
/// more).
pub fn check_position(position: u64) -> Result<u64, String> {
    if position > MAX_POSITION {
        return Err(format!(
            "{position} is beyond every position there can be (at most {MAX_POSITION})"
        ));
    }
    Ok(position)
}

/// For `#[serde(deserialize_with = "...")]` on a resume point, `after`.
pub fn optional_position<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(deserializer)?
        .map(|position| check_position(position).map_err(D::Error::custom))
        .transpose()
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
