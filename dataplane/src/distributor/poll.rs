//! `GET /v1/connect/poll`: long-polling, for clients that can hold neither a
//! WebSocket nor an event stream. Each request is a short connection: it
//! acknowledges everything up to its `after` cursor, then answers with what
//! follows, waiting up to `wait` seconds for the first notification.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::session::Session;
use super::{Distributor, Envelope, token};
use crate::api_error::ApiError;

/// The longest a poll waits.
const MAX_WAIT_SECS: u64 = 60;

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    pub token: Option<String>,
    /// The largest position the client has processed: it and everything
    /// before it are acknowledged, and the answer starts after it.
    pub after: Option<u64>,
    /// Seconds to wait for a first notification (default 25, at most 60).
    pub wait: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PollResponse {
    /// In position order; empty when none came within `wait`.
    pub notifications: Vec<Envelope>,
    /// The cursor for the next poll: the last position here, or the `after`
    /// given when there is none.
    pub next: Option<u64>,
}

pub async fn poll(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    Query(query): Query<PollQuery>,
) -> Result<Json<PollResponse>, ApiError> {
    let recipient = token::recipient(&headers, query.token.as_deref(), &distributor.jwt)?;
    let wait = Duration::from_secs(query.wait.unwrap_or(25));
    if wait > Duration::from_secs(MAX_WAIT_SECS) {
        return Err(ApiError::unprocessable(
            "invalid_wait",
            format!("wait is at most {MAX_WAIT_SECS} seconds"),
        )
        .at("wait"));
    }
    if let Some(after) = query.after {
        super::session::acknowledge_through(&distributor, &recipient, after)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot acknowledge a poll cursor");
                ApiError::unavailable("the inbox is unreachable; poll again later", 5)
            })?;
    }
    let page_size = distributor.page_size as usize;
    let stop = distributor.stop.clone();
    let mut session = Session::open(distributor, recipient, query.after, "poll").await?;
    let mut notifications = Vec::new();
    // The first may be waited for (the inbox is read however long it
    // takes); the rest only taken if already there.
    let first = tokio::select! {
        fed = session.next_within(wait) => fed.map_err(unavailable)?,
        () = stop.cancelled() => None,
    };
    if let Some(first) = first {
        notifications.push(first);
        while notifications.len() < page_size {
            match session
                .next_within(Duration::ZERO)
                .await
                .map_err(unavailable)?
            {
                Some(fed) => notifications.push(fed),
                None => break,
            }
        }
    }
    let next = notifications.last().map(|n| n.position).or(query.after);
    Ok(Json(PollResponse {
        notifications,
        next,
    }))
}

fn unavailable(e: super::session::FeedError) -> ApiError {
    tracing::warn!(error = %e, "a poll could not be answered");
    ApiError::unavailable("the inbox is unreachable; poll again later", 5)
}
