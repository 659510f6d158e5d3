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
    let session = Session::open(distributor, recipient, "sse").await?;

    // The inbox, page by page; then the stream stays open (with keep-alive
    // comments) until the client leaves, which drops the session, or the
    // distributor stops, which ends the stream.
    let pages = stream::unfold(Some((session, after)), move |state| {
        let stop = stop.clone();
        async move {
            let (session, after) = state?;
            match session.inbox_after(after).await {
                Ok(page) if page.is_empty() => {
                    stop.cancelled().await;
                    drop(session);
                    None
                }
                Ok(page) => {
                    let next = page.last().map(|p| p.position);
                    let events: Vec<Event> =
                        page.iter().map(|p| event(&Envelope::from(p))).collect();
                    Some((events, Some((session, next))))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the inbox; closing the SSE stream");
                    let close = Event::default().event("error").data(r#"{"code":"unavailable","message":"the inbox is unreachable; reconnect later"}"#);
                    Some((vec![close], None))
                }
            }
        }
    });
    let events = pages.flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event(envelope: &Envelope) -> Event {
    let data = serde_json::to_string(envelope).unwrap_or_else(|_| "{}".into());
    Event::default()
        .event("notification")
        .id(envelope.position.to_string())
        .data(data)
}
