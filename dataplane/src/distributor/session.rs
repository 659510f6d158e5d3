//! One client connection, from connect to close: registered in presence
//! (refreshed by a heartbeat) while it lives, and reading its recipient's
//! inbox in position order.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::Distributor;
use crate::api_error::ApiError;
use crate::inbox::{InboxError, Positioned};
use crate::metrics::TransportLabels;
use crate::notification::{new_id, now_ms};
use crate::presence::Connection;

pub struct Session {
    pub recipient: String,
    connection: Connection,
    transport: &'static str,
    distributor: Arc<Distributor>,
    heartbeat: JoinHandle<()>,
}

impl Session {
    /// Registers a new connection of `recipient`. Fails with 503 while
    /// presence is unreachable: a connection the director cannot find would
    /// wait for its notifications in vain.
    pub async fn open(
        distributor: Arc<Distributor>,
        recipient: String,
        transport: &'static str,
    ) -> Result<Session, ApiError> {
        let connection = Connection {
            recipient: recipient.clone(),
            distributor: distributor.id.clone(),
            id: new_id(),
        };
        let ttl = distributor.presence_ttl;
        distributor
            .presence
            .register(std::slice::from_ref(&connection), ttl)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot register a connection in presence");
                ApiError::unavailable("presence is unreachable; reconnect later", 5)
            })?;
        let heartbeat = {
            let (presence, connection) = (distributor.presence.clone(), connection.clone());
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(ttl / 3);
                beat.tick().await;
                loop {
                    beat.tick().await;
                    if let Err(e) = presence
                        .register(std::slice::from_ref(&connection), ttl)
                        .await
                    {
                        tracing::warn!(error = %e, "presence heartbeat failed");
                    }
                }
            })
        };
        distributor
            .metrics
            .connections
            .get_or_create(&TransportLabels { transport })
            .inc();
        Ok(Session {
            recipient,
            connection,
            transport,
            distributor,
            heartbeat,
        })
    }

    /// The next page of the inbox after position `after`.
    pub async fn inbox_after(&self, after: Option<u64>) -> Result<Vec<Positioned>, InboxError> {
        let page = self
            .distributor
            .inbox
            .pending(&self.recipient, after, self.distributor.page_size, now_ms())
            .await?;
        self.distributor
            .metrics
            .inbox_reads
            .inc_by(page.len() as u64);
        Ok(page)
    }

    /// Cancelled when the distributor stops.
    pub fn stop(&self) -> tokio_util::sync::CancellationToken {
        self.distributor.stop.clone()
    }

    /// Removes acknowledged notifications from the inbox; returns those removed.
    pub async fn acknowledge(&self, ids: &[String]) -> Result<Vec<String>, InboxError> {
        self.distributor
            .inbox
            .acknowledge(&self.recipient, ids)
            .await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.heartbeat.abort();
        self.distributor
            .metrics
            .connections
            .get_or_create(&TransportLabels {
                transport: self.transport,
            })
            .dec();
        let (presence, connection) = (self.distributor.presence.clone(), self.connection.clone());
        tokio::spawn(async move {
            // Should this fail, the entry expires with its TTL.
            if let Err(e) = presence.unregister(&connection).await {
                tracing::debug!(error = %e, "cannot unregister a closed connection");
            }
        });
    }
}
