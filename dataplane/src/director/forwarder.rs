//! The director's end of the forwarding stream: one WebSocket per
//! distributor, opened on first use at the address the distributor
//! announces in presence, and shared by every notification sent there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::forward::{self, Answer, Batch, Forward, Item, Outcome, Reports};
use crate::forward_secret::ForwardSecret;
use crate::presence::Presence;

struct Request {
    recipient: String,
    message: forward::Message,
    reply: oneshot::Sender<Answer>,
}

type Links = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Request>>>>;

pub struct Forwarder {
    presence: Arc<dyn Presence>,
    /// Sent to distributors that require it.
    secret: Option<ForwardSecret>,
    links: Links,
}

/// How much longer than a notification's wait its outcome may take to come
/// back: past that, the distributor went silent.
const MARGIN: Duration = Duration::from_secs(5);

impl Forwarder {
    pub fn new(presence: Arc<dyn Presence>, secret: Option<ForwardSecret>) -> Self {
        Forwarder {
            presence,
            secret,
            links: Links::default(),
        }
    }

    fn link(&self, distributor: &str) -> mpsc::UnboundedSender<Request> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = links.get(distributor).filter(|l| !l.is_closed()) {
            return link.clone();
        }
        let (sender, requests) = mpsc::unbounded_channel();
        links.insert(distributor.to_string(), sender.clone());
        tokio::spawn(run_link(
            distributor.to_string(),
            self.presence.clone(),
            self.secret.clone(),
            self.links.clone(),
            requests,
        ));
        sender
    }
}

impl Forward for Forwarder {
    /// A distributor that cannot be reached counts as a timeout.
    fn send(
        &self,
        distributor: &str,
        recipient: &str,
        message: forward::Message,
    ) -> BoxFuture<'static, Answer> {
        let wait = match &message {
            forward::Message::Notification { wait_ms, .. } => Duration::from_millis(*wait_ms),
            forward::Message::Stored { .. } | forward::Message::Acknowledged { .. } => {
                Duration::ZERO
            }
        };
        let (reply, outcome) = oneshot::channel();
        let request = Request {
            recipient: recipient.to_string(),
            message,
            reply,
        };
        if let Err(mpsc::error::SendError(request)) = self.link(distributor).send(request) {
            // The link just ended; one more try on a new one.
            let _ = self.link(distributor).send(request);
        }
        async move {
            match tokio::time::timeout(wait + MARGIN, outcome).await {
                Ok(Ok(answer)) => answer,
                _ => Outcome::TimedOut.into(),
            }
        }
        .boxed()
    }
}

/// One stream to one distributor, until it fails; then whatever waits on it
/// has no outcome (a timeout to the router), and the next request opens a
/// new stream.
async fn run_link(
    distributor: String,
    presence: Arc<dyn Presence>,
    secret: Option<ForwardSecret>,
    links: Links,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    if let Err(e) = stream(&distributor, presence.as_ref(), secret, &mut requests).await {
        tracing::debug!(distributor, error = %e, "forwarding stream ended");
    }
    // Closing the receiver closes this link's senders (a newer link's stay
    // open), and drops what was queued: those requests time out.
    requests.close();
    let mut links = links.lock().unwrap_or_else(|e| e.into_inner());
    if links.get(&distributor).is_some_and(|link| link.is_closed()) {
        links.remove(&distributor);
    }
}

async fn stream(
    distributor: &str,
    presence: &dyn Presence,
    secret: Option<ForwardSecret>,
    requests: &mut mpsc::UnboundedReceiver<Request>,
) -> Result<(), String> {
    let address = presence
        .distributor_address(distributor)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the distributor is not announced (it stopped)")?;
    let url = format!("ws://{address}{}", forward::PATH);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    if let Some(secret) = secret {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::header::AUTHORIZATION,
            secret.header(),
        );
    }
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut outgoing, mut incoming) = socket.split();
    let mut waiting: HashMap<u64, oneshot::Sender<Answer>> = HashMap::new();
    let mut next_seq = 0u64;
    loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(first) = request else { return Ok(()) };
                // Everything queued goes in one batch.
                let mut items = Vec::new();
                let mut take = |request: Request| {
                    next_seq += 1;
                    waiting.insert(next_seq, request.reply);
                    items.push(Item { seq: next_seq, recipient: request.recipient, message: request.message });
                };
                take(first);
                while let Ok(more) = requests.try_recv() {
                    take(more);
                }
                let text = serde_json::to_string(&Batch { items }).map_err(|e| e.to_string())?;
                outgoing.send(Message::text(text)).await.map_err(|e| e.to_string())?;
            }
            message = incoming.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Err("the distributor closed the stream".into()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(_)) => continue,
                };
                let reports: Reports = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                for report in reports.outcomes {
                    if let Some(reply) = waiting.remove(&report.seq) {
                        let _ = reply.send(Answer { outcome: report.outcome, left_behind: report.left_behind });
                    }
                }
            }
        }
    }
}
