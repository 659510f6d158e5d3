//! `POST /v1/ack`: a client acknowledges notifications by id, live ones and
//! those from its inbox alike. For SSE clients, and any client that prefers
//! HTTP.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::{Distributor, token};
use crate::api_error::ApiError;
use crate::notification::is_valid_id;

/// The most ids in one acknowledgement.
const MAX_IDS: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
pub struct AckRequest {
    pub ids: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AckResponse {
    /// The ids that were held for the recipient (in its inbox, or waiting
    /// for a live acknowledgement) and now are not.
    pub acknowledged: Vec<String>,
    /// The ids that were not held: acknowledged already (by another
    /// connection of the recipient, say), or never sent to it.
    pub unknown: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub token: Option<String>,
}

pub async fn acknowledge(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    body: Result<Json<AckRequest>, JsonRejection>,
) -> Result<Json<AckResponse>, ApiError> {
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
