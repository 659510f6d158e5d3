//! Presence in process, for the standalone service: the same expiry rules
//! as on Redis, in a map.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Connection, Presence, PresenceError};

#[derive(Default)]
pub struct MemoryPresence {
    /// Each recipient's connections, with when they expire.
    connections: Mutex<HashMap<String, HashMap<Connection, Instant>>>,
    /// Distributors' addresses, with when they expire.
    distributors: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryPresence {
    /// Forgets every entry, as Redis does when it loses its data (a flush,
    /// a failover to an empty replica): until the distributors' heartbeats
    /// list them again, nobody is connected.
    pub fn forget(&self) {
        locked(&self.connections).clear();
        locked(&self.distributors).clear();
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn register(
        &self,
        connections: &[Connection],
        ttl: Duration,
    ) -> Result<Vec<bool>, PresenceError> {
        let now = Instant::now();
        let mut map = locked(&self.connections);
        let unlisted = connections
            .iter()
            .map(|connection| {
                let live = map.entry(connection.recipient.clone()).or_default();
                live.retain(|_, expires| *expires > now);
                live.insert(connection.clone(), now + ttl).is_none()
            })
            .collect();
        Ok(unlisted)
    }

    async fn unregister(&self, connection: &Connection) -> Result<(), PresenceError> {
        let mut map = locked(&self.connections);
        if let Some(live) = map.get_mut(&connection.recipient) {
            live.remove(connection);
            if live.is_empty() {
                map.remove(&connection.recipient);
            }
        }
        Ok(())
    }

    async fn lookup(&self, recipient: &str) -> Result<Vec<String>, PresenceError> {
        let now = Instant::now();
        let map = locked(&self.connections);
        let distributors: BTreeSet<&String> = map
            .get(recipient)
            .into_iter()
            .flatten()
            .filter(|(_, expires)| **expires > now)
            .map(|(connection, _)| &connection.distributor)
            .collect();
        Ok(distributors.into_iter().cloned().collect())
    }

    async fn announce_distributor(
        &self,
        id: &str,
        address: &str,
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        let expires = Instant::now() + ttl;
        locked(&self.distributors).insert(id.to_string(), (address.to_string(), expires));
        Ok(())
    }

    async fn distributor_address(&self, id: &str) -> Result<Option<String>, PresenceError> {
        let now = Instant::now();
        Ok(locked(&self.distributors)
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(address, _)| address.clone()))
    }

    async fn is_reachable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(recipient: &str, distributor: &str, id: &str) -> Connection {
        Connection {
            recipient: recipient.into(),
            distributor: distributor.into(),
            id: id.into(),
        }
    }

    #[tokio::test]
    async fn connections_are_found_until_unregistered_or_expired() {
        let presence = MemoryPresence::default();
        let ttl = Duration::from_secs(60);
        let a = connection("alice", "d1", "c1");
        let b = connection("alice", "d2", "c2");
        let new = presence.register(&[a.clone(), b.clone()], ttl).await;
        assert_eq!(new.unwrap(), [true, true]);
        assert_eq!(
            presence
                .register(std::slice::from_ref(&a), ttl)
                .await
                .unwrap(),
            [false]
        );
        assert_eq!(presence.lookup("alice").await.unwrap(), ["d1", "d2"]);
        assert!(presence.lookup("bob").await.unwrap().is_empty());

        presence.unregister(&a).await.unwrap();
        assert_eq!(presence.lookup("alice").await.unwrap(), ["d2"]);

        presence.register(&[b], Duration::ZERO).await.unwrap();
        assert!(
            presence.lookup("alice").await.unwrap().is_empty(),
            "an expired connection is not found"
        );
    }
}
