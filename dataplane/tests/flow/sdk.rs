//! The Rust SDK against the service: each transport delivers in order and
//! acknowledges; a refused token ends the subscription; a lost connection is
//! made again by itself and resumes without duplicates.

use std::time::Duration;

use dataplane::notification::now_ms;
use notif_sdk::{Error, NewNotification, Subscription, Transport};

use crate::{Service, on_both};

const TRANSPORTS: [Transport; 3] = [Transport::WebSocket, Transport::Sse, Transport::LongPoll];

/// Publishes one notification per id to `recipient`, as one batch.
async fn publish(service: &Service, recipient: &str, ids: &[&str]) {
    let batch: Vec<NewNotification> = ids
        .iter()
        .map(|id| NewNotification::new(recipient, serde_json::json!({"n": id})).with_id(*id))
        .collect();
    let accepted = service.publisher().publish(&batch).await.expect("accepted");
    assert_eq!(accepted, ids);
}

/// The next `count` ids, each acknowledged as it comes.
async fn take(subscription: &mut Subscription, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(20), subscription.next())
            .await
            .unwrap_or_else(|_| panic!("got {ids:?}, not {count}, within 20s"))
            .expect("a notification");
        subscription.ack(&next.id);
        ids.push(next.id);
    }
    ids
}

on_both!(every_transport_delivers_in_order_and_acknowledges);

async fn every_transport_delivers_in_order_and_acknowledges(service: Service) {
    for transport in TRANSPORTS {
        let recipient = format!("sdk-{transport:?}").to_lowercase();
        publish(&service, &recipient, &["stored-1", "stored-2"]).await;
        service.wait_for_inbox(&recipient, 2).await;
        let mut subscription = service
            .subscriber(&recipient)
            .transport(transport)
            .subscribe();
        subscription.connected().await.expect("connected");
        publish(&service, &recipient, &["live-1", "live-2"]).await;
        assert_eq!(
            take(&mut subscription, 4).await,
            ["stored-1", "stored-2", "live-1", "live-2"],
            "{transport:?}: in order"
        );
        testenv::wait_until(
            &format!("{transport:?}: the acknowledgements empty the inbox"),
            Duration::from_secs(30),
            async || {
                let held = service.inbox.pending(&recipient, None, 10, now_ms()).await;
                held.expect("the inbox").is_empty()
            },
        )
        .await;
    }
    service.finish().await;
}

on_both!(a_refused_token_ends_the_subscription);

async fn a_refused_token_ends_the_subscription(service: Service) {
    for transport in TRANSPORTS {
        let mut subscription = notif_sdk::Subscriber::new(&service.connect_url(), "not-a-jwt")
            .transport(transport)
            .subscribe();
        let ended = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("an answer within 10s");
        match ended {
            Err(Error::Refused { status: 401, .. }) => {}
            other => panic!("{transport:?}: refused with 401, not {other:?}"),
        }
        assert!(matches!(subscription.next().await, Err(Error::Ended)));
    }
    service.finish().await;
}

on_both!(a_lost_connection_is_made_again_and_resumes_without_duplicates);

async fn a_lost_connection_is_made_again_and_resumes_without_duplicates(mut service: Service) {
    let mut subscriptions: Vec<Subscription> = TRANSPORTS
        .iter()
        .map(|t| {
            let recipient = format!("again-{t:?}").to_lowercase();
            service.subscriber(&recipient).transport(*t).subscribe()
        })
        .collect();
    for (transport, subscription) in TRANSPORTS.iter().zip(&mut subscriptions) {
        subscription.connected().await.expect("connected");
        let recipient = format!("again-{transport:?}").to_lowercase();
        publish(&service, &recipient, &["before-1", "before-2"]).await;
        assert_eq!(take(subscription, 2).await, ["before-1", "before-2"]);
    }

    let distributor = service.role_mut("distributor");
    distributor.kill();
    distributor.start().await;

    for (transport, subscription) in TRANSPORTS.iter().zip(&mut subscriptions) {
        let recipient = format!("again-{transport:?}").to_lowercase();
        publish(&service, &recipient, &["after-1", "after-2"]).await;
        assert_eq!(
            take(subscription, 2).await,
            ["after-1", "after-2"],
            "{transport:?}: the rest, once, after reconnecting by itself"
        );
    }
    service.finish().await;
}
