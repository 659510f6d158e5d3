use std::time::Duration;

use dataplane::presence::{Connection, Presence, RedisPresence};

async fn presence() -> RedisPresence {
    let prefix = format!("{}:", testenv::unique_name("presence"));
    RedisPresence::connect(&testenv::redis_url(), &prefix)
        .await
        .expect("Redis")
}

fn connection(recipient: &str, distributor: &str, id: &str) -> Connection {
    Connection {
        recipient: recipient.into(),
        distributor: distributor.into(),
        id: id.into(),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_recipient_is_found_on_each_distributor_holding_one_of_its_connections() {
    let presence = presence().await;
    let (tab, phone, other) = (
        connection("u", "d1", "c1"),
        connection("u", "d2", "c2"),
        connection("v", "d1", "c3"),
    );
    let new = presence
        .register(&[tab.clone(), phone.clone(), other], MINUTE)
        .await
        .expect("register");
    assert_eq!(new, 3, "each was not listed");
    presence
        .register(&[connection("u", "d1", "c4")], MINUTE)
        .await
        .expect("a second tab");
    let heartbeat = presence.register(std::slice::from_ref(&tab), MINUTE).await;
    assert_eq!(heartbeat.expect("a heartbeat"), 0, "it was listed");
    assert_eq!(presence.lookup("u").await.expect("lookup"), ["d1", "d2"]);
    assert_eq!(presence.lookup("v").await.expect("lookup"), ["d1"]);
    assert!(presence.lookup("nobody").await.expect("lookup").is_empty());

    presence.unregister(&phone).await.expect("unregister");
    assert_eq!(presence.lookup("u").await.expect("lookup"), ["d1"]);
}

#[tokio::test]
async fn a_connection_not_refreshed_expires() {
    let presence = presence().await;
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
    assert_eq!(late.expect("a late heartbeat"), 1, "it had expired");
    assert_eq!(
        presence.lookup("u").await.expect("lookup"),
        ["d1"],
        "only the refreshed one is left"
    );
}

#[tokio::test]
async fn a_distributor_is_reachable_at_its_address_while_it_announces_itself() {
    let presence = presence().await;
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
