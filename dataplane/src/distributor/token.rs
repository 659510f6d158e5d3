//! Who a client is: the `sub` of its JWT, from `Authorization: Bearer` or,
//! for browsers, which cannot set headers on WebSocket and EventSource, the
//! `token` query parameter.

use axum::http::{HeaderMap, StatusCode, header};

use crate::api_error::ApiError;
use crate::auth::jwt::JwtVerifier;
use crate::auth::publisher::PUBLISH_SCOPE;
use crate::notification::is_valid_recipient;

pub fn recipient(
    headers: &HeaderMap,
    query_token: Option<&str>,
    jwt: &JwtVerifier,
) -> Result<String, ApiError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let token = from_header
        .or(query_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("no token: send `Authorization: Bearer <JWT>` or `?token=<JWT>`")
        })?;
    let claims = jwt
        .verify(token)
        .map_err(|e| ApiError::unauthorized(format!("the token is not valid: {e}")))?;
    // A publisher's token is a credential for the publish API; a client
    // holding one is not a recipient.
    if claims.has_scope(PUBLISH_SCOPE) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a token with the `publish` scope cannot connect as a client: use a client token of the recipient",
        ));
    }
    if !is_valid_recipient(&claims.sub) {
        return Err(ApiError::unauthorized(
            "the token's `sub` is not a valid recipient id",
        ));
    }
    Ok(claims.sub)
}
