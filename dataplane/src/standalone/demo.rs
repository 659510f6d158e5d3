//! The demo page at `/`: pick a recipient, connect over any transport,
//! publish from a form, and watch notifications arrive and be acknowledged.
//! It connects with the TypeScript SDK, whose committed bundle
//! (`sdk/typescript/dist/notif.js`, kept current by a test) it serves at
//! `/demo/notif.js`.
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
use crate::auth::jwt::{Checks, Claims, IssuedClaims, sign_with_secret};
use crate::auth::publisher::PUBLISH_SCOPE;
use crate::notification::is_valid_recipient;

const PAGE: &str = include_str!("demo.html");
const SDK: &str = include_str!("../../../sdk/typescript/dist/notif.js");

/// How long the demo's tokens last.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What the demo's tokens are signed with, and what they must say to be
/// taken: the generated secret, and the configured audience and issuer.
pub struct DemoTokens {
    pub secret: String,
    pub checks: Checks,
}

/// `tokens` is given on development credentials only.
pub fn router(tokens: Option<DemoTokens>) -> Router {
    let page = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/demo/notif.js", get(sdk));
    match tokens {
        Some(signer) => page.route("/demo/tokens", get(issue).with_state(Arc::new(signer))),
        None => page,
    }
}

async fn sdk() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SDK,
    )
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

async fn issue(
    State(signer): State<Arc<DemoTokens>>,
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
        let issued = IssuedClaims {
            claims: &claims,
            aud: signer.checks.audience.as_deref(),
            iss: signer.checks.issuer.as_deref(),
        };
        sign_with_secret(&issued, signer.secret.as_bytes())
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
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::jwt::JwtVerifier;

    const SECRET: &str = "demo-test-secret";

    fn checks() -> Checks {
        Checks {
            audience: Some("notif".into()),
            issuer: Some("idp".into()),
            leeway_secs: 0,
        }
    }

    /// `GET /demo/tokens?recipient=alice` from `peer`, naming `host`.
    async fn tokens_for(peer: &str, host: &str) -> (StatusCode, serde_json::Value) {
        let signer = DemoTokens {
            secret: SECRET.into(),
            checks: checks(),
        };
        let app = router(Some(signer)).layer(MockConnectInfo(
            peer.parse::<SocketAddr>().expect("an address"),
        ));
        let request = Request::get("/demo/tokens?recipient=alice")
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("a request");
        let response = app.oneshot(request).await.expect("an answer");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .expect("the body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[tokio::test]
    async fn a_caller_beyond_this_machine_gets_no_token() {
        for (peer, host) in [
            ("192.0.2.7:40000", "localhost:8080"),
            ("[2001:db8::1]:40000", "[::1]:8080"),
            // DNS rebinding: a loopback peer, a page of another name.
            ("127.0.0.1:40000", "rebind.example:8080"),
        ] {
            let (status, body) = tokens_for(peer, host).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{peer} naming {host}");
            assert_eq!(body["error"]["code"], "forbidden", "{body}");
            assert!(body.get("client_token").is_none(), "{body}");
        }
    }

    #[tokio::test]
    async fn the_tokens_a_browser_here_gets_say_what_the_service_requires() {
        let (status, body) = tokens_for("127.0.0.1:40000", "localhost:8080").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let verifier = JwtVerifier::with_secret(SECRET.as_bytes())
            .expect("a key")
            .checking(&checks());
        let client = verifier
            .verify(body["client_token"].as_str().expect("a client token"))
            .expect("taken where an audience and an issuer are required");
        assert_eq!(client.sub, "alice");
        assert!(!client.has_scope(PUBLISH_SCOPE));
        let publisher = verifier
            .verify(body["publish_token"].as_str().expect("a publish token"))
            .expect("taken too");
        assert!(publisher.has_scope(PUBLISH_SCOPE));
    }

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
