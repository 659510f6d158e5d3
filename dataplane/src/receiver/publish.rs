//! `POST /v1/notifications`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::{Receiver, request};
use crate::api_error::ApiError;
use crate::metrics::RejectedLabels;
use crate::notification::now_ms;

/// The answer to an accepted publish: the ids, in the order given.
#[derive(Debug, Serialize, Deserialize)]
pub struct Accepted {
    pub ids: Vec<String>,
}

pub fn router(receiver: Arc<Receiver>) -> Router {
    let body_limit = receiver.max_body_bytes;
    Router::new()
        .route("/v1/notifications", post(publish))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(receiver)
}

async fn publish(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let result = accept(&receiver, &headers, body).await;
    match &result {
        Ok(accepted) => {
            receiver.metrics.accepted.inc_by(accepted.ids.len() as u64);
        }
        Err(e) => {
            receiver
                .metrics
                .rejected
                .get_or_create(&RejectedLabels { code: e.code })
                .inc();
        }
    }
    result.map(|accepted| (StatusCode::ACCEPTED, Json(accepted)))
}

async fn accept(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, ApiError> {
    receiver.auth.check(headers.get(header::AUTHORIZATION))?;
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the notification as JSON, with `Content-Type: application/json`",
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(
            "body_too_large",
            format!("the body is larger than {} bytes", receiver.max_body_bytes),
        ),
        _ => ApiError::bad_request(
            "unreadable_body",
            format!("cannot read the body: {rejection}"),
        ),
    })?;
    let batch = request::parse(&body, &receiver.limits, now_ms())?;
    if let Err(e) = receiver.log.append(&batch).await {
        tracing::warn!(error = %e, notifications = batch.len(), "publish not accepted: the log did not take it");
        return Err(ApiError::unavailable(
            "the log did not confirm the write; retry later (an id on each notification makes retries safe)",
            5,
        ));
    }
    Ok(Accepted {
        ids: batch.into_iter().map(|n| n.id).collect(),
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
