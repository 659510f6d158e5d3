//! The service as processes, deployed both ways: the three roles
//! (`notifd receiver`, `director`, `distributor`) on the real Kafka,
//! Postgres and Redis, and `notifd standalone` on its data directory. The
//! same scenarios run against both (`on_both!`): a notification published
//! over HTTP reaches its recipient's client, in order, and survives any
//! process being killed.

mod churn;
mod drain;
mod exclusive;
mod fault;
mod flags;
mod growth;
mod in_process;
mod kill;
mod live;
mod load;
mod offline;
mod openapi;
mod relay;
mod sdk;
mod shards;
mod standalone;
mod typescript;
mod window;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dataplane::auth::api_keys::ApiKeys;
use dataplane::auth::jwt::{Claims, sign_with_secret};
use dataplane::inbox::{Inbox, Layout, PostgresInbox, ShardedInbox, SqliteInbox};
use dataplane::notification::now_ms;
use reqwest::StatusCode;
use testenv::notifd::{Deployment, Env, Process, Storage};

/// Runs the scenario `fn $name(Service)` against each deployment, as the
/// tests `$name::distributed` and `$name::standalone`; with `scaled` first,
/// also against two instances of each role (`$name::scaled`).
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn distributed() {
                super::$name($crate::Service::distributed().await).await;
            }

            #[tokio::test]
            async fn standalone() {
                super::$name($crate::Service::standalone().await).await;
            }
        }
    };
    (scaled, $name:ident) => {
        mod $name {
            #[tokio::test]
            async fn distributed() {
                super::$name($crate::Service::distributed().await).await;
            }

            #[tokio::test]
            async fn scaled() {
                super::$name($crate::Service::scaled().await).await;
            }

            #[tokio::test]
            async fn standalone() {
                super::$name($crate::Service::standalone().await).await;
            }
        }
    };
}

const NOTIFD: &str = env!("CARGO_BIN_EXE_notifd");
pub const API_KEY: &str = "flow-publisher-key";
pub const JWT_SECRET: &str = "flow-jwt-secret";
/// The delivery window the tests' deployments use.
pub const WINDOW: usize = 8;

/// The whole message path, deployed one way or the other, and its inbox.
pub struct Service {
    pub deployment: Deployment,
    pub inbox: Arc<dyn Inbox>,
    pub http: reqwest::Client,
    /// Turns through the instances of a role, where there are several.
    turn: AtomicUsize,
}

/// The credentials the tests use, and short timings.
fn settings() -> Env {
    vec![
        ("NOTIF_API_KEY_HASHES", ApiKeys::hash(API_KEY)),
        ("NOTIF_JWT_SECRET", JWT_SECRET.to_string()),
        ("NOTIF_ACK_TIMEOUT_SECS", "2".to_string()),
        ("NOTIF_RETRY_BACKOFF_MS", "50".to_string()),
        // A small window, so that every scenario fills it now and then.
        ("NOTIF_DELIVERY_WINDOW", WINDOW.to_string()),
        // A short fence when the topic is new or grows (docs/ordering.md).
        ("NOTIF_KAFKA_PARTITION_REFRESH_MS", "200".to_string()),
        ("NOTIF_KAFKA_PRODUCE_TIMEOUT_SECS", "2".to_string()),
    ]
}

impl Service {
    pub async fn distributed() -> Service {
        Service::distributed_with(Env::new()).await
    }

    /// The distributed roles with presence on the Redis Cluster.
    pub async fn distributed_on_redis_cluster() -> Service {
        let cluster = testenv::redis_cluster_urls().join(",");
        Service::distributed_with(vec![("NOTIF_REDIS_CLUSTER_URLS", cluster)]).await
    }

    /// The distributed roles with `extra` settings besides the tests' own.
    pub async fn distributed_with(extra: Env) -> Service {
        let env = settings().into_iter().chain(extra).collect();
        let deployment = Deployment::distributed(Path::new(NOTIFD), 3, env).await;
        let Storage::Database(db) = &deployment.storage else {
            unreachable!("a distributed deployment keeps its inbox in Postgres")
        };
        let inbox = Arc::new(PostgresInbox::new(db.pool().await));
        Service::new(deployment, inbox)
    }

