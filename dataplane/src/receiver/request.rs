//! Reading a publish request: one notification, or `{"notifications":[...]}`.
//!
//! Every rule of the publish API is checked here, before anything is written,
//! so that a batch is accepted or rejected whole. Shape errors are 400,
//! sizes 413, unacceptable values 422; each names the field.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api_error::ApiError;
use crate::notification::{self, Notification, is_valid_id, is_valid_recipient};
use crate::whole_number;

/// The limits a publish request must keep.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The most notifications in one batch.
    pub max_batch: usize,
    /// The largest payload, in bytes of JSON.
    pub max_payload_bytes: usize,
    /// The longest `ttl`, in seconds.
    pub max_ttl_secs: u64,
}

type Object<'a> = BTreeMap<String, &'a RawValue>;

/// How deeply a payload's arrays and objects may nest: browsers' and most
/// libraries' JSON parsers take far more, and no notification needs more.
pub const MAX_PAYLOAD_NESTING: usize = 64;

/// The fields a notification may have; any other is refused.
const FIELDS: [&str; 5] = ["recipient", "payload", "id", "ttl", "kind"];

// The body of `POST /v1/notifications`, for the OpenAPI document only:
// `parse` reads it by hand (so that payloads pass through untouched), and a
// test keeps these types to the fields it accepts. `Deserialize` is there
// for the `serde` attributes, which the schemas follow.

/// One notification, or a batch: a body with a `notifications` field is a
/// batch.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PublishRequest {
    One(NewNotification),
    Batch(NotificationBatch),
}

/// One notification. Fields other than these are refused (400
/// `unknown_field`). `null` for an optional field (`id`, `ttl`, `kind`) is
/// as if it were left out, and for `recipient` as if it were missing (400
/// `missing_field`); a `null` `payload` is a payload like any other.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recipient": "alice", "payload": {"text": "hello"}, "id": "order-1042-shipped", "ttl": 3600, "kind": "chat"}))]
pub struct NewNotification {
    /// Who receives it: the `sub` of its clients' tokens. 1 to 256
    /// characters of `A-Z a-z 0-9 . _ : @ -` (otherwise 422
    /// `invalid_recipient`).
    #[schema(min_length = 1, max_length = 256, pattern = "^[A-Za-z0-9._:@-]+$")]
    pub recipient: String,
    /// Required, and any JSON value: `null` too, which is a payload like
    /// any other (only leaving `payload` out is 400 `missing_field`). Passed
    /// to clients exactly as sent. At most `--max-payload-bytes` bytes of
    /// JSON as sent (64 KiB by default; more: 413 `payload_too_large`).
    #[schema(value_type = Value)]
    pub payload: serde_json::Value,
    /// The notification's id, which clients de-duplicate and acknowledge by:
    /// give one so that they recognise a retried publish. 1 to 128
    /// characters of `A-Z a-z 0-9 . _ : @ -` (otherwise 422 `invalid_id`),
    /// unique within a batch (otherwise 422 `duplicate_id`). Without it (or
    /// with `null`) the receiver makes a UUIDv7.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")]
    pub id: Option<String>,
    /// Seconds after which it is dropped instead of delivered: 1 to
    /// `--max-ttl-secs` (30 days by default; otherwise 422 `invalid_ttl`).
    /// Without it (or with `null`), it never expires.
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub ttl: Option<u64>,
    /// A label for clients to route on, passed to them as the envelope's
    /// `kind`: 1 to 64 characters (otherwise 422 `invalid_kind`).
    /// Without it (or with `null`), the envelope has no `kind`.
    #[schema(min_length = 1, max_length = 64)]
    pub kind: Option<String>,
}

/// A batch, accepted or refused whole.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationBatch {
    /// 1 to `--max-batch` notifications (1000 by default; none: 422
    /// `empty_batch`; more: 413 `batch_too_large`). Their ids are answered
    /// in this order.
    #[schema(min_items = 1, max_items = 1000)]
    pub notifications: Vec<NewNotification>,
}

