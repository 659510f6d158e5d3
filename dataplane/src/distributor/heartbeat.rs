//! Keeps the connections held here listed in presence. One heartbeat for
//! the whole distributor, a third of the presence TTL apart, lists them all
//! again in batches (one pipeline per batch on one Redis), instead of a
//! timer and a round trip per connection: with many idle connections, their
//! heartbeats are most of what Redis and the distributors do
//! (docs/scaling.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::live::Live;
use crate::presence::{Connection, Presence};

/// Connections listed again in one call to presence.
const BATCH: usize = 1000;

/// The connections held here, by id.
#[derive(Default)]
pub struct Heartbeats {
    held: Mutex<HashMap<String, Connection>>,
}

impl Heartbeats {
    /// Lists the connections held here again every third of `ttl`, until
    /// `stop`. A connection found missing was lost (Redis lost its data, or
    /// the heartbeat failed for a whole TTL): while it was, directors took
    /// its recipient for offline and stored its notifications without
    /// telling it, so `live` makes it read its inbox again, now that
    /// directors find it.
    pub fn start(
        presence: Arc<dyn Presence>,
        live: Arc<Live>,
        ttl: Duration,
        stop: CancellationToken,
    ) -> Arc<Heartbeats> {
        let heartbeats = Arc::new(Heartbeats::default());
        let beat = beat(heartbeats.clone(), presence, live, ttl);
        tokio::spawn(async move {
            tokio::select! {
                () = beat => {}
                () = stop.cancelled() => {}
            }
        });
        heartbeats
    }

    /// `connection`, registered, is held here from now on.
    pub fn hold(&self, connection: Connection) {
        self.locked().insert(connection.id.clone(), connection);
    }

    /// The connection `id` closed.
    pub fn release(&self, id: &str) {
        self.locked().remove(id);
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connection>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn beat(
    heartbeats: Arc<Heartbeats>,
    presence: Arc<dyn Presence>,
    live: Arc<Live>,
    ttl: Duration,
) {
    let mut period = tokio::time::interval(ttl / 3);
    period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once; a connection is registered as it opens.
    period.tick().await;
    loop {
        period.tick().await;
        let held: Vec<Connection> = heartbeats.locked().values().cloned().collect();
        for batch in held.chunks(BATCH) {
            match presence.register(batch, ttl).await {
                Ok(missing) => {
                    for (connection, _) in batch.iter().zip(missing).filter(|(_, m)| *m) {
                        tracing::warn!(
                            recipient = %connection.recipient,
                            connection = %connection.id,
                            "the connection was missing from presence; it reads its inbox again"
                        );
                        live.read_inbox_again(&connection.recipient, &connection.id);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, connections = batch.len(), "presence heartbeat failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributor::live::Feed;
    use crate::presence::MemoryPresence;

    fn connection(i: usize) -> Connection {
        Connection {
            recipient: format!("r{i}"),
            distributor: "d1".into(),
            id: format!("c{i}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn held_connections_are_listed_again_and_one_found_missing_reads_its_inbox_again() {
        let presence = Arc::new(MemoryPresence::default());
        let live = Arc::new(Live::default());
        let ttl = Duration::from_secs(3);
        let heartbeats = Heartbeats::start(
            presence.clone(),
            live.clone(),
            ttl,
            CancellationToken::new(),
        );
        // More than one batch of them, registered as they open.
        let connections: Vec<Connection> = (0..2_500).map(connection).collect();
        presence
            .register(&connections, ttl)
            .await
            .expect("registered");
        for c in &connections {
            heartbeats.hold(c.clone());
        }
        let mut lost = live.subscribe("r7", "c7", 4, Duration::ZERO, None);
        // One lost from presence while held; one closed.
        presence.unregister(&connections[7]).await.expect("lost");
        heartbeats.release("c8");
        presence.unregister(&connections[8]).await.expect("closed");

        tokio::time::sleep(ttl / 3 + Duration::from_millis(100)).await;

        let recipients: Vec<String> = (0..2_500).map(|i| format!("r{i}")).collect();
        let found = presence.lookup_many(&recipients).await.expect("looked up");
        for (i, distributors) in found.iter().enumerate() {
            let expected: &[&str] = if i == 8 { &[] } else { &["d1"] };
            assert_eq!(distributors, expected, "r{i}");
        }
        assert!(
            matches!(lost.receiver.try_recv(), Ok(Feed::Stored)),
            "the lost one reads its inbox again"
        );
    }
}
