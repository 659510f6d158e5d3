//! The director against the real Kafka and Postgres: notifications read from
//! the topic end in their recipients' inboxes, in order, and offsets are
//! committed only up to what is done.

mod binary;
mod exclusive;
mod routing;

use std::time::Duration;

use dataplane::admin::AdminArgs;
use dataplane::director::{DirectorArgs, RoutingArgs};
use dataplane::forward_secret::ForwardSecretArgs;
use dataplane::inbox::{Inbox, PostgresArgs, PostgresInbox};
use dataplane::log::{KafkaArgs, KafkaConfig, KafkaLog, Log};
use dataplane::notification::{Notification, now_ms};
use dataplane::presence::RedisArgs;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::value::RawValue;
use testenv::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PARTITIONS: i32 = 2;

/// A director running in this process on a topic and a database of its own.
pub struct TestDirector {
    pub topic: String,
    pub group: String,
    pub db: TestDatabase,
    pub inbox: PostgresInbox,
    pub log: KafkaLog,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestDirector {
    pub async fn start() -> TestDirector {
        let topic = testenv::kafka::create_topic("director", PARTITIONS).await;
        let db = TestDatabase::create("director").await;
        let pool = db.pool().await;
        let log = KafkaLog::new(&KafkaConfig {
            bootstrap_servers: testenv::kafka_bootstrap(),
            topic: topic.clone(),
            properties: vec![],
            produce_timeout: Duration::from_secs(3),
            partition_refresh: Duration::from_millis(200),
        })
        .expect("a producer");
        // As the receiver's /readyz does: ready once the partition count is read.
        testenv::wait_until(
            "the Kafka log is ready",
            Duration::from_secs(30),
            async || log.is_reachable().await,
        )
        .await;
        let mut director = TestDirector {
            group: testenv::unique_name("director"),
            topic,
            db,
            inbox: PostgresInbox::new(pool),
            log,
            stop: None,
            task: None,
        };
        director.run();
        director
    }

    /// Starts a director process-alike (the role's own `run`) in the group.
    pub fn run(&mut self) {
        let args = DirectorArgs {
            kafka_group: self.group.clone(),
            postgres: PostgresArgs {
                postgres_url: Some(self.db.url.clone()),
                postgres_shard_urls: Vec::new(),
                postgres_shards_before: None,
                postgres_store_as_before: false,
            },
            redis: RedisArgs {
                redis_url: Some(testenv::redis_url()),
                redis_cluster_urls: Vec::new(),
                redis_key_prefix: format!("{}:", self.group),
            },
            ack_timeout_secs: 2,
            routing: RoutingArgs {
                delivery_attempts: 2,
                retry_backoff_ms: 50,
                delivery_window: 8,
                max_held: 100,
                drain_timeout_secs: 5,
                inbox_retention_hours: 1,
            },
            kafka: KafkaArgs {
                kafka_bootstrap_servers: testenv::kafka_bootstrap(),
                kafka_topic: self.topic.clone(),
                kafka_property: vec![],
                kafka_produce_timeout_secs: 5,
                kafka_partition_refresh_ms: 200,
            },
            admin: AdminArgs {
                admin_addr: "127.0.0.1:0".parse().expect("an address"),
            },
            forward_secret: ForwardSecretArgs {
                forward_secret: Some("director-tests".into()),
                forward_secret_file: None,
            },
        };
        let (stop, stopped) = oneshot::channel();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(args.run(async move {
            let _ = stopped.await;
        })));
    }

    /// Asks the director to stop and waits until it has drained.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the director task")
                .expect("the director stops cleanly");
        }
    }

    pub async fn publish(&self, batch: &[Notification]) {
        self.log.append(batch).await.expect("Kafka takes the batch");
    }

    /// The ids in `recipient`'s inbox, in position order.
    pub async fn inbox_ids(&self, recipient: &str) -> Vec<String> {
        let pending = self
            .inbox
            .pending(recipient, None, 1000, now_ms())
            .await
            .expect("the inbox");
        let positions: Vec<u64> = pending.iter().map(|p| p.position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "positions grow: {positions:?}"
        );
        pending.into_iter().map(|p| p.notification.id).collect()
    }

    /// Waits until `recipient`'s inbox holds `count` notifications; returns their ids.
    pub async fn wait_for_inbox(&self, recipient: &str, count: usize) -> Vec<String> {
        let what = format!("{recipient}'s inbox holds {count}");
        testenv::wait_until(&what, Duration::from_secs(30), async || {
            self.inbox_ids(recipient).await.len() >= count
        })
        .await;
        self.inbox_ids(recipient).await
    }

    /// The group's committed offset and the end of each partition.
    pub async fn committed_and_end(&self) -> Vec<(i64, i64)> {
        let (topic, group) = (self.topic.clone(), self.group.clone());
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = testenv::kafka::client_config()
                .set("group.id", &group)
                .create()
                .expect("a consumer");
            let mut list = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                list.add_partition(&topic, p);
            }
            let committed = consumer
                .committed_offsets(list, Duration::from_secs(10))
                .expect("committed offsets");
            (0..PARTITIONS)
                .map(|p| {
                    let offset = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o,
                        _ => 0,
                    };
                    let (_, high) = consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))
                        .expect("watermarks");
                    (offset, high)
                })
                .collect()
        })
        .await
        .expect("the offsets task")
    }

    /// Waits until every partition is committed to its end.
    pub async fn wait_until_committed(&self) {
        testenv::wait_until(
            "every partition is committed to its end",
            Duration::from_secs(30),
            async || {
                self.committed_and_end()
                    .await
                    .iter()
                    .all(|(committed, end)| committed == end)
            },
        )
        .await;
    }
}

pub fn notification(recipient: &str, id: &str, expires_at_ms: Option<u64>) -> Notification {
    Notification {
        id: id.into(),
        recipient: recipient.into(),
        payload: RawValue::from_string(format!(r#"{{"id":"{id}"}}"#)).expect("JSON"),
        kind: None,
        published_at_ms: now_ms(),
        expires_at_ms,
    }
}
