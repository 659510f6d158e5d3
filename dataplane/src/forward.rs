//! What travels on a distributor's internal forward port. The forwarding
//! stream between directors and distributors: a WebSocket from a director,
//! carrying batches of messages one way and an outcome per message the
//! other. Messages for one distributor are handed to its connections in the
//! order they were sent. And acknowledgements that reached another
//! distributor than the connection waiting for them, passed on to it
//! ([`Relayed`], answered with a [`RelayAnswer`]).
//!
//! director → distributor:
//! `{"items":[{"seq":1,"recipient":"u","message":{"notification":{"envelope":{...},"follows":41,"stored_through":40,"wait_ms":10000}}}]}`
//! or, after a director stored notifications, `{"stored":{"through":42}}`,
//! or, after another distributor's client acknowledged one,
//! `{"acknowledged":{"id":"n1"}}` as the message; distributor → director:
//! `{"outcomes":[{"seq":1,"outcome":"delivered","left_behind":true}]}`
//! (`left_behind` only when true).

use futures::future::BoxFuture;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::distributor::Envelope;

/// The path of the stream on a distributor's forward port.
pub const PATH: &str = "/internal/v1/forward";

/// The path of relayed acknowledgements on a distributor's forward port.
pub const RELAY_PATH: &str = "/internal/v1/ack";

/// Hands messages to the distributors that hold their recipients'
/// connections: over the stream to another process, or in process in
/// standalone.
pub trait Forward: Send + Sync + 'static {
    /// Hands `message` to `distributor` for `recipient`'s connections, after
    /// whatever was sent to that distributor before; the future is its
    /// outcome.
    fn send(
        &self,
        distributor: &str,
        recipient: &str,
        message: Message,
    ) -> BoxFuture<'static, Answer>;
}

/// What a director sends about a recipient.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// A notification for the recipient's connections. It goes only to
    /// connections that had the notification it `follows` (the latest
    /// earlier one of the recipient not yet done; none when all are), after
    /// telling those that did not have `stored_through` (the last position
    /// the director stored for the recipient lately) to read their inbox;
    /// and waits `wait_ms` at most for an acknowledgement.
    Notification {
        envelope: Envelope,
        follows: Option<u64>,
        #[serde(default)]
        stored_through: Option<u64>,
        wait_ms: u64,
    },
    /// The recipient's notifications through position `through` that were
    /// not done were stored in the inbox: its connections read the inbox
    /// again before anything sent later. Delivered once handed over.
    Stored { through: u64 },
    /// A client of the recipient acknowledged the notification `id` on
    /// another distributor: it no longer waits here, and its connections
    /// here are not closed as silent for it. Delivered once handed over.
    Acknowledged { id: String },
}

/// How a forwarded message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A client of the recipient acknowledged it (a `stored` message: a
    /// connection was told).
    Delivered,
    /// The distributor holds no connection of the recipient that could take
    /// it.
    NotConnected,
    /// Handed to connections, but not acknowledged in time, or they closed;
    /// or the distributor could not be reached.
    TimedOut,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::NotConnected => "not_connected",
            Outcome::TimedOut => "timed_out",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Item {
    /// Numbers the items of one stream, to match outcomes to them.
    pub seq: u64,
    pub recipient: String,
    pub message: Message,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    pub items: Vec<Item>,
}

/// A distributor's answer to a forwarded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    /// A connection of the recipient could not take the notification, as it
    /// had not had the one it follows: it takes none until the director
    /// sends one that follows nothing (its window empty).
    pub left_behind: bool,
}

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Self {
        Answer {
            outcome,
            left_behind: false,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub seq: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left_behind: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reports {
    pub outcomes: Vec<Report>,
}

/// An acknowledgement passed on: by ids, or through a position.
#[derive(Debug, Serialize, Deserialize)]
pub struct Relayed {
    pub recipient: String,
    #[serde(default)]
    pub ids: Vec<String>,
    pub through: Option<u64>,
}

/// What the distributors asked knew of the ids.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RelayAnswer {
    /// Waiting there for an acknowledgement; now done.
    pub held: HashSet<String>,
    /// Not waiting there, but acknowledged there lately.
    pub remembered: HashSet<String>,
    /// The largest position sent to the recipient there.
    #[serde(default)]
    pub sent_through: Option<u64>,
    /// A cumulative acknowledgement covered notifications fed from the
    /// inbox there.
    #[serde(default)]
    pub inbox_fed: bool,
}
