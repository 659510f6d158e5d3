//! `GET /v1/connect/sse`: Server-Sent Events. Each notification is an event
//! `notification` whose `id` is its position, so a reconnecting EventSource
//! sends `Last-Event-ID` and resumes after it. SSE clients acknowledge with
//! `POST /v1/ack`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use serde::Deserialize;

use super::session::Session;
use super::{Distributor, Envelope, token};
use crate::api_error::ApiError;

#[derive(Debug, Deserialize)]
pub struct ConnectQuery {
    /// The client's JWT, for clients that cannot set headers.
    pub token: Option<String>,
    /// Resume after this position.
    pub after: Option<u64>,
}

pub async fn connect(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    Query(query): Query<ConnectQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let recipient = token::recipient(&headers, query.token.as_deref(), &distributor.jwt)?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(query.after);
    let stop = distributor.stop.clone();
    let session = Session::open(distributor, recipient, after, "sse").await?;

    // The inbox, then live notifications, until the client leaves (which
    // drops the stream and the session) or the distributor stops.
    let events = stream::unfold(Some(session), move |state| {
        let stop = stop.clone();
        async move {
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
        }
    });
    Ok(Sse::new(events.map(Ok)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event(envelope: &Envelope) -> Event {
    let data = serde_json::to_string(envelope).unwrap_or_else(|_| "{}".into());
    Event::default()
        .event("notification")
        .id(envelope.position.to_string())
        .data(data)
}
