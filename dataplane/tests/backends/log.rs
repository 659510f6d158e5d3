//! The standalone service's log on SQLite: appends come back in order, at
//! growing offsets; a commit is where the next reader starts, and what is
//! before it is gone; what is written and not done is its consumer lag.

use std::sync::Arc;
use std::time::Duration;

use dataplane::log::{Log, LogReader, SqliteLog};
use dataplane::metrics::PartitionLabels;
use dataplane::notification::Notification;
use dataplane::standalone::DataDir;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::value::RawValue;

fn notification(id: &str) -> Notification {
    Notification {
        id: id.into(),
        recipient: "u".into(),
        payload: RawValue::from_string(format!(r#"{{"id":"{id}"}}"#)).expect("JSON"),
        kind: None,
        published_at_ms: 1_000,
        expires_at_ms: None,
    }
}

/// The next `count` records' (offset, id).
async fn read(log: &SqliteLog, count: usize) -> Vec<(i64, String)> {
    let mut records = Vec::new();
    while records.len() < count {
        let record = tokio::time::timeout(Duration::from_secs(5), log.next())
            .await
            .expect("a record within 5s")
            .expect("a record");
        let notification: Notification =
            serde_json::from_slice(&record.payload).expect("a notification");
        assert_eq!(record.partition, 0, "one partition");
        records.push((record.offset, notification.id));
    }
    records
}

#[tokio::test]
async fn appends_come_back_in_order_and_a_commit_is_where_reading_resumes() {
    let path = std::env::temp_dir().join(testenv::unique_name("log"));
    let data_dir = DataDir::lock(&path).expect("a data directory");
    let lag = Family::<PartitionLabels, Gauge>::default();
    let lag_now = || lag.get_or_create(&PartitionLabels { partition: 0 }).get();
    let log = SqliteLog::open(data_dir.database().await.expect("the database"), &lag)
        .await
        .expect("the log");
    log.append(&[notification("a"), notification("b")])
        .await
        .expect("append");
    log.append(&[notification("c")]).await.expect("append");
    assert_eq!(lag_now(), 3, "written, none done");
    let records = read(&log, 3).await;
    let ids: Vec<&str> = records.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets grow: {records:?}"
    );

    // A reader waiting for more gets the next append.
    let log = Arc::new(log);
    let reader = log.clone();
    let waiting = tokio::spawn(async move { read(&reader, 1).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    log.append(&[notification("d")]).await.expect("append");
    assert_eq!(waiting.await.expect("the reader")[0].1, "d");

    // Done up to b: a new reader starts at c, and a and b are gone.
    let after_b = records[1].0 + 1;
    let done = dataplane::log::Done {
        partition: 0,
        offset: after_b,
        epoch: 0,
    };
    log.commit(&[done], true).await.expect("commit");
    assert_eq!(lag_now(), 2, "c and d are not done");
    drop(log);
    let lag = Family::<PartitionLabels, Gauge>::default();
    let reopened = SqliteLog::open(data_dir.database().await.expect("opened again"), &lag)
        .await
        .expect("the log again");
    let lag_now = || lag.get_or_create(&PartitionLabels { partition: 0 }).get();
    assert_eq!(lag_now(), 2, "known again on opening");
    let ids: Vec<String> = read(&reopened, 2)
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(ids, ["c", "d"], "resumes after the commit");
    let _ = std::fs::remove_dir_all(&path);
}
