use std::time::Duration;

use redis::AsyncCommands;
use testenv::{redis_url, unique_name};

pub async fn connection() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    redis::Client::open(url.as_str())
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"))
}

#[tokio::test]
async fn a_value_round_trips_and_expires() {
    let mut redis = connection().await;
    let key = format!("{}:greeting", unique_name("smoke"));

    let () = redis
        .pset_ex(&key, "hello", 500)
        .await
        .expect("SET with PX");
    let value: Option<String> = redis.get(&key).await.expect("GET");
    assert_eq!(value.as_deref(), Some("hello"));
    let ttl: i64 = redis.pttl(&key).await.expect("PTTL");
    assert!(
        0 < ttl && ttl <= 500,
        "the key carries its expiry: {ttl} ms"
    );

    let expired = async {
        while redis.exists::<_, bool>(&key).await.expect("EXISTS") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), expired)
        .await
        .expect("the key is gone after its expiry");
}
