//! A backing server away while notifications flow: nothing accepted is lost.

use std::time::Duration;

use reqwest::StatusCode;
use testenv::control::{self, Server};

use crate::Service;

/// Redis (presence) stopped: publishing goes on, delivery pauses (the
/// director cannot tell who is connected and takes no guess); when Redis is
/// back, everything accepted arrives, in order.
#[tokio::test]
async fn while_redis_is_stopped_delivery_waits_and_nothing_is_lost() {
    let service = Service::distributed().await;
    control::stop(Server::Redis).await;
    let batch: Vec<(&str, String)> = (0..5).map(|i| ("frank", format!("f{i}"))).collect();
    assert_eq!(
        service.publish(&batch).await.expect("publish"),
        StatusCode::ACCEPTED,
        "the receiver needs no Redis"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = service
        .inbox
        .pending("frank", None, 10, dataplane::notification::now_ms())
        .await
        .expect("inbox");
    assert!(
        held.is_empty(),
        "without presence the director routes nothing: {held:?}"
    );

    control::start(Server::Redis).await;
    service.wait_for_inbox("frank", 5).await;
    assert_eq!(
        service.receive_ws("frank", 5).await,
        ["f0", "f1", "f2", "f3", "f4"]
    );
    service.finish().await;
}
