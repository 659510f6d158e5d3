//! Errors of the public HTTP API, as clients see them: a status and a JSON
//! body `{"error":{"code":..., "message":..., "field":...}}`.

use axum::extract::rejection::QueryRejection;
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

/// A query string that `axum::extract::Query` could not read: 400
/// `invalid_query`, with `field` the parameter that is wrong when the error
/// says which. Handlers take their query as
/// `Result<Query<T>, QueryRejection>` and `?` it, so that the answer is this
/// JSON body and not axum's plain text.
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        match query_parameter_error(&rejection) {
            Some((parameter, error)) => ApiError::bad_request(
                "invalid_query",
                format!("the query parameter `{parameter}` is not valid: {error}"),
            )
            .at(parameter),
            None => ApiError::bad_request(
                "invalid_query",
                format!("the query string is not valid: {}", rejection.body_text()),
            ),
        }
    }
}

/// The parameter a query rejection is about, and what is wrong with it.
/// axum keeps the error of `serde_path_to_error` (over `serde_urlencoded`)
/// in the rejection's source chain, and its path is the parameter; a test
/// below notices should axum stop doing so. None when the error is not about
/// one parameter (`?after=1&after=2`, say).
fn query_parameter_error(rejection: &QueryRejection) -> Option<(String, String)> {
    type ParameterError = serde_path_to_error::Error<serde_urlencoded::de::Error>;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    let error = loop {
        let error = source?;
        if let Some(error) = error.downcast_ref::<ParameterError>() {
            break error;
        }
        source = error.source();
    };
    match error.path().iter().collect::<Vec<_>>()[..] {
        [serde_path_to_error::Segment::Map { key }] => {
            Some((key.clone(), error.inner().to_string()))
        }
        _ => None,
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
    /// `notifications[3].recipient` or `ids[0]`, a query parameter such as
    /// `wait`, or a header such as `Last-Event-ID`. Absent when the request
    /// as a whole is.
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Query;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Params {
        after: Option<u64>,
        token: Option<String>,
    }

    fn rejected(query: &str) -> ApiError {
        let uri = format!("/v1/connect/poll?{query}").parse().expect("a URI");
        Query::<Params>::try_from_uri(&uri)
            .expect_err("the query is refused")
            .into()
    }

    #[test]
    fn a_bad_query_parameter_is_named() {
        let error = rejected("token=t&after=abc");
        assert_eq!(
            (error.status, error.code, error.field.as_deref()),
            (StatusCode::BAD_REQUEST, "invalid_query", Some("after"))
        );
        assert!(error.message.contains("`after`"), "{}", error.message);
    }

    #[test]
    fn a_bad_query_string_that_is_not_one_parameter_has_no_field() {
        let error = rejected("after=1&after=2");
        assert_eq!(
            (error.status, error.code, error.field.as_deref()),
            (StatusCode::BAD_REQUEST, "invalid_query", None)
        );
        assert!(error.message.contains("after"), "{}", error.message);
    }
}