/// The notifications of a publish request, in the order given, with ids made
/// for those that came without and `now_ms` as their publish time.
pub fn parse(body: &[u8], limits: &Limits, now_ms: u64) -> Result<Vec<Notification>, ApiError> {
    let root: &RawValue = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not JSON: {e}"))
    })?;
    let object: Object = as_object(root, "").map_err(|e| {
        e.unwrap_or_else(|| {
            ApiError::bad_request(
                "invalid_type",
                "the body must be a JSON object: a notification, or {\"notifications\":[...]}",
            )
        })
    })?;

    let notifications = match object.get("notifications") {
        None => vec![notification(&object, "", limits, now_ms)?],
        Some(list) => {
            if let Some(other) = object.keys().find(|k| *k != "notifications") {
                return Err(ApiError::bad_request(
                    "unknown_field",
                    format!("a batch has only `notifications`, not `{other}`"),
                )
                .at(other.clone()));
            }
            batch(list, limits, now_ms)?
        }
    };
    Ok(notifications)
}

fn batch(list: &RawValue, limits: &Limits, now_ms: u64) -> Result<Vec<Notification>, ApiError> {
    let items: Vec<&RawValue> = serde_json::from_str(list.get()).map_err(|_| {
        ApiError::bad_request("invalid_type", "`notifications` must be an array")
            .at("notifications")
    })?;
    if items.is_empty() {
        return Err(
            ApiError::unprocessable("empty_batch", "`notifications` is empty").at("notifications"),
        );
    }
    if items.len() > limits.max_batch {
        return Err(ApiError::too_large(
            "batch_too_large",
            format!(
                "{} notifications in one batch; at most {} are allowed",
                items.len(),
                limits.max_batch
            ),
        )
        .at("notifications"));
    }
    let mut seen = HashSet::new();
    let mut notifications = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let path = format!("notifications[{index}]");
        let object = as_object(item, &format!("{path}.")).map_err(|e| {
            e.unwrap_or_else(|| {
                ApiError::bad_request("invalid_type", "a notification must be a JSON object")
                    .at(path.clone())
            })
        })?;
        let notification = notification(&object, &format!("{path}."), limits, now_ms)?;
        if !seen.insert(notification.id.clone()) {
            return Err(ApiError::unprocessable(
                "duplicate_id",
                format!("the id `{}` is given twice in this batch", notification.id),
            )
            .at(format!("{path}.id")));
        }
        notifications.push(notification);
    }
    Ok(notifications)
}

/// One notification; `prefix` is its path in the request (`notifications[3].`).
fn notification(
    object: &Object,
    prefix: &str,
    limits: &Limits,
    now_ms: u64,
) -> Result<Notification, ApiError> {
    let field = |name: &str| format!("{prefix}{name}");
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "unknown_field",
            format!(
                "`{unknown}` is not a field of a notification (recipient, payload, id, ttl, kind)"
            ),
        )
        .at(field(unknown)));
    }

    let recipient: String = required(object, "recipient", "a string", &field)?;
    if !is_valid_recipient(&recipient) {
        return Err(ApiError::unprocessable(
            "invalid_recipient",
            "a recipient is 1 to 256 characters of A-Z, a-z, 0-9 and . _ : @ -",
        )
        .at(field("recipient")));
    }

    let payload = object.get("payload").ok_or_else(|| {
        ApiError::bad_request("missing_field", "`payload` is required").at(field("payload"))
    })?;
    if payload.get().len() > limits.max_payload_bytes {
        return Err(ApiError::too_large(
            "payload_too_large",
            format!(
                "the payload is {} bytes of JSON; at most {} are allowed",
                payload.get().len(),
                limits.max_payload_bytes
            ),
        )
        .at(field("payload")));
    }

    if nesting(payload.get()) > MAX_PAYLOAD_NESTING {
        return Err(ApiError::unprocessable(
            "payload_too_deep",
            format!(
                "the payload nests arrays and objects more than {MAX_PAYLOAD_NESTING} deep, which clients' JSON parsers may refuse"
            ),
        )
        .at(field("payload")));
    }

    let id = match optional::<String>(object, "id", "a string", &field)? {
        Some(id) if !is_valid_id(&id) => {
            return Err(ApiError::unprocessable(
                "invalid_id",
                "an id is 1 to 128 characters of A-Z, a-z, 0-9 and . _ : @ -",
            )
            .at(field("id")));
        }
        Some(id) => id,
        None => notification::new_id(),
    };

    let ttl = optional::<serde_json::Number>(object, "ttl", "a whole number of seconds", &field)?;
    let ttl = ttl
        .map(|ttl| {
            whole_number::of(&ttl).ok_or_else(|| {
                ApiError::bad_request("invalid_type", "`ttl` must be a whole number of seconds")
                    .at(field("ttl"))
            })
        })
        .transpose()?;
    let expires_at_ms = match ttl {
        Some(ttl) if ttl == 0 || ttl > limits.max_ttl_secs => {
            return Err(ApiError::unprocessable(
                "invalid_ttl",
                format!(
                    "ttl is a number of seconds from 1 to {}",
                    limits.max_ttl_secs
                ),
            )
            .at(field("ttl")));
        }
        Some(ttl) => Some(now_ms + ttl * 1000),
        None => None,
    };

    let kind = optional::<String>(object, "kind", "a string", &field)?;
    // Characters, as the document's `maxLength` counts them.
    if let Some(length) = kind.as_ref().map(|kind| kind.chars().count())
        && !(1..=notification::KIND_MAX_LEN).contains(&length)
    {
        return Err(ApiError::unprocessable(
            "invalid_kind",
            format!(
                "a kind is 1 to {} characters; this one is {length}",
                notification::KIND_MAX_LEN,
            ),
        )
        .at(field("kind")));
    }

    Ok(Notification {
        id,
        recipient,
        payload: (*payload).to_owned(),
        kind,
        published_at_ms: now_ms,
        expires_at_ms,
    })
}

