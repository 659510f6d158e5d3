//! Reading a request's JSON body, once its credentials were checked: the
//! media type and the declared size first, then the body within a time
//! limit, so that a caller who sends too much, or too slowly, costs little.
//! The route's `DefaultBodyLimit` must be the same `max_bytes`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};

use crate::api_error::ApiError;

/// How large a body may be and how long it may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// The body of `request`, which must be `application/json` (415
/// `unsupported_media_type`), at most `max_bytes` (413 `body_too_large`,
/// from `Content-Length` before anything is read), and arrive within
/// `timeout` (408 `body_timeout`).
pub async fn read(request: Request, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let headers = request.headers();
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with `Content-Type: application/json`",
        ));
    }
    let too_large = || {
        ApiError::too_large(
            "body_too_large",
            format!("the body is larger than {} bytes", limits.max_bytes),
        )
    };
    if content_length(headers).is_some_and(|length| length > limits.max_bytes as u64) {
        return Err(too_large());
    }
    tokio::time::timeout(limits.timeout, Bytes::from_request(request, &()))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} s",
                    limits.timeout.as_secs()
                ),
            )
        })?
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            _ => ApiError::bad_request(
                "unreadable_body",
                format!("cannot read the body: {rejection}"),
            ),
        })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
