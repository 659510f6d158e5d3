//! `GET /v1/connect/sse`: Server-Sent Events. Each notification is an event
//! `notification` whose `id` is its position, so a reconnecting EventSource
//! sends `Last-Event-ID` and resumes after it. SSE clients acknowledge with
//! `POST /v1/ack`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use serde::Deserialize;
use tracing::Instrument;
use utoipa::IntoParams;

use super::envelope::check_position;
use super::session::Session;
use super::{Distributor, Envelope, token};
use crate::api_error::{ApiError, ErrorBody, Unauthorized, Unavailable};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// The client's JWT, for clients that cannot set headers (browsers'
    /// WebSocket and EventSource); `Authorization: Bearer` wins over it.
    pub token: Option<String>,
    /// Resume after this position: only notifications with a larger one
    /// are sent. Without it, everything not yet acknowledged.
    #[serde(default, deserialize_with = "super::envelope::optional_position")]
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    pub after: Option<u64>,
}

/// Connect by Server-Sent Events
///
/// An event stream of the recipient's inbox, in position order, then its
/// live notifications. Each is an event `notification` whose `id` is the
/// notification's position and whose `data` is its envelope (schema
/// `Envelope`):
///
/// ```text
/// event: notification
/// id: 1042
/// data: {"id":"0193b0c4-...","position":1042,"payload":{"text":"hello"},"published_at_ms":1764032400123}
/// ```
///
/// Lines starting with `:` are keep-alive comments, every 15 seconds. An
/// event `error` with `data` `{"code":"...","message":"..."}` precedes the
/// end of the stream: `unavailable` when the inbox is unreachable,
/// `slow_client` when the connection's queue filled. The stream also ends
/// when the distributor stops. SSE is one-way: acknowledge with
/// `POST /v1/ack`; reconnect with `Last-Event-ID` (an `EventSource` sends it
/// by itself). While presence (where connections are registered) is
/// unreachable, a connection is answered `503` `unavailable` with
/// `Retry-After`.
#[utoipa::path(
    get,
    path = "/v1/connect/sse",
    operation_id = "connect_sse",
    tag = "connect",
    params(
        ConnectQuery,
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "Resume after this position; wins over `after`. A value that is not a whole number is answered `400` `invalid_header`; an empty one counts as absent."),
    ),
    responses(
        (status = 200, description = "The event stream, as described above.", content_type = "text/event-stream", body = String),
        (status = 400, description = "A query parameter that is not understood (`invalid_query`, `field` the parameter: `after` not a whole number from 0 to 9223372036854775807, say), answered before the token is checked; or a `Last-Event-ID` that is not a whole number (`invalid_header`, `field` `Last-Event-ID`).", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("client_jwt" = []), ("client_token" = [])),
)]
pub async fn connect(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    query: Result<Query<ConnectQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // The query first, as the token may be in it.
    let Query(query) = query?;
    let recipient = token::recipient(&headers, query.token.as_deref(), &distributor.jwt)?;
    let after = last_event_id(&headers)?.or(query.after);
    let stop = distributor.stop.clone();
    let session = Session::open(distributor, recipient, after, "sse", Duration::ZERO).await?;

    // The inbox, then live notifications, until the client leaves (which
    // drops the stream and the session) or the distributor stops.
    let span = session.span();
    let events = stream::unfold(Some(session), move |state| {
        let stop = stop.clone();
        let next = async move {
            let mut session = state?;
            tokio::select! {
                fed = session.next() => match fed {
                    Ok(envelope) => Some((event(&envelope), Some(session))),
                    Err(e) => {
                        tracing::info!(error = %e, "closing an SSE stream");
                        let data = serde_json::json!({"code": e.code(), "message": e.to_string()}).to_string();
                        Some((Event::default().event("error").data(data), None))
                    }
                },
                () = stop.cancelled() => None,
            }
        };
        next.instrument(span.clone())
    });
    Ok(Sse::new(events.map(Ok)).keep_alive(KeepAlive::new().interval(super::KEEP_ALIVE)))
}

/// The position in `Last-Event-ID`, if there is one. An empty header is none
/// (an `EventSource` whose last event had no id could send one); anything
/// else that is not a whole number is refused rather than ignored, since
/// ignoring it would resend everything not yet acknowledged.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let refused = |why: &str| {
        ApiError::bad_request(
            "invalid_header",
            format!("Last-Event-ID is a position: {why}"),
        )
        .at("Last-Event-ID")
    };
    let value = value
        .to_str()
        .map_err(|_| refused("a whole number"))?
        .trim();
    if value.is_empty() {
        return Ok(None);
    }
    let position = value
        .parse::<u64>()
        .map_err(|_| refused("a whole number"))?;
    check_position(position)
        .map(Some)
        .map_err(|why| refused(&why))
}

fn event(envelope: &Envelope) -> Event {
    let data = serde_json::to_string(envelope).unwrap_or_else(|_| "{}".into());
    Event::default()
        .event("notification")
        .id(envelope.position.to_string())
        .data(data)
}
