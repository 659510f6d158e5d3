//! The three transports, over one [`Link`]: what a connection hands
//! notifications to and takes acknowledgements from.

pub mod poll;
pub mod sse;
pub mod ws;

use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{mpsc, watch};

use crate::notification::Notification;
use crate::recent::Recent;
use crate::subscriber::{Error, Subscriber};

/// How many ids are remembered for de-duplication.
const REMEMBERED: usize = 10_000;

/// How a connection ended.
pub enum Ended {
    /// Lost (the network, the server going away): connect again.
    Lost(String),
    /// Refused: connecting again cannot help.
    Refused(Error),
    /// The subscription was dropped.
    Dropped,
}

/// A subscription's state across its connections.
pub struct Link {
    pub base_url: String,
    pub token: String,
    pub http: reqwest::Client,
    /// The position of the last notification handed over: connections
    /// resume after it.
    pub after: Option<u64>,
    seen: Recent,
    acked: Recent,
    /// Acknowledgements not yet sent (for want of a connection).
    pub unsent: Vec<String>,
    out: mpsc::Sender<Result<Notification, Error>>,
    acks: mpsc::UnboundedReceiver<String>,
    connected: watch::Sender<bool>,
    /// The position of the last notification the application took.
    taken: watch::Receiver<Option<u64>>,
}

impl Link {
    pub fn new(
        subscriber: &Subscriber,
        out: mpsc::Sender<Result<Notification, Error>>,
        acks: mpsc::UnboundedReceiver<String>,
        connected: watch::Sender<bool>,
        taken: watch::Receiver<Option<u64>>,
    ) -> Self {
        Link {
            base_url: subscriber.base_url.clone(),
            token: subscriber.token.clone(),
            // A silent connection is a dead one: the server sends keep-alives
            // (SSE, WebSocket pings) and polls answer within a minute.
            http: reqwest::Client::builder()
                .read_timeout(Duration::from_secs(75))
                .build()
                .unwrap_or_default(),
            after: subscriber.resume.after,
            seen: Recent::new(REMEMBERED),
            acked: Recent::new(REMEMBERED),
            unsent: Vec::new(),
            out,
            acks,
            connected,
            taken,
        }
    }

    /// The URL of `path` with the token and the resume position; `scheme`
    /// is `http` or `ws` (`https`/`wss` follow the base URL's).
    pub fn url(&self, scheme: &str, path: &str) -> String {
        let base = match scheme {
            "ws" => self
                .base_url
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1),
            _ => self.base_url.clone(),
        };
        let mut url = format!("{base}{path}?token={}", self.token);
        if let Some(after) = self.after {
            url.push_str(&format!("&after={after}"));
        }
        url
    }

    pub fn set_connected(&self) {
        self.connected.send_replace(true);
    }

    /// Marks the connection down; returns whether it was up.
    pub fn disconnected(&self) -> bool {
        self.connected.send_replace(false)
    }

    /// Hands a received notification over, unless it came before. One that
    /// came before and was acknowledged is acknowledged again: the first
    /// acknowledgement was lost.
    pub async fn deliver(&mut self, notification: Notification) -> Result<(), Ended> {
        if !self.seen.insert(&notification.id) {
            if self.acked.contains(&notification.id) {
                self.unsent.push(notification.id);
            }
            return Ok(());
        }
        self.after = Some(
            self.after
                .map_or(notification.position, |a| a.max(notification.position)),
        );
        self.out
            .send(Ok(notification))
            .await
            .map_err(|_| Ended::Dropped)
    }

    /// Waits for the next acknowledgement from the application; returns
    /// every one waiting, with those not sent before.
    pub async fn acks(&mut self) -> Result<Vec<String>, Ended> {
        if self.unsent.is_empty() {
            let id = self.acks.recv().await.ok_or(Ended::Dropped)?;
            self.take_ack(id);
        }
        while let Ok(id) = self.acks.try_recv() {
            self.take_ack(id);
        }
        Ok(std::mem::take(&mut self.unsent))
    }

    /// Waits until the application has taken every notification handed
    /// over.
    pub async fn all_taken(&mut self) -> Result<(), Ended> {
        let after = self.after;
        self.taken
            .wait_for(|taken| *taken >= after)
            .await
            .map(|_| ())
            .map_err(|_| Ended::Dropped)
    }

    /// Drops the acknowledgements waiting, for a transport that has no use
    /// for them.
    pub fn forget_acks(&mut self) {
        while self.acks.try_recv().is_ok() {}
        self.unsent.clear();
    }

    fn take_ack(&mut self, id: String) {
        self.acked.insert(&id);
        self.unsent.push(id);
    }

    /// Ends the subscription with `error`.
    pub async fn fail(&self, error: Error) {
        let _ = self.out.send(Err(error)).await;
    }

    /// Sends acknowledgements by `POST /v1/ack`, in the background. One that
    /// fails is not lost: the notification comes again and is acknowledged
    /// again then.
    pub fn post_acks(&self, ids: Vec<String>) {
        let request = self
            .http
            .post(format!("{}/v1/ack", self.base_url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "ids": ids }));
        tokio::spawn(async move {
            if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
                tracing::debug!(error = %e, "an acknowledgement failed");
            }
        });
    }
}

/// How an HTTP answer to a connect request ends the connection, if it does.
pub async fn check(response: reqwest::Response) -> Result<reqwest::Response, Ended> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = response.text().await.unwrap_or_default();
    Err(classify(status, message))
}

/// 4xx but timeouts and throttling: the request itself is wrong.
pub fn classify(status: StatusCode, message: String) -> Ended {
    let retryable = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    match retryable {
        true => Ended::Lost(format!("{status}: {message}")),
        false => Ended::Refused(Error::Refused {
            status: status.as_u16(),
            message,
        }),
    }
}
