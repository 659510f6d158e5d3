//! The forwarding stream between directors and distributors: a WebSocket
//! from a director to a distributor's internal port, carrying batches of
//! notifications one way and an outcome per notification the other.
//!
//! director → distributor: `{"items":[{"seq":1,"recipient":"u","envelope":{...}}]}`
//! distributor → director: `{"outcomes":[{"seq":1,"outcome":"delivered"}]}`

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::distributor::Envelope;

/// The path of the stream on a distributor's forward port.
pub const PATH: &str = "/internal/v1/forward";

/// Hands notifications to the distributors that hold their recipients'
/// connections: over the stream to another process, or in process in
/// standalone.
#[async_trait]
pub trait Forward: Send + Sync + 'static {
    /// Hands `envelope` to `distributor`'s connections of `recipient` and
    /// waits for the outcome.
    async fn forward(&self, distributor: &str, recipient: &str, envelope: Envelope) -> Outcome;
}

/// How a forwarded notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A client of the recipient acknowledged it.
    Delivered,
    /// The distributor holds no connection of the recipient.
    NotConnected,
    /// Sent to the recipient's connections, but not acknowledged in time;
    /// or the distributor could not be reached.
    TimedOut,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Item {
    /// Numbers the items of one stream, to match outcomes to them.
    pub seq: u64,
    pub recipient: String,
    pub envelope: Envelope,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    pub items: Vec<Item>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub seq: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reports {
    pub outcomes: Vec<Report>,
}
