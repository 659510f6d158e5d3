//! `POST /v1/ack`: a client acknowledges notifications by id, live ones and
//! those from its inbox alike. For SSE clients, and any client that prefers
//! HTTP.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Distributor, token};
use crate::api_error::{ApiError, ErrorBody, Unauthorized, Unavailable};
use crate::notification::is_valid_id;

/// The most ids in one acknowledgement.
const MAX_IDS: usize = 1000;

/// Notifications to acknowledge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckRequest {
    /// 1 to 1000 notification ids (none: 422 `empty_ids`; more: 413
    /// `too_many_ids`), each 1 to 128 characters of `A-Z a-z 0-9 . _ : @ -`
    /// (otherwise 422 `invalid_id`, `field` `ids[i]`).
    #[schema(min_items = 1, max_items = 1000)]
    pub ids: Vec<String>,
}

/// What an acknowledgement did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AckResponse {
    /// The ids that were held for the recipient (in its inbox, or waiting
    /// for a live acknowledgement) and now are not.
    pub acknowledged: Vec<String>,
    /// The ids that were not held: acknowledged already (by another
    /// connection of the recipient, say), or never sent to it.
    pub unknown: Vec<String>,
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
/// the recipient: those in its inbox leave it, and a live one stops waiting.
#[utoipa::path(
    post,
    path = "/v1/ack",
    operation_id = "ack",
    tag = "connect",
    params(TokenQuery),
    request_body = AckRequest,
    responses(
        (status = 200, description = "Which ids were held for the recipient, and which were not.", body = AckResponse),
        (status = 400, description = "A query parameter that is not understood (`invalid_query`, `field` the parameter), answered before the token is checked; or the body is not `{\"ids\":[...]}` JSON sent as `application/json` (`invalid_body`).", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 413, description = "More than 1000 ids (`too_many_ids`).", body = ErrorBody),
        (status = 422, description = "`ids` is empty (`empty_ids`), or an id is not 1 to 128 characters of `A-Z a-z 0-9 . _ : @ -` (`invalid_id`, `field` `ids[i]`).", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("client_jwt" = []), ("client_token" = [])),
)]
pub async fn acknowledge(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    body: Result<Json<AckRequest>, JsonRejection>,
) -> Result<Json<AckResponse>, ApiError> {
    // The query first, as the token may be in it.
    let Query(query) = query?;
    let recipient = token::recipient(&headers, query.token.as_deref(), &distributor.jwt)?;
    let Json(AckRequest { ids }) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("send {{\"ids\":[...]}} as JSON: {}", e.body_text()),
        )
    })?;
    if ids.is_empty() {
        return Err(ApiError::unprocessable("empty_ids", "`ids` is empty").at("ids"));
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
    let acknowledged = super::session::acknowledge(&distributor, &recipient, &ids)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot acknowledge");
            ApiError::unavailable("the inbox is unreachable; acknowledge again later", 5)
        })?;
    let unknown = ids
        .into_iter()
        .filter(|id| !acknowledged.contains(id))
        .collect();
    Ok(Json(AckResponse {
        acknowledged,
        unknown,
    }))
}
