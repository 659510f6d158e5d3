//! The three transports, over one [`Link`]: what a connection hands
//! notifications to and takes acknowledgements from.

pub mod poll;
pub mod sse;
pub mod ws;

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{mpsc, watch};

use crate::notification::Notification;
use crate::recent::Recent;
use crate::subscriber::{Error, Subscriber};

/// How many ids are remembered for de-duplication.
const REMEMBERED: usize = 10_000;

/// A connection that hears nothing for this long is a dead one, even when
/// nothing closed it (a hung server, a lost peer): the server sends
/// keep-alives (SSE comments, WebSocket pings) every 15 s, and polls are
/// answered within a minute.
pub const SILENCE: Duration = Duration::from_secs(75);

/// Acknowledgements to send: everything through a position, and ids.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Acks {
    pub through: Option<u64>,
    pub ids: Vec<String>,
}

impl Acks {
    fn is_empty(&self) -> bool {
        self.through.is_none() && self.ids.is_empty()
    }

    /// Adds `other`'s, as one acknowledgement.
    pub fn merge(&mut self, other: Acks) {
        self.through = self.through.max(other.through);
        self.ids.extend(other.ids);
    }

    /// The protocol's acknowledgement: `through` and `ids`, each when there
    /// is one.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut json = serde_json::Map::new();
        if let Some(through) = self.through {
            json.insert("through".into(), through.into());
        }
        if !self.ids.is_empty() {
            json.insert("ids".into(), self.ids.clone().into());
        }
        json
    }
}

/// How a connection ended.
pub enum Ended {
    /// Lost (the network, the server going away): connect again.
    Lost(String),
    /// Refused: connecting again cannot help.
    Refused(Error),
    /// The subscription was dropped.
    Dropped,
}

/// The HTTP client of a subscription: a read that hears nothing for
/// [`SILENCE`] ends its request.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .read_timeout(SILENCE)
        .build()
        .unwrap_or_default()
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
    /// Notifications handed over and not yet acknowledged in a cumulative
    /// acknowledgement, in order; whether the application acknowledged each.
    handed: VecDeque<(String, u64, bool)>,
    /// Acknowledgements not yet sent (for want of a connection).
    pub unsent: Acks,
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
            http: http_client(),
            after: subscriber.resume.after,
            seen: Recent::new(REMEMBERED),
            acked: Recent::new(REMEMBERED),
            handed: VecDeque::new(),
            unsent: Acks::default(),
            out,
            acks,
            connected,
            taken,
        }
    }

    /// Drops the connections kept for reuse: the next requests open new
    /// ones.
    pub fn renew_http(&mut self) {
        self.http = http_client();
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
                self.unsent.ids.push(notification.id);
            }
            return Ok(());
        }
        self.after = Some(
            self.after
                .map_or(notification.position, |a| a.max(notification.position)),
        );
        // Past that many unacknowledged, later ones are acknowledged by id.
        if self.handed.len() < REMEMBERED {
            self.handed
                .push_back((notification.id.clone(), notification.position, false));
        }
        self.out
            .send(Ok(notification))
            .await
            .map_err(|_| Ended::Dropped)
    }

    /// Waits for the next acknowledgement from the application; returns
    /// every one waiting, with those not sent before: cumulatively through
    /// the last of those handed over in a row that are all acknowledged, by
    /// id for the others.
    pub async fn acks(&mut self) -> Result<Acks, Ended> {
        if self.unsent.is_empty() {
            let id = self.acks.recv().await.ok_or(Ended::Dropped)?;
            self.take_ack(id);
        }
        while let Ok(id) = self.acks.try_recv() {
            self.take_ack(id);
        }
        while let Some((_, position, true)) = self.handed.front() {
            self.unsent.through = self.unsent.through.max(Some(*position));
            self.handed.pop_front();
        }
        let acked_out_of_order = self.handed.iter().filter(|(_, _, acked)| *acked);
        let ids: Vec<String> = acked_out_of_order.map(|(id, _, _)| id.clone()).collect();
        self.handed.retain(|(_, _, acked)| !acked);
        self.unsent.ids.extend(ids);
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
        self.unsent = Acks::default();
        self.handed.clear();
    }

    fn take_ack(&mut self, id: String) {
        self.acked.insert(&id);
        match self.handed.iter_mut().find(|(handed, _, _)| *handed == id) {
            Some(handed) => handed.2 = true,
            None => self.unsent.ids.push(id),
        }
    }

    /// Ends the subscription with `error`.
    pub async fn fail(&self, error: Error) {
        let _ = self.out.send(Err(error)).await;
    }

    /// Sends acknowledgements by `POST /v1/ack`, in the background. One that
    /// fails is not lost: the notification comes again and is acknowledged
    /// again then.
    pub fn post_acks(&self, acks: Acks) -> tokio::task::JoinHandle<()> {
        let request = self
            .http
            .post(format!("{}/v1/ack", self.base_url))
            .bearer_auth(&self.token)
            .json(&acks.to_json());
        tokio::spawn(async move {
            if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
                tracing::debug!(error = %e, "an acknowledgement failed");
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(id: &str, position: u64) -> Notification {
        Notification {
            id: id.into(),
            position,
            kind: None,
            payload: serde_json::value::RawValue::from_string("{}".into()).expect("JSON"),
            published_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn acknowledgements_in_a_row_go_as_one_cumulative_ack_and_the_others_by_id() {
        let (out, _received) = mpsc::channel(16);
        let (ack, acks) = mpsc::unbounded_channel();
        let (connected, _) = watch::channel(false);
        let (_taken, taken) = watch::channel(None);
        let subscriber = Subscriber::new("http://127.0.0.1:1", "token");
        let mut link = Link::new(&subscriber, out, acks, connected, taken);
        for (id, position) in [("a", 10), ("b", 20), ("c", 30), ("d", 40)] {
            assert!(link.deliver(notification(id, position)).await.is_ok());
        }
        for id in ["b", "a", "d"] {
            ack.send(id.to_string()).expect("sent");
        }
        let first = link.acks().await.ok().expect("acks");
        assert_eq!(
            first,
            Acks {
                through: Some(20),
                ids: vec!["d".into()]
            },
            "c is not acknowledged: d goes by id"
        );
        ack.send("c".to_string()).expect("sent");
        let second = link.acks().await.ok().expect("acks");
        assert_eq!(
            second,
            Acks {
                through: Some(30),
                ids: vec![]
            }
        );
        // A duplicate of an acknowledged one is acknowledged again, by id.
        assert!(link.deliver(notification("a", 10)).await.is_ok());
        ack.send("x".to_string()).expect("sent");
        let third = link.acks().await.ok().expect("acks");
        assert_eq!(third.ids, ["a", "x"]);
    }
}
