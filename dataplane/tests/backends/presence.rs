use std::time::Duration;

use dataplane::presence::{Connection, Presence, RedisPresence};

/// Presence on one Redis, or on the Redis Cluster, under keys of its own.
async fn presence(cluster: bool) -> RedisPresence {
    let prefix = format!("{}:", testenv::unique_name("presence"));
    match cluster {
        false => RedisPresence::connect(&testenv::redis_url(), &prefix).await,
        true => RedisPresence::connect_cluster(&testenv::redis_cluster_urls(), &prefix).await,
    }
    .expect("Redis")
}

/// Runs the scenario `fn $name(RedisPresence)` on one Redis and on the
/// Redis Cluster, as the tests `$name::one` and `$name::cluster`.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn one() {
                super::$name(super::presence(false).await).await;
            }

            #[tokio::test]
            async fn cluster() {
                super::$name(super::presence(true).await).await;
            }
        }
    };
}

fn connection(recipient: &str, distributor: &str, id: &str) -> Connection {
    Connection {
        recipient: recipient.into(),
        distributor: distributor.into(),
        id: id.into(),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

on_both!(a_recipient_is_found_on_each_distributor_holding_one_of_its_connections);
async fn a_recipient_is_found_on_each_distributor_holding_one_of_its_connections(
    presence: RedisPresence,
) {
    let (tab, phone, other) = (
        connection("u", "d1", "c1"),
        connection("u", "d2", "c2"),
        connection("v", "d1", "c3"),
    );
    let new = presence
        .register(&[tab.clone(), phone.clone(), other], MINUTE)
        .await
        .expect("register");
    assert_eq!(new, [true, true, true], "each was not listed");
    presence
        .register(&[connection("u", "d1", "c4")], MINUTE)
        .await
        .expect("a second tab");
    let heartbeat = presence.register(std::slice::from_ref(&tab), MINUTE).await;
    assert_eq!(heartbeat.expect("a heartbeat"), [false], "it was listed");
    let mixed = presence
        .register(&[tab.clone(), connection("w", "d1", "c5")], MINUTE)
        .await;
    assert_eq!(
        mixed.expect("a heartbeat"),
        [false, true],
        "each is answered"
    );
    assert_eq!(presence.lookup("u").await.expect("lookup"), ["d1", "d2"]);
    assert_eq!(presence.lookup("v").await.expect("lookup"), ["d1"]);
    assert!(presence.lookup("nobody").await.expect("lookup").is_empty());

    presence.unregister(&phone).await.expect("unregister");
    assert_eq!(presence.lookup("u").await.expect("lookup"), ["d1"]);
}

on_both!(a_connection_not_refreshed_expires);
async fn a_connection_not_refreshed_expires(presence: RedisPresence) {
    let (kept, dropped) = (connection("u", "d1", "c1"), connection("u", "d2", "c2"));
    let ttl = Duration::from_millis(400);
    presence
        .register(&[kept.clone(), dropped], ttl)
        .await
        .expect("register");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        presence
            .register(std::slice::from_ref(&kept), ttl)
            .await
            .expect("heartbeat");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = presence.register(std::slice::from_ref(&kept), ttl).await;
    assert_eq!(late.expect("a late heartbeat"), [true], "it had expired");
    assert_eq!(
        presence.lookup("u").await.expect("lookup"),
        ["d1"],
        "only the refreshed one is left"
    );
}

on_both!(a_distributor_is_reachable_at_its_address_while_it_announces_itself);
async fn a_distributor_is_reachable_at_its_address_while_it_announces_itself(
    presence: RedisPresence,
) {
    presence
        .announce_distributor("d1", "127.0.0.1:7001", Duration::from_millis(300))
        .await
        .expect("announce");
    assert_eq!(
        presence
            .distributor_address("d1")
            .await
            .expect("address")
            .as_deref(),
        Some("127.0.0.1:7001")
    );
    assert_eq!(
        presence.distributor_address("d2").await.expect("address"),
        None
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        presence.distributor_address("d1").await.expect("address"),
        None,
        "gone after its TTL"
    );
    assert!(presence.is_reachable().await);
}

on_both!(many_recipients_register_at_once);
async fn many_recipients_register_at_once(presence: RedisPresence) {
    // Their keys are spread over every slot of a cluster.
    let connections: Vec<Connection> = (0..100)
        .map(|i| connection(&format!("r{i}"), "d1", &format!("c{i}")))
        .collect();
    let new = presence.register(&connections, MINUTE).await;
    assert_eq!(new.expect("register"), [true; 100]);
    for i in 0..100 {
        assert_eq!(
            presence.lookup(&format!("r{i}")).await.expect("lookup"),
            ["d1"]
        );
    }
}

on_both!(many_recipients_are_looked_up_at_once);
async fn many_recipients_are_looked_up_at_once(presence: RedisPresence) {
    // Their keys are spread over every slot of a cluster; one has no
    // connection, and one has two on different distributors.
    let mut connections: Vec<Connection> = (0..100)
        .map(|i| connection(&format!("r{i}"), "d1", &format!("c{i}")))
        .collect();
    connections.push(connection("r7", "d2", "c-other"));
    presence
        .register(&connections, MINUTE)
        .await
        .expect("register");
    let recipients: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
    let found = presence.lookup_many(&recipients).await.expect("lookup");
    assert_eq!(found.len(), 101);
    for (i, distributors) in found.iter().enumerate() {
        let expected: &[&str] = match i {
            7 => &["d1", "d2"],
            100 => &[],
            _ => &["d1"],
        };
        assert_eq!(distributors, expected, "r{i}");
    }
}
