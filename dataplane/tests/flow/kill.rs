//! Each process killed with SIGKILL while notifications flow, then started
//! again: every id that got a 202 arrives, in per-recipient order.

use reqwest::StatusCode;

use crate::Service;

const RECIPIENTS: [&str; 3] = ["r0", "r1", "r2"];

/// Publishes rounds of one notification per recipient, killing `victim`
/// (by name) after the third round and starting it again after the sixth.
/// Returns each recipient's accepted ids, in publish order.
async fn publish_through_a_crash(service: &mut Service, victim: &str) -> Vec<Vec<String>> {
    let mut accepted = vec![Vec::new(); RECIPIENTS.len()];
    for round in 0..10 {
        if round == 3 {
            service.role_mut(victim).kill();
        }
        if round == 6 {
            service.role_mut(victim).start().await;
        }
        let batch: Vec<(&str, String)> = RECIPIENTS
            .iter()
            .map(|r| (*r, format!("{r}-{round}")))
            .collect();
        // While the receiver is down the publish fails: nothing was accepted.
        if let Ok(StatusCode::ACCEPTED) = service.publish(&batch).await {
            for (i, (_, id)) in batch.into_iter().enumerate() {
                accepted[i].push(id);
            }
        }
    }
    accepted
}

async fn every_accepted_id_arrives_in_order_after_killing(mut service: Service, victim: &str) {
    let accepted = publish_through_a_crash(&mut service, victim).await;
    for (recipient, ids) in RECIPIENTS.iter().zip(&accepted) {
        assert!(
            ids.len() >= 7,
            "{victim}: most rounds were accepted: {ids:?}"
        );
        service.wait_for_inbox(recipient, ids.len()).await;
        let received = service.receive_ws(recipient, ids.len()).await;
        assert_eq!(
            &received, ids,
            "{victim} killed: {recipient} gets every accepted id, in order, once"
        );
    }
    service.finish().await;
}

#[tokio::test]
async fn killing_the_receiver_loses_nothing_accepted() {
    every_accepted_id_arrives_in_order_after_killing(Service::distributed().await, "receiver")
        .await;
}

#[tokio::test]
async fn killing_the_director_loses_nothing_accepted() {
    every_accepted_id_arrives_in_order_after_killing(Service::distributed().await, "director")
        .await;
}

#[tokio::test]
async fn killing_the_distributor_loses_nothing_accepted() {
    every_accepted_id_arrives_in_order_after_killing(Service::distributed().await, "distributor")
        .await;
}

/// Two of each role: one director killed, the other takes its partitions
/// meanwhile. (A receiver or distributor killed beside another is a fault
/// scenario of its own, in `fault`.)
#[tokio::test]
async fn killing_one_of_two_directors_loses_nothing_accepted() {
    every_accepted_id_arrives_in_order_after_killing(Service::scaled().await, "director").await;
}

#[tokio::test]
async fn killing_standalone_loses_nothing_accepted() {
    every_accepted_id_arrives_in_order_after_killing(Service::standalone().await, "standalone")
        .await;
}
