//! Publisher authentication: a bearer API key, or a JWT with the `publish`
//! scope. Without either, no publish, unless the service is configured open.

use axum::http::HeaderValue;

use super::api_keys::ApiKeys;
use super::jwt::{JwtVerifier, looks_like_jwt};
use crate::api_error::ApiError;

/// The scope a publisher's JWT must carry.
pub const PUBLISH_SCOPE: &str = "publish";

#[derive(Clone)]
pub struct PublisherAuth {
    pub api_keys: ApiKeys,
    pub jwt: Option<JwtVerifier>,
    /// Anyone may publish without credentials (a trusted network only).
    pub open: bool,
}

impl PublisherAuth {
    /// Checks a request's `Authorization` header.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), ApiError> {
        let Some(header) = authorization else {
            return match self.open {
                true => Ok(()),
                false => Err(ApiError::unauthorized(
                    "no credentials: send `Authorization: Bearer <API key or JWT>`",
                )),
            };
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
            })?;
        match (&self.jwt, looks_like_jwt(token)) {
            (Some(verifier), true) => {
                let claims = verifier
                    .verify(token)
                    .map_err(|e| ApiError::unauthorized(format!("the token is not valid: {e}")))?;
                match claims.has_scope(PUBLISH_SCOPE) {
                    true => Ok(()),
                    false => Err(ApiError::forbidden(format!(
                        "the token has no `{PUBLISH_SCOPE}` scope"
                    ))),
                }
            }
            _ if self.api_keys.contains(token) => Ok(()),
            _ => Err(ApiError::unauthorized("the API key is not known")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::{Claims, sign_with_secret};
    use axum::http::StatusCode;

    fn auth(open: bool) -> PublisherAuth {
        PublisherAuth {
            api_keys: ApiKeys::parse(&ApiKeys::hash("good-key")).unwrap(),
            jwt: Some(JwtVerifier::with_secret(b"secret").unwrap()),
            open,
        }
    }

    fn bearer(token: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
    }

    fn token(scope: &str) -> String {
        let exp = crate::notification::now_ms() / 1000 + 600;
        sign_with_secret(
            &Claims {
                sub: "backend".into(),
                exp,
                scope: scope.into(),
            },
            b"secret",
        )
        .unwrap()
    }

    fn status(result: Result<(), ApiError>) -> Option<StatusCode> {
        result.err().map(|e| e.status)
    }

    #[test]
    fn api_keys_and_scoped_tokens_may_publish() {
        assert_eq!(status(auth(false).check(Some(&bearer("good-key")))), None);
        assert_eq!(
            status(auth(false).check(Some(&bearer(&token("publish"))))),
            None
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let a = auth(false);
        assert_eq!(status(a.check(None)), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            status(a.check(Some(&bearer("bad-key")))),
            Some(StatusCode::UNAUTHORIZED)
        );
        let basic = HeaderValue::from_static("Basic Zm9vOmJhcg==");
        assert_eq!(
            status(a.check(Some(&basic))),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(a.check(Some(&bearer(&token("read"))))),
            Some(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn an_open_service_needs_no_credentials_but_checks_those_given() {
        assert_eq!(status(auth(true).check(None)), None);
        assert_eq!(
            status(auth(true).check(Some(&bearer("bad-key")))),
            Some(StatusCode::UNAUTHORIZED)
        );
    }
}
