//! `GET /v1/connect/poll`: long-polling, for clients that can hold neither a
//! WebSocket nor an event stream. Each request is a short connection: it
//! acknowledges everything up to its `after` cursor, then answers with what
//! follows, waiting up to `wait` seconds for the first notification.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

use super::session::Session;
use super::{Distributor, Envelope, token};
use crate::api_error::{ApiError, ErrorBody, Unauthorized, Unavailable};

/// The longest a poll waits.
const MAX_WAIT_SECS: u64 = 60;

/// How long what a poll answered waits for the next poll, whose cursor
/// acknowledges it. Past that, the next poll went to another distributor
/// (or never came): the notification is sent again, or stored, by its
/// director, and the cursor settles it there.
const NEXT_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollQuery {
    /// The client's JWT, for clients that cannot set headers;
    /// `Authorization: Bearer` wins over it.
    pub token: Option<String>,
    /// The largest position the client has processed: it and everything
    /// before it are acknowledged, and the answer starts after it.
    #[serde(default, deserialize_with = "super::envelope::optional_position")]
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    pub after: Option<u64>,
    /// Seconds to wait for a first notification (default 25, at most 60).
    #[param(maximum = 60)]
    pub wait: Option<u64>,
}

/// The answer to a poll.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PollResponse {
    /// In position order; empty when none came within `wait`.
    pub notifications: Vec<Envelope>,
    /// The cursor for the next poll: the last position here, or the `after`
    /// given when there is none; `null` when there is neither.
    #[schema(required = true)]
    pub next: Option<u64>,
}

/// Long-poll
///
/// For clients that can hold neither a WebSocket nor an event stream. A
/// poll first acknowledges every notification of the recipient up to and
/// including `after`, then answers with what follows, waiting up to `wait`
/// seconds for the first one. A client loops, polling with `after=next`.
/// It counts as connected only while a poll waits: what is published
/// between polls waits in its inbox for the next one. While presence (where
/// connections are registered) or the inbox is unreachable, a poll is
/// answered `503` `unavailable` with `Retry-After`.
#[utoipa::path(
    get,
    path = "/v1/connect/poll",
    operation_id = "poll",
    tag = "connect",
    params(PollQuery),
    responses(
        (status = 200, description = "The notifications after `after`, in position order (none when none came within `wait`), and the next cursor.", body = PollResponse),
        (status = 400, description = "A query parameter that is not understood (`invalid_query`, `field` the parameter: `after` not a whole number from 0 to 9223372036854775807, or `wait` not a whole number, say), answered before the token is checked.", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 422, description = "`wait` is over 60 seconds (`invalid_wait`).", body = ErrorBody),
        (status = 503, response = Unavailable),
    ),
    security(("client_jwt" = []), ("client_token" = [])),
)]
pub async fn poll(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Json<PollResponse>, ApiError> {
    // The query first, as the token may be in it.
    let Query(query) = query?;
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
        // A poll's rows were fed by an earlier poll, perhaps on
        // another distributor that forgot: the cursor covers the inbox.
        super::session::acknowledge_through(&distributor, &recipient, after, false, true)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot acknowledge a poll cursor");
                ApiError::unavailable("the inbox is unreachable; poll again later", 5)
            })?;
    }
    let session = Session::open(distributor, recipient, query.after, "poll", NEXT_POLL).await?;
    let span = session.span();
    answer(session, query.after, wait).instrument(span).await
}

/// Answers a poll on `session`: what follows `after`, waiting up to `wait`
/// for the first.
async fn answer(
    mut session: Session,
    after: Option<u64>,
    wait: Duration,
) -> Result<Json<PollResponse>, ApiError> {
    let page_size = session.page_size();
    let stop = session.stop();
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
    let next = notifications.last().map(|n| n.position).or(after);
    Ok(Json(PollResponse {
        notifications,
        next,
    }))
}

fn unavailable(e: super::session::FeedError) -> ApiError {
    tracing::warn!(error = %e, "a poll could not be answered");
    ApiError::unavailable("the inbox is unreachable; poll again later", 5)
}
