//! Adding an inbox shard under traffic, step by step as docs/scaling.md
//! gives it, while the churn scenario's clients come and go: every accepted
//! id still arrives, in order. Beside them, a recipient that the new shard
//! takes stays offline throughout: what was stored for it before the move
//! is moved, and it receives everything in order when it connects.

use std::path::Path;
use std::time::Duration;

use dataplane::inbox::shard_of;
use notif_sdk::{NewNotification, Publisher, Subscriber};
use testenv::notifd::{Deployment, bare_command};
use testenv::{TestDatabase, wait_until};

use crate::churn::under_churn_while;
use crate::{API_KEY, NOTIFD, Service, token};

const ONE: &str = "NOTIF_POSTGRES_URL";
const SHARDS: &str = "NOTIF_POSTGRES_SHARD_URLS";
const BEFORE: &str = "NOTIF_POSTGRES_SHARDS_BEFORE";
const AS_BEFORE: &str = "NOTIF_POSTGRES_STORE_AS_BEFORE";

#[tokio::test]
async fn adding_an_inbox_shard_under_churn_loses_and_reorders_nothing() {
    let service = Service::distributed().await;
    let first = service
        .role("director")
        .env(ONE)
        .expect("one shard")
        .to_string();
    let added = TestDatabase::create("notifd-shard").await;
    let shards = format!("{first},{}", added.url);
    let offline = (0..)
        .map(|i| format!("shard-offline-{i}"))
        .find(|r| shard_of(r, 2) == 1)
        .expect("a recipient that moves");
    let first_shard = service.inbox.clone();
    under_churn_while(service, async |deployment: &mut Deployment| {
        let publisher = Publisher::new(&url(deployment, "receiver"), API_KEY);
        let pause = || tokio::time::sleep(Duration::from_millis(1200));
        publish(&publisher, &offline, 0..20).await;
        let stored = async || {
            let rows = first_shard.pending(&offline, None, 100, 0).await;
            rows.is_ok_and(|rows| rows.len() == 20)
        };
        wait_until(
            "the first 20 are stored on the first shard",
            Duration::from_secs(20),
            stored,
        )
        .await;
        // 1. The schema on the new shard.
        notifd_inbox(["migrate"], &shards);
        // 2. Every process on both shards, the second being added: moved
        // recipients are read from both places, and new rows still stored
        // as before. In any order: directors first, here.
        for role in ["director", "distributor"] {
            let settings = [
                (ONE, None),
                (SHARDS, Some(shards.clone())),
                (BEFORE, Some("1".into())),
                (AS_BEFORE, Some("true".into())),
            ];
            restart(deployment, role, settings).await;
            pause().await;
        }
        // 3. New rows on the new shard, in any order too.
        for role in ["director", "distributor"] {
            restart(deployment, role, [(AS_BEFORE, None)]).await;
            pause().await;
        }
        publish(&publisher, &offline, 20..40).await;
        // 4. The rows of moved recipients to their new shard.
        let printed = notifd_inbox(["move", "--postgres-shards-before", "1"], &shards);
        let moved: u64 = printed
            .strip_prefix("moved ")
            .and_then(|rest| rest.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("notifd inbox move says what it moved: {printed}"));
        assert!(
            moved >= 20,
            "the offline recipient's first 20 moved: {printed}"
        );
        // 5. The shard added.
        for role in ["distributor", "director"] {
            restart(deployment, role, [(BEFORE, None)]).await;
        }
        // The offline recipient connects, and gets all 40 in order.
        let mut subscription =
            Subscriber::new(&url(deployment, "distributor"), token(&offline)).subscribe();
        for expected in 0..40 {
            let next = tokio::time::timeout(Duration::from_secs(20), subscription.next()).await;
            let next = next
                .expect("within 20 s")
                .expect("the subscription goes on");
            assert_eq!(next.id, format!("{offline}-{expected}"), "in order");
            subscription.ack(&next.id);
        }
    })
    .await;
    added.drop_database().await;
}

fn url(deployment: &Deployment, role: &str) -> String {
    format!("http://127.0.0.1:{}", deployment.role(role).http)
}

/// Publishes `recipient`'s notifications `sequence`, ids `<recipient>-<n>`.
async fn publish(publisher: &Publisher, recipient: &str, sequence: std::ops::Range<u32>) {
    let batch: Vec<NewNotification> = sequence
        .map(|n| {
            NewNotification::new(recipient, serde_json::json!({"n": n}))
                .with_id(format!("{recipient}-{n}"))
        })
        .collect();
    publisher.publish(&batch).await.expect("accepted");
}

/// Runs `notifd inbox <args>` on `shards`; returns what it printed.
fn notifd_inbox<const N: usize>(args: [&str; N], shards: &str) -> String {
    let output = bare_command(Path::new(NOTIFD), "inbox")
        .args(args)
        .env(SHARDS, shards)
        .output()
        .expect("notifd inbox runs");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "notifd inbox {args:?}: {printed} {output:?}"
    );
    println!("notifd inbox {args:?}: {printed}");
    printed
}

/// Stops `role` gracefully and starts it again with `settings` changed.
async fn restart<const N: usize>(
    deployment: &mut Deployment,
    role: &str,
    settings: [(&'static str, Option<String>); N],
) {
    let process = deployment.role_mut(role);
    assert!(process.stop(), "{role} stops cleanly");
    for (key, value) in settings {
        process.set_env(key, value);
    }
    process.start().await;
}
