use std::time::Duration;

use reqwest::StatusCode;

use crate::{Service, on_both};

on_both!(
    scaled,
    an_offline_recipients_notifications_arrive_on_connect_in_order_until_acknowledged
);

async fn an_offline_recipients_notifications_arrive_on_connect_in_order_until_acknowledged(
    service: Service,
) {
    let batch: Vec<(&str, String)> = (0..6)
        .flat_map(|i| [("alice", format!("a{i}")), ("bob", format!("b{i}"))])
        .collect();
    assert_eq!(
        service.publish(&batch).await.expect("publish"),
        StatusCode::ACCEPTED
    );
    service.wait_for_inbox("alice", 6).await;
    service.wait_for_inbox("bob", 6).await;

    let received = service.receive_ws("alice", 6).await;
    assert_eq!(received, ["a0", "a1", "a2", "a3", "a4", "a5"]);
    service.acknowledge("alice", &received[..4]).await;
    assert_eq!(
        service.receive_ws("alice", 2).await,
        ["a4", "a5"],
        "the unacknowledged come again"
    );
    assert_eq!(
        service.receive_ws("bob", 6).await,
        ["b0", "b1", "b2", "b3", "b4", "b5"]
    );

    if service.is_standalone() {
        return service.finish().await;
    }
    // Everything read: the lag of each partition written to is 0.
    let caught_up = async || {
        let metrics = service.metrics("director").await;
        let lags: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("notif_consumer_lag{"))
            .collect();
        !lags.is_empty() && lags.iter().all(|l| l.ends_with(" 0"))
    };
    testenv::wait_until(
        "the director reports its consumer lag",
        Duration::from_secs(20),
        caught_up,
    )
    .await;
    service.finish().await;
}