    /// Two instances of each role, on the Redis Cluster and both PostgreSQL
    /// servers (`Deployment::scaled`); clients and publishers are spread
    /// over the instances.
    pub async fn scaled() -> Service {
        let env = settings();
        let deployment = Deployment::scaled(Path::new(NOTIFD), 2, 4, env).await;
        let Storage::Shards(dbs) = &deployment.storage else {
            unreachable!("a scaled deployment shards its inbox")
        };
        let mut shards = Vec::new();
        for db in dbs {
            shards.push(PostgresInbox::new(db.pool().await));
        }
        let layout = Layout::new(shards.len(), None, false).expect("shards");
        Service::new(deployment, Arc::new(ShardedInbox::new(shards, layout)))
    }

    /// `notifd standalone` with the same credentials and timings.
    pub async fn standalone() -> Service {
        Service::standalone_with(Env::new()).await
    }

    /// `notifd standalone` with `extra` settings besides the tests' own.
    pub async fn standalone_with(extra: Env) -> Service {
        let data_dir = std::env::temp_dir().join(testenv::unique_name("standalone"));
        let env = settings().into_iter().chain(extra).collect();
        Service::standalone_on(&data_dir, env).await
    }

    /// `notifd standalone` on `data_dir` with `env` (credentials, say).
    pub async fn standalone_on(data_dir: &Path, env: Env) -> Service {
        let deployment = Deployment::standalone(Path::new(NOTIFD), data_dir, env).await;
        let inbox = Arc::new(SqliteInbox::new(dataplane::sqlite::Database::new(
            open_database(data_dir).await,
        )));
        Service::new(deployment, inbox)
    }

    fn new(deployment: Deployment, inbox: Arc<dyn Inbox>) -> Service {
        Service {
            deployment,
            inbox,
            http: reqwest::Client::new(),
            turn: AtomicUsize::new(0),
        }
    }

    /// The process that plays `role`: itself, or the standalone process.
    pub fn role(&self, role: &str) -> &Process {
        self.deployment.role(role)
    }

    pub fn role_mut(&mut self, role: &str) -> &mut Process {
        self.deployment.role_mut(role)
    }

    pub fn is_standalone(&self) -> bool {
        matches!(self.deployment.storage, Storage::DataDir(_))
    }

    /// The standalone service's data directory.
    pub fn data_dir(&self) -> &Path {
        match &self.deployment.storage {
            Storage::DataDir(path) => path,
            Storage::Database(_) | Storage::Shards(_) => {
                panic!("a distributed service has no data directory")
            }
        }
    }

    /// Stops the processes and removes what they stored.
    pub async fn finish(self) {
        self.deployment.finish().await;
    }

    /// The next running instance of `role`, in turn; the first one when
    /// none runs (a request to it then fails, as to a service that is down).
    fn next(&self, role: &str) -> &Process {
        let running: Vec<&Process> = self
            .deployment
            .instances(role)
            .filter(|p| p.pid().is_some())
            .collect();
        match running.is_empty() {
            true => self.role(role),
            false => running[self.turn.fetch_add(1, Ordering::Relaxed) % running.len()],
        }
    }

