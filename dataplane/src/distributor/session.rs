//! One client connection, from connect to close: registered in presence
//! (refreshed by the distributor's heartbeat) and with this distributor's live delivery
//! while it lives; it feeds the client its inbox in position order, then the
//! notifications forwarded live, reading the inbox again whenever a
//! director says it stored some.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::live::{Feed, Known, Subscription};
use super::relay;
use super::{Distributor, Envelope};
use crate::api_error::ApiError;
use crate::forward::Relayed;
use crate::inbox::{InboxError, Positioned};
use crate::metrics::TransportLabels;
use crate::notification::{new_id, now_ms};
use crate::presence::Connection;

/// Why a connection's feed ended.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the inbox is unreachable: {0}")]
    Inbox(#[from] InboxError),
    /// The client did not keep up: its queue filled.
    #[error("the connection's queue is full: the client is too slow")]
    SlowClient,
    /// The client left a notification unacknowledged for the
    /// acknowledgement timeout.
    #[error("no acknowledgement came in time: the connection is closed as silent")]
    Silent,
}

impl FeedError {
    /// The code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            FeedError::Inbox(_) => "unavailable",
            FeedError::SlowClient => "slow_client",
            FeedError::Silent => "ack_timeout",
        }
    }
}

pub struct Session {
    pub recipient: String,
    connection: Connection,
    transport: &'static str,
    span: tracing::Span,
    distributor: Arc<Distributor>,
    live: Subscription,
    /// How long what it was handed waits for an acknowledgement after it
    /// closes.
    linger: Duration,
    /// The position of the last notification fed to the client (or the
    /// client's resume point).
    after: Option<u64>,
    /// Read from the inbox, not yet fed.
    page: VecDeque<Positioned>,
    /// Reading the inbox; live notifications wait until it is done.
    replaying: bool,
    /// The position of the last notification fed to the client on this
    /// connection (unlike `after`, never the client's resume point).
    fed: Option<u64>,
}

