//! The demo page at `/`: pick a recipient, connect over any transport,
//! publish from a form, and watch notifications arrive and be acknowledged.
//! On the development credentials, `/demo/tokens` hands the page a client
//! token and a publish token, to a caller on this machine only (a loopback
//! peer, and a loopback name in `Host`, so that a web page elsewhere cannot
//! reach it by DNS rebinding); otherwise it is not there, and the page asks
//! for credentials.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::auth::jwt::{Claims, sign_with_secret};
use crate::auth::publisher::PUBLISH_SCOPE;
use crate::notification::is_valid_recipient;

const PAGE: &str = include_str!("demo.html");

/// How long the demo's tokens last.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// `jwt_secret` is the generated secret, on development credentials only.
pub fn router(jwt_secret: Option<String>) -> Router {
    let page = Router::new().route("/", get(|| async { Html(PAGE) }));
    match jwt_secret {
        Some(secret) => page.route("/demo/tokens", get(tokens).with_state(Arc::new(secret))),
        None => page,
    }
}

#[derive(Deserialize)]
struct TokensQuery {
    recipient: String,
}

#[derive(Serialize)]
struct Tokens {
    client_token: String,
    publish_token: String,
}

async fn tokens(
    State(secret): State<Arc<String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<TokensQuery>,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !peer.ip().is_loopback() || !host.is_some_and(is_loopback_host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the demo's development tokens are for a browser on this machine: open the page at http://localhost:<port>/",
        )
        .into_response();
    }
    if !is_valid_recipient(&query.recipient) {
        return ApiError::unprocessable(
            "invalid_recipient",
            "a recipient is 1 to 256 characters of A-Z, a-z, 0-9 and . _ : @ -",
        )
        .at("recipient")
        .into_response();
    }
    let exp = (crate::notification::now_ms() / 1000) + TOKEN_LIFETIME.as_secs();
    let sign = |sub: &str, scope: &str| {
        let claims = Claims {
            sub: sub.to_string(),
            exp,
            scope: scope.to_string(),
        };
        sign_with_secret(&claims, secret.as_bytes())
    };
    match (sign(&query.recipient, ""), sign("demo", PUBLISH_SCOPE)) {
        (Ok(client_token), Ok(publish_token)) => Json(Tokens {
            client_token,
            publish_token,
        })
        .into_response(),
        (Err(e), _) | (_, Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot sign a token: {e}"),
        )
        .into_response(),
    }
}

/// Whether a `Host` header names this machine: `localhost`, or a loopback
/// address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_machine_are_loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "evil.example:8080",
            "10.0.0.1:8080",
            "localhost.evil.example",
            "[::2]:80",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
