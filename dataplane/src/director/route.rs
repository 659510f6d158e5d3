//! What the director does with one notification.
//!
//! Forwarding to connected clients (the presence lookup and the stream to the
//! distributors) is not built yet: for now every notification that has not
//! expired is stored in its recipient's inbox, which is where a connecting
//! client reads it from.

use std::sync::Arc;

use crate::inbox::{Inbox, Positioned};
use crate::notification::now_ms;
use crate::retry::{self, Backoff};

/// How a notification was done with; the director may commit past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// In its recipient's inbox.
    Stored,
    /// Past its ttl: dropped, never delivered.
    Expired,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Expired => "expired",
        }
    }
}

pub struct Router {
    pub inbox: Arc<dyn Inbox>,
    pub backoff: Backoff,
}

impl Router {
    /// Routes one notification to the end: this returns only once it is done,
    /// retrying while the inbox is unreachable.
    pub async fn route(&self, item: &Positioned) -> Outcome {
        if item
            .notification
            .expires_at_ms
            .is_some_and(|expiry| expiry <= now_ms())
        {
            return Outcome::Expired;
        }
        retry::until_ok("inbox store", self.backoff, || {
            self.inbox.store(std::slice::from_ref(item))
        })
        .await;
        Outcome::Stored
    }
}
