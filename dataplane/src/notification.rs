//! The notification: what a publisher sends, what the log carries and what a
//! client receives.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The longest recipient id.
pub const RECIPIENT_MAX_LEN: usize = 256;
/// The longest publisher-chosen id.
pub const ID_MAX_LEN: usize = 128;
/// The longest `kind` label.
pub const KIND_MAX_LEN: usize = 64;

/// A notification as the receiver accepted it. This is the record written to
/// the log (keyed by `recipient`), so its serialized form is a compatibility
/// promise between receivers and directors of different versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    /// The publisher's idempotency key, or a UUIDv7 the receiver made.
    pub id: String,
    /// Who receives it (a user id in the publisher's product).
    pub recipient: String,
    /// The publisher's JSON, passed through untouched.
    pub payload: Box<RawValue>,
    /// An optional label for clients to route on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When the receiver accepted it, in milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// When it expires (from the publisher's `ttl`), in milliseconds since
    /// the Unix epoch; it is never delivered after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl Notification {
    /// Past its expiry: it must not be delivered any more.
    pub fn is_expired(&self) -> bool {
        self.expires_at_ms.is_some_and(|expiry| expiry <= now_ms())
    }
}

/// Whether `recipient` is a valid recipient id: 1 to 256 characters of
/// `[A-Za-z0-9._:@-]`.
pub fn is_valid_recipient(recipient: &str) -> bool {
    (1..=RECIPIENT_MAX_LEN).contains(&recipient.len()) && recipient.bytes().all(is_id_byte)
}

/// Whether `id` is a valid publisher-chosen id: 1 to 128 characters of
/// `[A-Za-z0-9._:@-]`, so that it can travel in headers and URLs unescaped.
pub fn is_valid_id(id: &str) -> bool {
    (1..=ID_MAX_LEN).contains(&id.len()) && id.bytes().all(is_id_byte)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-')
}

/// A new notification id: a UUIDv7, so ids sort by the time they were made.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked_for_length_and_characters() {
        assert!(is_valid_recipient("user-42"));
        assert!(is_valid_recipient("tenant:acme"));
        assert!(is_valid_recipient("a.b_c:d@e-f"));
        assert!(is_valid_recipient(&"x".repeat(256)));
        assert!(!is_valid_recipient(""));
        assert!(!is_valid_recipient(&"x".repeat(257)));
        assert!(!is_valid_recipient("user 42"));
        assert!(!is_valid_recipient("user/42"));
        assert!(!is_valid_recipient("ünicode"));
    }

    #[test]
    fn new_ids_are_valid_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert!(is_valid_id(&a) && is_valid_id(&b));
        assert_ne!(a, b);
    }
}
