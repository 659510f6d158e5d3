//! Publishing: `POST /v1/notifications` with an API key or a publish-scoped
//! JWT.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

/// A notification to publish.
#[derive(Debug, Clone, Serialize)]
pub struct NewNotification {
    pub recipient: String,
    /// Any JSON.
    pub payload: serde_json::Value,
    /// An idempotency key; the service makes a UUIDv7 when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A label for clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Seconds after which it is dropped undelivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

impl NewNotification {
    pub fn new(recipient: impl Into<String>, payload: serde_json::Value) -> Self {
        NewNotification {
            recipient: recipient.into(),
            payload,
            id: None,
            kind: None,
            ttl: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The service could not accept it now (503): nothing was accepted;
    /// publish again after `retry_after`.
    #[error("the service is unavailable ({message}); retry after {retry_after:?}")]
    Unavailable {
        retry_after: Duration,
        message: String,
    },
    /// The service refused it: bad input or credentials. Nothing was accepted.
    #[error("{status} {code}: {message}")]
    Rejected {
        status: StatusCode,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// The request did not get an answer.
    #[error("the request failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// Publishes to one receiver (or the standalone service).
#[derive(Clone)]
pub struct Publisher {
    http: reqwest::Client,
    url: String,
    credential: String,
}

#[derive(Deserialize)]
struct Accepted {
    ids: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    field: Option<String>,
}

impl Publisher {
    /// `base_url` is the receiver's, e.g. `http://127.0.0.1:8080`;
    /// `credential` an API key or a JWT with the `publish` scope.
    pub fn new(base_url: &str, credential: impl Into<String>) -> Self {
        Publisher {
            http: reqwest::Client::new(),
            url: format!("{}/v1/notifications", base_url.trim_end_matches('/')),
            credential: credential.into(),
        }
    }

    /// Publishes `batch` as one request: all are accepted, or none. Returns
    /// their ids, in order, once the service holds them durably.
    pub async fn publish(&self, batch: &[NewNotification]) -> Result<Vec<String>, PublishError> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.credential)
            .json(&serde_json::json!({ "notifications": batch }))
            .send()
            .await?;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            return Ok(response.json::<Accepted>().await?.ids);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map_or(Duration::from_secs(1), Duration::from_secs);
        let text = response.text().await?;
        let detail = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(ErrorDetail {
                code: "unexpected".into(),
                message: text,
                field: None,
            });
        match status {
            StatusCode::SERVICE_UNAVAILABLE => Err(PublishError::Unavailable {
                retry_after,
                message: detail.message,
            }),
            _ => Err(PublishError::Rejected {
                status,
                code: detail.code,
                message: detail.message,
                field: detail.field,
            }),
        }
    }
}
