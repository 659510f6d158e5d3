//! Errors of the public HTTP API, as clients see them: a status and a JSON
//! body `{"error":{"code":..., "message":..., "field":...}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{ToResponse, ToSchema};

/// One error answer. `code` is stable and meant for programs; `message` is
/// for people; `field` names the part of the request that is wrong, as a path
/// such as `notifications[3].recipient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (503s).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request's shape is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 413: something is larger than allowed.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 422: well-formed, but a value is not acceptable.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 401: no credentials, or ones that do not check out.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: valid credentials that do not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 503: a server behind this one is unreachable; retry later.
    pub fn unavailable(message: impl Into<String>, retry_after_secs: u32) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        error.retry_after = Some(retry_after_secs);
        error
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_recipient", "message": "a recipient is 1 to 256 characters of A-Z, a-z, 0-9 and . _ : @ -", "field": "notifications[3].recipient"}}))]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What is wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, for programs: `unauthorized`, `invalid_recipient`, ... (each
    /// operation lists its codes).
    code: &'a str,
    /// For people; its wording may change.
    message: &'a str,
    /// The part of the request that is wrong, as a path such as
    /// `notifications[3].recipient`, `ids[0]` or `wait`. Absent when the
    /// request as a whole is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'a str>,
}

// The two answers every endpoint may give, for the OpenAPI document. They
// are never built: their types describe an `ApiError`'s response.

/// 401, reusable in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "No credentials, or ones that do not check out (code `unauthorized`).",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthorized<'a>(#[allow(dead_code)] ErrorBody<'a>);

/// 503, reusable in the OpenAPI document.
#[derive(ToResponse)]
#[response(
    description = "A server behind this one is unreachable (code `unavailable`); retry after `Retry-After` seconds.",
    headers(("Retry-After" = u32, description = "Seconds after which a retry may succeed."))
)]
pub struct Unavailable<'a>(#[allow(dead_code)] ErrorBody<'a>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
