//! SIGTERM drains each role of the distributed service: it stops taking
//! work, finishes or hands back what it holds, commits what is done, and
//! exits cleanly. Started again, everything accepted arrives, in order.
//! (Standalone's SIGTERM is in `standalone.rs`.)

use std::time::Duration;

use reqwest::StatusCode;

use crate::{Service, WsClient};

async fn publish(service: &Service, recipient: &str, ids: &[&str]) {
    let batch: Vec<(&str, String)> = ids.iter().map(|id| (recipient, id.to_string())).collect();
    assert_eq!(
        service.publish(&batch).await.expect("publish"),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn each_role_exits_cleanly_on_sigterm_and_nothing_accepted_is_lost() {
    let mut service = Service::distributed().await;

    // The distributor tells its clients it is going away, so that they
    // reconnect (to another distributor, where there are several).
    let mut client = WsClient::connect(&service, "tess").await;
    publish(&service, "tess", &["t1"]).await;
    let t1 = client.ids(1).await;
    client.ack(&t1).await;
    // Taken before the stop: a frame the distributor has not read when it
    // exits can make the kernel reset the connection before its close frame.
    service.wait_for_delivered(1).await;
    assert!(
        service.role_mut("distributor").stop(),
        "the distributor exits cleanly"
    );
    assert_eq!(
        client.closed(Duration::from_secs(10)).await,
        Some(1001),
        "its clients are closed with 1001, going away"
    );
    publish(&service, "tess", &["t2"]).await;
    service.role_mut("distributor").start().await;

    // The director and the receiver, each stopped and started while the
    // recipient is offline.
    for role in ["director", "receiver"] {
        publish(&service, "uma", &[&format!("{role}-before")]).await;
        assert!(service.role_mut(role).stop(), "the {role} exits cleanly");
        if role == "director" {
            publish(&service, "uma", &["director-while-away"]).await;
        }
        service.role_mut(role).start().await;
        publish(&service, "uma", &[&format!("{role}-after")]).await;
    }

    let expected = [
        "director-before",
        "director-while-away",
        "director-after",
        "receiver-before",
        "receiver-after",
    ];
    service.wait_for_inbox("uma", expected.len()).await;
    assert_eq!(service.receive_ws("uma", expected.len()).await, expected);
    service.wait_for_inbox("tess", 1).await;
    assert_eq!(service.receive_ws("tess", 1).await, ["t2"]);
    service.finish().await;
}
