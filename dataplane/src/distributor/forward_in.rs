//! The distributor's end of the forwarding stream (on its internal forward
//! port): each notification a director forwards is handed to the
//! recipient's connections here, and its outcome reported back. The port
//! also takes acknowledgements other distributors pass on (`relay`). In one
//! process (standalone), the director hands notifications over directly.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Router, middleware};
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Distributor;
use super::live::Order;
use crate::forward::{self, Answer, Batch, Forward, Outcome, Report, Reports};
use crate::forward_secret;

pub fn router(distributor: Arc<Distributor>) -> Router {
    let router = Router::new()
        .route(forward::PATH, get(accept))
        .route(forward::RELAY_PATH, post(super::relay::accept));
    let router = match distributor.forward_secret.clone() {
        Some(secret) => router.layer(middleware::from_fn_with_state(
            secret,
            forward_secret::require,
        )),
        None => router,
    };
    router.with_state(distributor)
}

async fn accept(
    State(distributor): State<Arc<Distributor>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| serve(socket, distributor))
}

async fn serve(socket: WebSocket, distributor: Arc<Distributor>) {
    let (mut outgoing, mut incoming) = socket.split();
    let (reports, mut to_send) = mpsc::unbounded_channel::<Report>();
    // Outcomes go back as they come, batched by whatever is ready together.
    let writer = tokio::spawn(async move {
        while let Some(first) = to_send.recv().await {
            let mut outcomes = vec![first];
            while let Ok(more) = to_send.try_recv() {
                outcomes.push(more);
            }
            let text = serde_json::to_string(&Reports { outcomes }).unwrap_or_default();
            if outgoing
                .send(Message::Text(Utf8Bytes::from(text)))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut deliveries = JoinSet::new();
    loop {
        tokio::select! {
            message = incoming.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let batch: Batch = match serde_json::from_str(&text) {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::error!(error = %e, "a director sent a frame that is not a batch; closing its stream");
                        break;
                    }
                };
                // Handed over here, in the order sent; only the waits for
                // acknowledgements run apart.
                for item in batch.items {
                    let outcome = distributor.take(&item.recipient, item.message);
                    let reports = reports.clone();
                    deliveries.spawn(async move {
                        let answer = outcome.await;
                        let _ = reports.send(Report {
                            seq: item.seq,
                            outcome: answer.outcome,
                            left_behind: answer.left_behind,
                        });
                    });
                }
            }
            Some(_) = deliveries.join_next() => {}
            () = distributor.stop.cancelled() => break,
        }
    }
    // The director sees the stream end and counts what it has no outcome
    // for as not delivered: it retries, or stores it.
    deliveries.abort_all();
    writer.abort();
}

impl Distributor {
    /// Takes a director's `message` for `recipient`'s connections here.
    pub fn take(&self, recipient: &str, message: forward::Message) -> BoxFuture<'static, Answer> {
        match message {
            forward::Message::Notification {
                envelope,
                follows,
                stored_through,
                wait_ms,
            } => {
                let wait = self.ack_timeout.min(Duration::from_millis(wait_ms));
                let order = Order {
                    follows,
                    stored_through,
                };
                let span = tracing::debug_span!(
                    "handed_over",
                    %recipient,
                    id = %envelope.id,
                    position = envelope.position,
                );
                self.live
                    .hand(recipient, envelope, order, wait)
                    .inspect(|answer| tracing::debug!(outcome = ?answer.outcome, "answered"))
                    .instrument(span)
                    .boxed()
            }
            forward::Message::Stored { through } => {
                futures::future::ready(self.live.stored(recipient, through).into()).boxed()
            }
            forward::Message::Acknowledged { id } => {
                self.live.acknowledge(recipient, std::slice::from_ref(&id));
                futures::future::ready(Outcome::Delivered.into()).boxed()
            }
        }
    }
}

/// In process, this distributor is the only one: `distributor` names it.
impl Forward for Distributor {
    fn send(
        &self,
        _distributor: &str,
        recipient: &str,
        message: forward::Message,
    ) -> BoxFuture<'static, Answer> {
        self.take(recipient, message)
    }
}