/// The fields of a JSON object; `Err(None)` when it is not one, and an
/// error naming the field (`prefix` is its path) when one is given twice:
/// which of the two would count is for no reader to guess.
fn as_object<'a>(raw: &'a RawValue, prefix: &str) -> Result<Object<'a>, Option<ApiError>> {
    let Fields(fields) = serde_json::from_str(raw.get()).map_err(|_| None)?;
    let mut object = Object::new();
    for (name, value) in fields {
        if object.contains_key(&name) {
            return Err(Some(
                ApiError::bad_request("duplicate_field", format!("`{name}` is given twice"))
                    .at(format!("{prefix}{name}")),
            ));
        }
        object.insert(name, value);
    }
    Ok(object)
}

/// A JSON object's fields in the order written, duplicates kept.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// How deeply arrays and objects nest in `json` (valid JSON): `1` for
/// `[1]`, `0` for a scalar.
fn nesting(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in json.bytes() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn required<T: DeserializeOwned>(
    object: &Object,
    name: &str,
    what: &str,
    field: &impl Fn(&str) -> String,
) -> Result<T, ApiError> {
    optional(object, name, what, field)?.ok_or_else(|| {
        ApiError::bad_request("missing_field", format!("`{name}` is required")).at(field(name))
    })
}

/// The field `name`, if given; an explicit `null` is as if it were not.
fn optional<T: DeserializeOwned>(
    object: &Object,
    name: &str,
    what: &str,
    field: &impl Fn(&str) -> String,
) -> Result<Option<T>, ApiError> {
    object
        .get(name)
        .filter(|raw| raw.get().trim() != "null")
        .map(|raw| {
            serde_json::from_str(raw.get()).map_err(|_| {
                ApiError::bad_request("invalid_type", format!("`{name}` must be {what}"))
                    .at(field(name))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    const LIMITS: Limits = Limits {
        max_batch: 3,
        max_payload_bytes: 32,
        max_ttl_secs: 3600,
    };

    fn parse_str(body: &str) -> Result<Vec<Notification>, ApiError> {
        parse(body.as_bytes(), &LIMITS, 1_000)
    }

    fn error(body: &str) -> (StatusCode, &'static str, Option<String>) {
        let e = parse_str(body).expect_err("the request is refused");
        (e.status, e.code, e.field)
    }

    #[test]
    fn one_notification_is_read_with_every_field() {
        let n = parse_str(
            r#"{"recipient":"u1","payload":{"a":[1,2.50]},"id":"n-1","ttl":60,"kind":"chat"}"#,
        )
        .unwrap()
        .remove(0);
        assert_eq!((n.id.as_str(), n.recipient.as_str()), ("n-1", "u1"));
        assert_eq!(
            n.payload.get(),
            r#"{"a":[1,2.50]}"#,
            "the payload is passed through untouched"
        );
        assert_eq!(
            (n.kind.as_deref(), n.published_at_ms, n.expires_at_ms),
            (Some("chat"), 1_000, Some(61_000))
        );
    }

    #[test]
    fn a_ttl_is_any_json_number_without_a_fraction() {
        for ttl in ["60", "60.0", "6e1", "6.0E1"] {
            let body = format!(r#"{{"recipient":"u","payload":1,"ttl":{ttl}}}"#);
            let n = parse_str(&body).expect("accepted").remove(0);
            assert_eq!(n.expires_at_ms, Some(61_000), "{ttl}");
        }
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"ttl":-1}"#).1,
            "invalid_type"
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"ttl":1e300}"#).1,
            "invalid_ttl"
        );
    }

    #[test]
    fn a_batch_keeps_its_order_and_ids_are_made_when_missing() {
        let list = parse_str(
            r#"{"notifications":[{"recipient":"a","payload":1},{"recipient":"b","payload":2}]}"#,
        )
        .unwrap();
        assert_eq!(
            list.iter()
                .map(|n| n.recipient.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(is_valid_id(&list[0].id) && list[0].id != list[1].id);
    }

    #[test]
    fn null_for_an_optional_field_is_as_if_it_were_left_out() {
        let n = parse_str(r#"{"recipient":"u","payload":1,"id":null,"ttl" : null ,"kind":null}"#)
            .expect("null optional fields are accepted")
            .remove(0);
        assert!(is_valid_id(&n.id), "an id is made: {}", n.id);
        assert_eq!((n.expires_at_ms, n.kind), (None, None));
        let batch = parse_str(
            r#"{"notifications":[{"recipient":"u","payload":1,"id":null},{"recipient":"v","payload":2,"id":null}]}"#,
        )
        .expect("null ids in a batch are made, not duplicates");
        assert_ne!(batch[0].id, batch[1].id);
        assert_eq!(
            error(r#"{"recipient":null,"payload":1}"#),
            (
                StatusCode::BAD_REQUEST,
                "missing_field",
                Some("recipient".into())
            ),
            "a required field is still required"
        );
    }

    #[test]
    fn a_null_payload_is_a_payload() {
        let n = parse_str(r#"{"recipient":"u","payload":null}"#)
            .expect("a null payload is accepted")
            .remove(0);
        assert_eq!(n.payload.get(), "null");
    }

    #[test]
    fn the_kind_is_measured_in_characters_as_the_document_says() {
        let fits = "é".repeat(64);
        let n = parse_str(&format!(
            r#"{{"recipient":"u","payload":1,"kind":"{fits}"}}"#
        ))
        .expect("64 characters (128 bytes) fit")
        .remove(0);
        assert_eq!(n.kind.as_deref(), Some(fits.as_str()));
        let body = format!(
            r#"{{"recipient":"u","payload":1,"kind":"{}"}}"#,
            "é".repeat(65)
        );
        let e = parse_str(&body).expect_err("65 characters do not fit");
        assert_eq!(
            (e.status, e.code, e.field.as_deref()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_kind",
                Some("kind")
            )
        );
        assert!(e.message.contains("characters"), "{}", e.message);
    }

    #[test]
    fn shape_errors_are_400() {
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(error("{not json"), (bad, "malformed_json", None));
        assert_eq!(error("[1]"), (bad, "invalid_type", None));
        assert_eq!(
            error(r#"{"recipient":"u","recipient":"v","payload":1}"#),
            (bad, "duplicate_field", Some("recipient".into()))
        );
        assert_eq!(
            error(r#"{"notifications":[{"recipient":"u","payload":1,"payload":2}]}"#),
            (
                bad,
                "duplicate_field",
                Some("notifications[0].payload".into())
            )
        );
        assert_eq!(
            error(r#"{"payload":1}"#),
            (bad, "missing_field", Some("recipient".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u"}"#),
            (bad, "missing_field", Some("payload".into()))
        );
        assert_eq!(
            error(r#"{"recipient":7,"payload":1}"#),
            (bad, "invalid_type", Some("recipient".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"ttl":"x"}"#),
            (bad, "invalid_type", Some("ttl".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"ttl":1.5}"#),
            (bad, "invalid_type", Some("ttl".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"to":"x"}"#),
            (bad, "unknown_field", Some("to".into()))
        );
        assert_eq!(
            error(r#"{"notifications":{}}"#),
            (bad, "invalid_type", Some("notifications".into()))
        );
        assert_eq!(
            error(r#"{"notifications":[{"recipient":"u","payload":1},5]}"#),
            (bad, "invalid_type", Some("notifications[1]".into()))
        );
    }

    #[test]
    fn the_documented_notification_has_the_fields_and_limits_read_here() {
        let schema = serde_json::to_value(<NewNotification as utoipa::PartialSchema>::schema())
            .expect("a schema is JSON");
        let properties = schema["properties"].as_object().expect("properties");
        let mut documented: Vec<&str> = properties.keys().map(String::as_str).collect();
        let mut read = FIELDS.to_vec();
        documented.sort_unstable();
        read.sort_unstable();
        assert_eq!(documented, read);
        assert_eq!(
            schema["required"],
            serde_json::json!(["recipient", "payload"])
        );
        for (field, max) in [
            ("recipient", notification::RECIPIENT_MAX_LEN),
            ("id", notification::ID_MAX_LEN),
            ("kind", notification::KIND_MAX_LEN),
        ] {
            assert_eq!(properties[field]["maxLength"], max, "{field}");
        }
    }

    #[test]
    fn sizes_over_the_limits_are_413() {
        let big = format!(r#"{{"recipient":"u","payload":"{}"}}"#, "x".repeat(40));
        assert_eq!(
            error(&big),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                Some("payload".into())
            )
        );
        let four = format!(
            r#"{{"notifications":[{}]}}"#,
            [r#"{"recipient":"u","payload":1}"#; 4].join(",")
        );
        assert_eq!(
            error(&four),
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                Some("notifications".into())
            )
        );
    }

    #[test]
    fn unacceptable_values_are_422() {
        let bad = StatusCode::UNPROCESSABLE_ENTITY;
        assert_eq!(
            error(r#"{"recipient":"","payload":1}"#),
            (bad, "invalid_recipient", Some("recipient".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"a b","payload":1}"#),
            (bad, "invalid_recipient", Some("recipient".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"ttl":0}"#),
            (bad, "invalid_ttl", Some("ttl".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"ttl":3601}"#),
            (bad, "invalid_ttl", Some("ttl".into()))
        );
        assert_eq!(
            error(r#"{"recipient":"u","payload":1,"id":"a/b"}"#),
            (bad, "invalid_id", Some("id".into()))
        );
        assert_eq!(
            error(r#"{"notifications":[]}"#),
            (bad, "empty_batch", Some("notifications".into()))
        );
        let roomy = Limits {
            max_payload_bytes: 1024,
            ..LIMITS
        };
        let nested = |depth: usize, inside: &str| {
            let (open, close) = ("[".repeat(depth), "]".repeat(depth));
            format!(r#"{{"recipient":"u","payload":{open}{inside}{close}}}"#)
        };
        let refused = parse(nested(65, "1").as_bytes(), &roomy, 0).expect_err("too deep");
        assert_eq!(
            (refused.status, refused.code, refused.field),
            (bad, "payload_too_deep", Some("payload".into()))
        );
        assert!(
            parse(nested(64, r#""]]\"[{""#).as_bytes(), &roomy, 0).is_ok(),
            "brackets in strings do not count"
        );
        assert_eq!(
            error(
                r#"{"notifications":[{"recipient":"u","payload":1,"id":"x"},{"recipient":"v","payload":2,"id":"x"}]}"#
            ),
            (bad, "duplicate_id", Some("notifications[1].id".into()))
        );
        assert_eq!(
            error(
                r#"{"notifications":[{"recipient":"u","payload":1},{"recipient":"","payload":1}]}"#
            ),
            (
                bad,
                "invalid_recipient",
                Some("notifications[1].recipient".into())
            )
        );
    }
}
