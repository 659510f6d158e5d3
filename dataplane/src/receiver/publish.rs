//! `POST /v1/notifications`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Receiver, request};
use crate::api_error::{ApiError, ErrorBody, Unauthorized, Unavailable};
use crate::json_body;
use crate::metrics::RejectedLabels;
use crate::notification::now_ms;

/// The answer to an accepted publish: the ids, in the order given.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"ids": ["order-1042-shipped", "0193b0c4-5b1e-7c0a-9a55-3c1d2f0e8a11"]}))]
pub struct Accepted {
    pub ids: Vec<String>,
}

pub fn router(receiver: Arc<Receiver>) -> Router {
    let body_limit = receiver.body.max_bytes;
    Router::new()
        .route("/v1/notifications", post(publish))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(receiver)
}

/// Publish one notification, or a batch
///
/// Answered `202` only once the log (Kafka; SQLite in standalone) has every
/// notification of the request durably; while it is unreachable, `503` with
/// `Retry-After`, never `202`. A batch is accepted or refused whole. A
/// recipient's notifications reach its clients in the order they were
/// accepted.
///
/// The body is JSON (`Content-Type: application/json`) of at most
/// `--max-body-bytes` bytes (16 MiB by default). Publishers authenticate
/// with `Authorization: Bearer` and an API key or a JWT whose `scope` has
/// `publish`, unless the service runs with `--allow-anonymous-publish`.
#[utoipa::path(
    post,
    path = "/v1/notifications",
    operation_id = "publish",
    tag = "publish",
    request_body = request::PublishRequest,
    responses(
        (status = 202, description = "Accepted, and durable: the notifications' ids, in the order given.", body = Accepted),
        (status = 400, description = "The request's shape is wrong: `malformed_json`, `invalid_type`, `missing_field`, `unknown_field`, `duplicate_field`, `unreadable_body`.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 403, description = "A JWT without the `publish` scope (`forbidden`).", body = ErrorBody),
        (status = 408, description = "The body did not arrive within `--body-timeout-secs` (`body_timeout`).", body = ErrorBody),
        (status = 413, description = "Too large: the body (`body_too_large`), a payload (`payload_too_large`) or a batch (`batch_too_large`).", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "Well-formed, but a value is not acceptable: `invalid_recipient`, `invalid_id`, `invalid_ttl`, `invalid_kind`, `payload_too_deep` (arrays and objects nested more than 64 deep), `empty_batch`, `duplicate_id`.", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("publisher" = [])),
)]
async fn publish(
    State(receiver): State<Arc<Receiver>>,
    request: Request,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let result = accept(&receiver, request).await;
    receiver.metrics.requests.inc();
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

/// Checks the credentials and the headers before it reads the body: a
/// caller without credentials, or with a body declared too large, costs
/// nothing to refuse.
async fn accept(receiver: &Receiver, request: Request) -> Result<Accepted, ApiError> {
    receiver
        .auth
        .check(request.headers().get(header::AUTHORIZATION))?;
    let body = json_body::read(request, receiver.body).await?;
    let batch = request::parse(&body, &receiver.limits, now_ms())?;
    if let Err(e) = receiver.log.append(&batch).await {
        tracing::warn!(error = %e, notifications = batch.len(), "publish not accepted: the log did not take it");
        return Err(ApiError::unavailable(
            "the log did not confirm the write; retry later (an id on each notification makes retries safe)",
            5,
        ));
    }
    // The first step of each notification's trace: the director's lane and
    // the distributor's hand-over log it under the same id.
    for notification in &batch {
        tracing::debug!(id = %notification.id, recipient = %notification.recipient, "accepted");
    }
    Ok(Accepted {
        ids: batch.into_iter().map(|n| n.id).collect(),
    })
}
