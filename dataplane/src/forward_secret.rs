//! The secret directors and distributors share on the distributors' forward
//! port: whoever reaches that port could otherwise hand any recipient a
//! notification, or acknowledge one away. Sent as `Authorization: Bearer`,
//! compared in constant time.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;
use crate::config::{ConfigError, read_file};

/// The forward port's secret, as the director's and distributor's flags
/// give it.
#[derive(clap::Args, Debug, Clone)]
pub struct ForwardSecretArgs {
    /// Secret that directors and distributors share on the forward port.
    /// Without it, the port takes notifications from anything that reaches it.
    #[arg(long, env = "NOTIF_FORWARD_SECRET", hide_env_values = true)]
    pub forward_secret: Option<String>,
    /// File holding the forward port's secret, as a mounted Secret.
    #[arg(
        long,
        env = "NOTIF_FORWARD_SECRET_FILE",
        conflicts_with = "forward_secret"
    )]
    pub forward_secret_file: Option<PathBuf>,
}

impl ForwardSecretArgs {
    /// The secret, or none (with a warning) when none is configured.
    pub fn secret(&self) -> Result<Option<ForwardSecret>, ConfigError> {
        let secret = match (&self.forward_secret, &self.forward_secret_file) {
            (Some(secret), _) => Some(("--forward-secret", secret.clone())),
            (None, Some(path)) => {
                let bytes = read_file("--forward-secret-file", path)?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    ConfigError::new("--forward-secret-file", "the secret is not UTF-8 text")
                })?;
                Some(("--forward-secret-file", text.trim_end().to_string()))
            }
            (None, None) => None,
        };
        let Some((flag, secret)) = secret else {
            tracing::warn!(
                "no --forward-secret: the forward port takes notifications and acknowledgements from anything that reaches it"
            );
            return Ok(None);
        };
        ForwardSecret::new(&secret)
            .map(Some)
            .ok_or_else(|| ConfigError::new(flag, "is empty or not valid in an HTTP header"))
    }
}

/// `Authorization: Bearer <secret>`, ready to send and to compare.
#[derive(Clone, Debug)]
pub struct ForwardSecret(Arc<HeaderValue>);

impl ForwardSecret {
    pub fn new(secret: &str) -> Option<ForwardSecret> {
        if secret.is_empty() {
            return None;
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {secret}")).ok()?;
        value.set_sensitive(true);
        Some(ForwardSecret(Arc::new(value)))
    }

    /// The header to send.
    pub fn header(&self) -> HeaderValue {
        self.0.as_ref().clone()
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|given| given.as_bytes().ct_eq(self.0.as_bytes()).into())
    }
}

/// Refuses, with `401`, a request to the forward port without the secret.
pub async fn require(
    State(secret): State<ForwardSecret>,
    request: Request,
    next: Next,
) -> Response {
    match secret.admits(request.headers()) {
        true => next.run(request).await,
        false => ApiError::unauthorized(
            "the forward port takes only directors and distributors with its secret",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_is_admitted() {
        let secret = ForwardSecret::new("s3cret").expect("a secret");
        let mut headers = HeaderMap::new();
        assert!(!secret.admits(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer other"),
        );
        assert!(!secret.admits(&headers));
        headers.insert(header::AUTHORIZATION, secret.header());
        assert!(secret.admits(&headers));
        assert!(ForwardSecret::new("").is_none());
        assert!(ForwardSecret::new("line\nbreak").is_none());
    }
}
