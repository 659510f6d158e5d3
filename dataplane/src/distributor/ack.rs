//! `POST /v1/ack`: a client acknowledges notifications by id, or everything
//! through a position, live ones and those from its inbox alike. For SSE
//! clients, and any client that prefers HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, Request, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Distributor, token};
use crate::api_error::{ApiError, ErrorBody, Unauthorized, Unavailable};
use crate::json_body::{self, BodyLimits};
use crate::notification::is_valid_id;

/// The most ids in one acknowledgement.
const MAX_IDS: usize = 1000;

/// An acknowledgement's body: room for the most ids at their longest.
pub const BODY: BodyLimits = BodyLimits {
    max_bytes: 256 * 1024,
    timeout: Duration::from_secs(10),
};

/// A notification's id, as the OpenAPI document describes it.
pub(super) struct NotificationId;

impl utoipa::PartialSchema for NotificationId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some("^[A-Za-z0-9._:@-]+$"))
            .into()
    }
}

impl ToSchema for NotificationId {}

/// Notifications to acknowledge: by id, through a position, or both (not
/// neither: 422 `empty_ack`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckRequest {
    /// Up to 1000 notification ids (more: 413 `too_many_ids`), each 1 to
    /// 128 characters of `A-Z a-z 0-9 . _ : @ -` (otherwise 422
    /// `invalid_id`, `field` `ids[i]`).
    #[serde(default)]
    #[schema(max_items = 1000, value_type = Vec<NotificationId>)]
    pub ids: Vec<String>,
    /// Everything of the recipient up to and including this position; it
    /// must not be beyond what was sent to the recipient (422
    /// `beyond_sent`).
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(nullable = false)]
    pub through: Option<u64>,
}

/// What an acknowledgement did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckResponse {
    /// Every id of the request: each was held for the recipient (in its
    /// inbox, or waiting for a live acknowledgement) and now is not, or the
    /// recipient had acknowledged it already (by another connection, say).
    pub acknowledged: Vec<String>,
    /// The request's `through`, when it had one: everything up to it is
    /// acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub through: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The client's JWT, for clients that cannot set headers;
    /// `Authorization: Bearer` wins over it.
    pub token: Option<String>,
}

/// Acknowledge notifications
///
/// Acknowledged notifications are not delivered again, to any connection of
/// the recipient: those in its inbox leave it, and a live one stops waiting
/// (on whichever distributor its connection is). `through` acknowledges
/// everything up to a position at once, as far as it was sent.
/// Acknowledging twice is fine; an id never sent to the recipient, or a
/// position beyond what was sent, is an error.
#[utoipa::path(
    post,
    path = "/v1/ack",
    operation_id = "ack",
    tag = "connect",
    params(TokenQuery),
    request_body = AckRequest,
    responses(
        (status = 200, description = "Every id is acknowledged.", body = AckResponse),
        (status = 400, description = "A query parameter that is not understood (`invalid_query`, `field` the parameter), answered before the token is checked; or the body is not `{\"ids\":[...]}` or `{\"through\":position}` JSON (`invalid_body`), or could not be read (`unreadable_body`).", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 408, description = "The body did not arrive within 10 s (`body_timeout`).", body = ErrorBody),
        (status = 413, description = "More than 1000 ids (`too_many_ids`), or a body over 256 KiB (`body_too_large`, refused from its `Content-Length` before it is read).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "Neither `ids` nor `through` (`empty_ack`); an id is not 1 to 128 characters of `A-Z a-z 0-9 . _ : @ -` (`invalid_id`, `field` `ids[i]`); `through` is beyond every position sent to the recipient (`beyond_sent`, `field` `through`: only what was sent and waits live is acknowledged, nothing stored); or an id was never sent to the recipient, as far as the service remembers (`unknown_id`, `field` the first such `ids[i]`: the rest is acknowledged all the same).", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("client_jwt" = []), ("client_token" = [])),
)]
pub async fn acknowledge(
    State(distributor): State<Arc<Distributor>>,
    request: Request,
) -> Result<Json<AckResponse>, ApiError> {
    // The query first, as the token may be in it; the body only once the
    // token is good.
    let Query(query) = Query::<TokenQuery>::try_from_uri(request.uri())?;
    let recipient = token::recipient(request.headers(), query.token.as_deref(), &distributor.jwt)?;
    let body = json_body::read(request, BODY).await?;
    let AckRequest { ids, through } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("send {{\"ids\":[...]}} or {{\"through\":position}} as JSON: {e}"),
        )
    })?;
    check(&ids, through)?;
    let unavailable = |e: crate::inbox::InboxError| {
        tracing::warn!(error = %e, "cannot acknowledge");
        ApiError::unavailable("the inbox is unreachable; acknowledge again later", 5)
    };
    if let Some(position) = through {
        let sent =
            super::session::acknowledge_through(&distributor, &recipient, position, true, false)
                .await
                .map_err(unavailable)?;
        if sent.is_none_or(|sent| position > sent) {
            return Err(beyond_sent(position).at("through"));
        }
    }
    let found = super::session::acknowledge(&distributor, &recipient, &ids)
        .await
        .map_err(unavailable)?;
    if let Some(first) = found.unknown.first() {
        let index = ids.iter().position(|id| id == first).unwrap_or_default();
        return Err(
            ApiError::unprocessable("unknown_id", unknown_message(&found.unknown))
                .at(format!("ids[{index}]")),
        );
    }
    Ok(Json(AckResponse {
        acknowledged: found.known,
        through,
    }))
}

/// Checks an acknowledgement's shape, as `POST /v1/ack` and the WebSocket's
/// `ack` frame both take it.
pub(super) fn check(ids: &[String], through: Option<u64>) -> Result<(), ApiError> {
    if ids.is_empty() && through.is_none() {
        return Err(ApiError::unprocessable(
            "empty_ack",
            "give `ids`, `through`, or both",
        ));
    }
    if ids.len() > MAX_IDS {
        return Err(
            ApiError::too_large("too_many_ids", format!("at most {MAX_IDS} ids at once")).at("ids"),
        );
    }
    if let Some(index) = ids.iter().position(|id| !is_valid_id(id)) {
        return Err(
            ApiError::unprocessable("invalid_id", "not a notification id")
                .at(format!("ids[{index}]")),
        );
    }
    Ok(())
}

pub(super) fn beyond_sent(position: u64) -> ApiError {
    ApiError::unprocessable(
        "beyond_sent",
        format!(
            "nothing was sent to this recipient up to position {position}: acknowledge only what you received"
        ),
    )
}

/// Says which ids were never sent to the recipient (the first few of them).
pub(super) fn unknown_message(unknown: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut named = unknown
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if unknown.len() > SHOWN {
        named.push_str(&format!(" and {} more", unknown.len() - SHOWN));
    }
    format!(
        "never sent to this recipient, or acknowledged too long ago to remember: {named}; the other ids are acknowledged"
    )
}
