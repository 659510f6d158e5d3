//! The OpenAPI document of the public API: the receiver's publish endpoint
//! and the distributor's client endpoints, generated from their handlers'
//! annotations and their types. Every deployment serves it at
//! `GET /v1/openapi.json` on its public port ([`router`]), `notifd openapi`
//! prints it, and `docs/openapi.json` is a copy that a test keeps current
//! (`just openapi` rewrites it).

use std::sync::LazyLock;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::Modify;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::api_error::{Unauthorized, Unavailable};

/// The document: this module's header, then the receiver's and the
/// distributor's operations, then this document's own.
pub fn document() -> OpenApi {
    let mut document = Header::openapi();
    document.merge(crate::receiver::ApiDoc::openapi());
    document.merge(crate::distributor::ApiDoc::openapi());
    document.merge(Itself::openapi());
    document
}

/// `GET /v1/openapi.json`. Each role's public port merges it in once: the
/// receiver and the distributor each, and standalone, which serves both
/// roles on one port, once.
pub fn router() -> Router {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "SaaSaparilla Notifications",
        description = "Product backends publish notifications to a recipient (a user id) through the \
            receiver; the recipient's clients connect to the distributor by WebSocket, Server-Sent \
            Events or long-polling, receive its notifications in order, and acknowledge them. \
            Delivery is at least once: de-duplicate by `id`, resume after the last `position`.\n\n\
            `notifd receiver` serves `publish`, `notifd distributor` serves `connect`, each on its \
            own port; `notifd standalone` serves both on one. Every one serves this document. The \
            client protocol in full, with what OpenAPI cannot say about WebSocket frames and \
            event streams: `docs/protocol.md`.",
    ),
    components(responses(Unauthorized, Unavailable)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "publish", description = "For product backends: the receiver."),
        (name = "connect", description = "For a recipient's clients: the distributor."),
        (name = "document", description = "This document."),
    ),
)]
struct Header;

#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi_json))]
struct Itself;

/// How publishers and clients authenticate.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "publisher",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key, or a JWT whose `scope` has `publish` (signed like a \
                         client's). Not needed when the receiver runs with \
                         `--allow-anonymous-publish`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT whose `sub` is the recipient id; `exp` is required. Signed with \
                         the service's shared secret (HS256) or the private half of its public \
                         key (RS256, ES256 or EdDSA).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The client's JWT in the query, for browsers: neither WebSocket nor EventSource \
                 can set headers. `Authorization: Bearer` wins over it.",
            ))),
        );
    }
}

static DOCUMENT: LazyLock<OpenApi> = LazyLock::new(document);

/// This document
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "document",
    responses((status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json")),
)]
async fn openapi_json() -> Json<&'static OpenApi> {
    Json(&DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/openapi.json`, as committed.
    fn committed() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let text = std::fs::read_to_string(path).expect("docs/openapi.json is there");
        serde_json::from_str(&text).expect("docs/openapi.json is JSON")
    }

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = serde_json::to_value(document()).expect("the document is JSON");
        assert!(
            committed() == generated,
            "docs/openapi.json is stale: run `just openapi`"
        );
    }

    /// The limits the service enforces (with their default settings), as a
    /// client generated from the document would see them.
    #[test]
    fn the_document_carries_every_limit() {
        let document = serde_json::to_value(document()).expect("the document is JSON");
        let schemas = "/components/schemas";
        let id_pattern = serde_json::json!("^[A-Za-z0-9._:@-]+$");
        let max_position = serde_json::json!(i64::MAX);
        let mut limits = vec![
            (
                format!("{schemas}/NewNotification/properties/recipient/minLength"),
                1.into(),
            ),
            (
                format!("{schemas}/NewNotification/properties/recipient/maxLength"),
                256.into(),
            ),
            (
                format!("{schemas}/NewNotification/properties/recipient/pattern"),
                id_pattern.clone(),
            ),
            (
                format!("{schemas}/NewNotification/properties/id/maxLength"),
                128.into(),
            ),
            (
                format!("{schemas}/NewNotification/properties/id/pattern"),
                id_pattern.clone(),
            ),
            (
                format!("{schemas}/NewNotification/properties/ttl/minimum"),
                1.into(),
            ),
            (
                format!("{schemas}/NewNotification/properties/ttl/maximum"),
                2_592_000.into(),
            ),
            (
                format!("{schemas}/NewNotification/properties/kind/maxLength"),
                64.into(),
            ),
            (
                format!("{schemas}/NotificationBatch/properties/notifications/minItems"),
                1.into(),
            ),
            (
                format!("{schemas}/NotificationBatch/properties/notifications/maxItems"),
                1000.into(),
            ),
            (
                format!("{schemas}/AckRequest/properties/ids/maxItems"),
                1000.into(),
            ),
            (
                format!("{schemas}/ClientFrame/oneOf/0/properties/ids/maxItems"),
                1000.into(),
            ),
            (format!("{schemas}/NotificationId/minLength"), 1.into()),
            (format!("{schemas}/NotificationId/maxLength"), 128.into()),
            (format!("{schemas}/NotificationId/pattern"), id_pattern),
            (
                format!("{schemas}/Envelope/properties/position/maximum"),
                max_position.clone(),
            ),
        ];
        for (path, operation) in [
            ("/v1/connect/ws", "get"),
            ("/v1/connect/sse", "get"),
            ("/v1/connect/poll", "get"),
        ] {
            let parameters = &document["paths"][path][operation]["parameters"];
            let after = parameters
                .as_array()
                .and_then(|all| all.iter().position(|p| p["name"] == "after"))
                .unwrap_or_else(|| panic!("{path} has `after`"));
            let escaped = path.replace('/', "~1");
            limits.push((
                format!("/paths/{escaped}/{operation}/parameters/{after}/schema/maximum"),
                max_position.clone(),
            ));
        }
        for (pointer, limit) in limits {
            assert_eq!(document.pointer(&pointer), Some(&limit), "{pointer}");
        }
    }
}
