//! The distributor's end of the forwarding stream (on its internal forward
//! port): each notification a director forwards is handed to the
//! recipient's connections here, and its outcome reported back. The port
//! also takes acknowledgements other distributors pass on (`relay`). In one
//! process (standalone), the director hands notifications over directly.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::{get, post};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{Distributor, Envelope};
use crate::forward::{self, Batch, Forward, Outcome, Report, Reports};

pub fn router(distributor: Arc<Distributor>) -> Router {
    Router::new()
        .route(forward::PATH, get(accept))
        .route(super::relay::PATH, post(super::relay::accept))
        .with_state(distributor)
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
                for item in batch.items {
                    let (distributor, reports) = (distributor.clone(), reports.clone());
                    deliveries.spawn(async move {
                        let outcome = distributor.live.deliver(&item.recipient, item.envelope, distributor.ack_timeout).await;
                        let _ = reports.send(Report { seq: item.seq, outcome });
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

/// In process, this distributor is the only one: `distributor` names it.
#[async_trait]
impl Forward for Distributor {
    async fn forward(&self, _distributor: &str, recipient: &str, envelope: Envelope) -> Outcome {
        self.live
            .deliver(recipient, envelope, self.ack_timeout)
            .await
    }
}