    /// Where a client connects: the distributors in turn.
    pub fn connect_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.next("distributor").http)
    }

    /// Where a publisher publishes: the receivers in turn.
    pub fn publish_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.next("receiver").http)
    }

    /// A second distributor beside the first, started, on ports of its own.
    pub async fn second_distributor(&self) -> Process {
        let mut second = self.role("distributor").twin();
        second.start().await;
        second
    }

    /// The SDK's publisher, with the test API key.
    pub fn publisher(&self) -> notif_sdk::Publisher {
        notif_sdk::Publisher::new(&self.publish_url(), API_KEY)
    }

    /// The SDK's subscriber for `recipient`, reconnecting quickly.
    pub fn subscriber(&self, recipient: &str) -> notif_sdk::Subscriber {
        notif_sdk::Subscriber::new(&self.connect_url(), token(recipient))
            .backoff(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// Publishes `(recipient, id)` pairs as one batch; returns the status.
    pub async fn publish(&self, batch: &[(&str, String)]) -> reqwest::Result<StatusCode> {
        let notifications: Vec<_> = batch
            .iter()
            .map(|(recipient, id)| serde_json::json!({"recipient": recipient, "id": id, "payload": {"id": id}}))
            .collect();
        let response = self
            .http
            .post(format!("{}/v1/notifications", self.publish_url()))
            .bearer_auth(API_KEY)
            .json(&serde_json::json!({ "notifications": notifications }))
            .send()
            .await?;
        Ok(response.status())
    }

    /// Publishes `batch` and asserts it was accepted.
    pub async fn publish_accepted(&self, batch: &[(&str, String)]) {
        let status = self.publish(batch).await.expect("publish");
        assert_eq!(status, StatusCode::ACCEPTED);
    }

    /// Waits until `recipient`'s inbox holds `count` notifications.
    pub async fn wait_for_inbox(&self, recipient: &str, count: usize) {
        testenv::wait_until(
            &format!("{recipient}'s inbox holds {count}"),
            Duration::from_secs(60),
            async || {
                let held = self
                    .inbox
                    .pending(recipient, None, 10_000, now_ms())
                    .await
                    .expect("the inbox");
                held.len() >= count
            },
        )
        .await;
    }

    /// Waits until `recipient`'s inbox is empty.
    pub async fn wait_for_inbox_empty(&self, recipient: &str) {
        testenv::wait_until(
            &format!("{recipient}'s inbox is empty"),
            Duration::from_secs(10),
            async || {
                let held = self.inbox.pending(recipient, None, 1, now_ms()).await;
                held.expect("the inbox").is_empty()
            },
        )
        .await;
    }

    /// Waits until the director counts `count` notifications delivered (a
    /// client acknowledged each live).
    pub async fn wait_for_delivered(&self, count: usize) {
        let line = format!(r#"notif_director_notifications_total{{outcome="delivered"}} {count}"#);
        testenv::wait_until(
            &format!("{count} delivered live and acknowledged"),
            Duration::from_secs(10),
            async || self.metrics("director").await.contains(&line),
        )
        .await;
    }

    /// Everything `recipient` receives over a WebSocket until `count` came.
    pub async fn receive_ws(&self, recipient: &str, count: usize) -> Vec<String> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let url = format!(
            "ws://127.0.0.1:{}/v1/connect/ws?token={}",
            self.next("distributor").http,
            token(recipient)
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the WebSocket handshake");
        let mut ids = Vec::new();
        while ids.len() < count {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .unwrap_or_else(|_| panic!("{recipient} got {} of {count} within 10s", ids.len()))
                .expect("open")
                .expect("a frame");
            if let Message::Text(text) = message {
                let frame: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                ids.push(frame["id"].as_str().expect("an id").to_string());
            }
        }
        ids
    }

    /// The sum of metric `name` of the process playing `role`.
    pub async fn count(&self, role: &str, name: &str) -> f64 {
        testenv::metric_sum(&self.metrics(role).await, name)
    }

    /// Waits until the distributor holds `count` connections.
    pub async fn wait_for_connections(&self, count: usize) {
        testenv::wait_until(
            &format!("{count} connections"),
            Duration::from_secs(10),
            async || {
                self.count("distributor", "notif_distributor_connections")
                    .await
                    == count as f64
            },
        )
        .await;
    }

    /// The metrics of the process playing `role`, as its admin port serves them.
    pub async fn metrics(&self, role: &str) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.role(role).admin);
        self.http
            .get(url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub async fn acknowledge(&self, recipient: &str, ids: &[String]) {
        let response = self
            .http
            .post(format!(
                "http://127.0.0.1:{}/v1/ack",
                self.role("distributor").http
            ))
            .bearer_auth(token(recipient))
            .json(&serde_json::json!({ "ids": ids }))
            .send()
            .await
            .expect("ack");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(
            answer,
            serde_json::json!({ "acknowledged": ids }),
            "each id was held for {recipient}"
        );
    }
}

/// Reads an SSE stream into `text` until it holds `needle`, for up to 10 s
/// a chunk.
pub async fn read_stream_until(events: &mut reqwest::Response, text: &mut String, needle: &str) {
    while !text.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .unwrap_or_else(|_| panic!("{needle} within 10s"))
            .expect("the stream")
            .expect("not ended");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The standalone data directory's database, as the process made it.
async fn open_database(data_dir: &Path) -> sqlx::SqlitePool {
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(data_dir.join("notifd.sqlite"));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .expect("the standalone database")
}

/// A client token for `recipient`. It lasts a day, longer than any run
/// (`just fault-long`'s outages included): a client whose token expired
/// mid-run is refused on reconnecting, which would look like lost delivery.
pub fn token(recipient: &str) -> String {
    let claims = Claims {
        sub: recipient.into(),
        exp: now_ms() / 1000 + 24 * 3600,
        scope: String::new(),
    };
    sign_with_secret(&claims, JWT_SECRET.as_bytes()).expect("a token")
}

/// A WebSocket client that stays connected.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Frames read while waiting for another type, in order.
    unread: std::collections::VecDeque<serde_json::Value>,
}

impl WsClient {
    pub async fn connect(service: &Service, recipient: &str) -> WsClient {
        let url = format!(
            "ws://127.0.0.1:{}/v1/connect/ws?token={}",
            service.next("distributor").http,
            token(recipient)
        );
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the WebSocket handshake");
        WsClient {
            socket,
            unread: Default::default(),
        }
    }

    /// The next frame of `type`, or None if none comes within `wait`;
    /// frames of other types are kept for later.
    pub async fn next(&mut self, kind: &str, wait: Duration) -> Option<serde_json::Value> {
        use futures::StreamExt;
        if let Some(index) = self.unread.iter().position(|f| f["type"] == kind) {
            return self.unread.remove(index);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .expect("a frame");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let frame: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                if frame["type"] == kind {
                    return Some(frame);
                }
                self.unread.push_back(frame);
            }
        }
    }

    /// Waits for the server to close the connection; returns the close code.
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next `count` notification frames.
    pub async fn notifications(&mut self, count: usize) -> Vec<serde_json::Value> {
        let mut frames = Vec::new();
        while frames.len() < count {
            let frame = self.next("notification", Duration::from_secs(15)).await;
            let got = frames.len();
            frames.push(
                frame.unwrap_or_else(|| panic!("got {got}, not {count} notifications, within 15s")),
            );
        }
        frames
    }

    /// The ids of the next `count` notifications.
    pub async fn ids(&mut self, count: usize) -> Vec<String> {
        let frames = self.notifications(count).await;
        frames
            .iter()
            .map(|f| f["id"].as_str().expect("an id").to_string())
            .collect()
    }

    pub async fn ack(&mut self, ids: &[String]) {
        self.send_ack(serde_json::json!({"type": "ack", "ids": ids}))
            .await;
        self.next("acked", Duration::from_secs(5))
            .await
            .expect("the ack is answered");
    }

    /// Acknowledges everything through `position`; returns the answer, an
    /// `acked` or an `error` frame.
    pub async fn ack_through(&mut self, position: u64) -> serde_json::Value {
        self.send_ack(serde_json::json!({"type": "ack", "through": position}))
            .await;
        let answer = async {
            use futures::StreamExt;
            loop {
                let message = self.socket.next().await.expect("open").expect("a frame");
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                    let frame: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                    if frame["type"] != "notification" {
                        return frame;
                    }
                    self.unread.push_back(frame);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .expect("the ack is answered")
    }

    async fn send_ack(&mut self, frame: serde_json::Value) {
        use futures::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(
                frame.to_string(),
            ))
            .await
            .expect("send an ack");
    }
}