impl Session {
    /// Registers a new connection of `recipient`, to be fed after position
    /// `after`; what is handed to it waits `linger` for its acknowledgement
    /// after it closes. It joins live delivery first and presence second, and reads
    /// its inbox only after both: a notification stored while it connects is
    /// then either found in the inbox or its director's `stored` message
    /// reaches the connection, which reads the inbox again; never stranded.
    /// Fails with 503 while presence is unreachable.
    pub async fn open(
        distributor: Arc<Distributor>,
        recipient: String,
        after: Option<u64>,
        transport: &'static str,
        linger: Duration,
    ) -> Result<Session, ApiError> {
        let connection = Connection {
            recipient: recipient.clone(),
            distributor: distributor.id.clone(),
            id: new_id(),
        };
        let live = distributor.live.subscribe(
            &recipient,
            &connection.id,
            distributor.connection_queue,
            linger,
            after,
        );
        let ttl = distributor.presence_ttl;
        distributor
            .presence
            .register(std::slice::from_ref(&connection), ttl)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot register a connection in presence");
                ApiError::unavailable("presence is unreachable; reconnect later", 5)
            })?;
        distributor.heartbeats.hold(connection.clone());
        let span =
            tracing::info_span!("connection", %recipient, transport, connection = %connection.id);
        distributor
            .metrics
            .connections
            .get_or_create(&TransportLabels { transport })
            .inc();
        Ok(Session {
            recipient,
            connection,
            transport,
            span,
            distributor,
            live,
            linger,
            after,
            page: VecDeque::new(),
            replaying: true,
            fed: None,
        })
    }

    /// The next notification for the client: the inbox first, in position
    /// order, then live ones it has not had from the inbox already. Waits for
    /// a live one; cancel-safe.
    pub async fn next(&mut self) -> Result<Envelope, FeedError> {
        loop {
            if let Some(stored) = self.next_stored().await? {
                return Ok(stored);
            }
            if let Some(live) = self.next_live().await? {
                return Ok(live);
            }
        }
    }

    /// Like [`Session::next`], but waits at most `wait` for a live one
    /// (reading the inbox is not limited). None when none came.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Envelope>, FeedError> {
        if let Some(stored) = self.next_stored().await? {
            return Ok(Some(stored));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.next_live()).await {
                Ok(Ok(Some(live))) => return Ok(Some(live)),
                Ok(Ok(None)) => {
                    if let Some(stored) = self.next_stored().await? {
                        return Ok(Some(stored));
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }

    /// The next notification from the inbox, reading a page when needed;
    /// None once the inbox is done.
    async fn next_stored(&mut self) -> Result<Option<Envelope>, FeedError> {
        loop {
            if let Some(stored) = self.page.pop_front() {
                self.after = Some(stored.position);
                // Expired since the page was read (reading, or a slow
                // client, may take a while): never fed.
                if stored.notification.is_expired() {
                    continue;
                }
                self.fed = self.after;
                tracing::debug!(id = %stored.notification.id, position = stored.position, "fed from the inbox");
                return Ok(Some(Envelope::from(&stored)));
            }
            if !self.replaying {
                return Ok(None);
            }
            let page = self
                .distributor
                .inbox
                .pending(
                    &self.recipient,
                    self.after,
                    self.distributor.page_size,
                    now_ms(),
                )
                .await?;
            self.distributor
                .metrics
                .inbox_reads
                .inc_by(page.len() as u64);
            match (page.first(), page.last()) {
                (Some(first), Some(last)) => self.live.fed(first.position, last.position),
                _ => self.replaying = false,
            }
            self.page.extend(page);
        }
    }

    /// The next live notification; None for one the client had already, or
    /// when the inbox is to be read again.
    async fn next_live(&mut self) -> Result<Option<Envelope>, FeedError> {
        let envelope = match self.live.receiver.recv().await {
            Some(Feed::Notification(envelope)) => envelope,
            Some(Feed::Stored) => {
                self.replaying = true;
                return Ok(None);
            }
            Some(Feed::Silent) => return Err(FeedError::Silent),
            None => return Err(FeedError::SlowClient),
        };
        if self.after.is_some_and(|after| envelope.position <= after) {
            // Already fed from the inbox (or fed live before, and now
            // forwarded again): its acknowledgement is what counts.
            return Ok(None);
        }
        self.after = Some(envelope.position);
        self.fed = self.after;
        tracing::debug!(id = %envelope.id, position = envelope.position, "fed live");
        Ok(Some(envelope))
    }

    /// The position of the last notification fed to the client on this
    /// connection.
    pub fn fed_through(&self) -> Option<u64> {
        self.fed
    }

    /// The client acknowledged `ids`: they leave the inbox, and live
    /// deliveries waiting for them are done.
    pub async fn acknowledge(&self, ids: &[String]) -> Result<Acknowledged, InboxError> {
        acknowledge(&self.distributor, &self.recipient, ids).await
    }

    /// The client acknowledged everything up to `position`, which this
    /// connection was fed.
    pub async fn acknowledge_through(&self, position: u64) -> Result<(), InboxError> {
        acknowledge_through(&self.distributor, &self.recipient, position, false, false).await?;
        Ok(())
    }

    /// Cancelled when the distributor stops.
    pub fn stop(&self) -> tokio_util::sync::CancellationToken {
        self.distributor.stop.clone()
    }

    /// The most notifications one answer to a poll carries.
    pub fn page_size(&self) -> usize {
        self.distributor.page_size as usize
    }

    /// The connection's span: recipient, transport and connection id, for
    /// what is logged while serving it.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }
}

/// What an acknowledgement found of its ids, each in one of the two.
#[derive(Debug, Default)]
pub struct Acknowledged {
    /// Acknowledged now: held for the recipient (waiting live, here or on
    /// another of its distributors, or in its inbox), or acknowledged by it
    /// lately.
    pub known: Vec<String>,
    /// Never sent to the recipient, as far as the service knows: held
    /// nowhere, and not acknowledged lately.
    pub unknown: Vec<String>,
}

/// Acknowledges `ids` for `recipient`: in live delivery here, then on the
/// recipient's other distributors, then in the inbox, each looking only for
/// what was not waiting live before it. A notification acknowledged while it
/// waited live was never stored, or its director stored it without waiting
/// for the outcome and removes the stored copy on this acknowledgement (see
/// the director's lane); so the common case, a client acknowledging on its
/// own connection, costs nothing but memory. An id acknowledged before may have been stored since
/// (a director's replay, while the recipient was away), so it is looked for
/// in the inbox too.
pub async fn acknowledge(
    distributor: &Distributor,
    recipient: &str,
    ids: &[String],
) -> Result<Acknowledged, InboxError> {
    let here = distributor.live.acknowledge(recipient, ids);
    let mut remembered = HashSet::new();
    let mut rest = Vec::new();
    for (id, known) in ids.iter().zip(here) {
        if known == Known::Acknowledged {
            remembered.insert(id.clone());
        }
        if known != Known::Held {
            rest.push(id.clone());
        }
    }
    if rest.is_empty() {
        return Ok(Acknowledged {
            known: ids.to_vec(),
            unknown: Vec::new(),
        });
    }
    let relayed = Relayed {
        recipient: recipient.to_string(),
        ids: rest.clone(),
        through: None,
    };
    let elsewhere = relay::relay(distributor, &relayed).await;
    remembered.extend(elsewhere.remembered);
    rest.retain(|id| !elsewhere.held.contains(id));
    let stored = match rest.is_empty() {
        true => Vec::new(),
        false => distributor.inbox.acknowledge(recipient, &rest).await?,
    };
    // So that a notification forwarded here again is done at once.
    distributor.live.remember(recipient, &stored);
    let unknown: Vec<String> = rest
        .into_iter()
        .filter(|id| !stored.contains(id) && !remembered.contains(id))
        .collect();
    Ok(Acknowledged {
        known: ids
            .iter()
            .filter(|id| !unknown.contains(id))
            .cloned()
            .collect(),
        unknown,
    })
}

/// Acknowledges everything of `recipient` up to `position` that was sent
/// to it: what waits live for it, here and, unless it waited here, on its
/// other distributors (each up to what it sent); then its inbox up to the
/// largest position they sent, when one of them fed it rows from the inbox
/// up to the position, or `whole_inbox` says to anyway. With
/// `refuse_beyond`, a position beyond what was sent leaves the inbox alone.
/// Returns the largest position known sent, if any.
pub async fn acknowledge_through(
    distributor: &Distributor,
    recipient: &str,
    position: u64,
    refuse_beyond: bool,
    whole_inbox: bool,
) -> Result<Option<u64>, InboxError> {
    let mut through = distributor.live.acknowledge_through(recipient, position);
    if !through.settled || through.inbox || whole_inbox {
        let relayed = Relayed {
            recipient: recipient.to_string(),
            ids: Vec::new(),
            through: Some(position),
        };
        let elsewhere = relay::relay(distributor, &relayed).await;
        through.sent = through.sent.max(elsewhere.sent_through);
        through.inbox |= elsewhere.inbox_fed;
    }
    let Some(sent) = through.sent else {
        return Ok(None);
    };
    if (refuse_beyond && position > sent) || !(through.inbox || whole_inbox) {
        return Ok(Some(sent));
    }
    let stored = distributor
        .inbox
        .acknowledge_through(recipient, position.min(sent))
        .await?;
    distributor.live.remember(recipient, &stored);
    Ok(Some(sent))
}

impl Drop for Session {
    fn drop(&mut self) {
        self.distributor.heartbeats.release(&self.connection.id);
        self.distributor
            .metrics
            .connections
            .get_or_create(&TransportLabels {
                transport: self.transport,
            })
            .dec();
        let (presence, connection) = (self.distributor.presence.clone(), self.connection.clone());
        let linger = self.linger;
        tokio::spawn(async move {
            // Listed while what it was handed waits for the next poll's
            // cursor, so that a cursor reaching another distributor is
            // passed on here.
            tokio::time::sleep(linger).await;
            // Should this fail, the entry expires with its TTL.
            if let Err(e) = presence.unregister(&connection).await {
                tracing::debug!(error = %e, "cannot unregister a closed connection");
            }
        });
    }
}
