//! The three roles as processes (`notifd receiver`, `director`,
//! `distributor`) on the real Kafka, Postgres and Redis: a notification
//! published over HTTP reaches its recipient's client, in order, and
//! survives any role being killed.

mod exclusive;
mod kill;
mod live;
mod offline;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dataplane::auth::api_keys::ApiKeys;
use dataplane::auth::jwt::{Claims, sign_with_secret};
use dataplane::inbox::{Inbox, PostgresInbox};
use dataplane::notification::now_ms;
use reqwest::StatusCode;
use testenv::TestDatabase;

const NOTIFD: &str = env!("CARGO_BIN_EXE_notifd");
pub const API_KEY: &str = "flow-publisher-key";
pub const JWT_SECRET: &str = "flow-jwt-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One `notifd` process; killed when dropped.
pub struct Role {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    pub http: u16,
    pub admin: u16,
}

impl Role {
    fn new(name: &'static str, env: Vec<(&'static str, String)>) -> Role {
        Role {
            name,
            args: vec![name.to_string()],
            env,
            child: None,
            http: free_port(),
            admin: free_port(),
        }
    }

    /// Starts the process and waits until its /readyz says ready.
    pub async fn start(&mut self) {
        let mut command = Command::new(NOTIFD);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("NOTIF_HTTP_ADDR", format!("127.0.0.1:{}", self.http))
            .env("NOTIF_ADMIN_ADDR", format!("127.0.0.1:{}", self.admin))
            .env("NOTIF_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.child = Some(command.spawn().expect("notifd starts"));
        let (client, readyz) = (
            reqwest::Client::new(),
            format!("http://127.0.0.1:{}/readyz", self.admin),
        );
        testenv::wait_until(
            &format!("notifd {} is ready", self.name),
            Duration::from_secs(30),
            async || {
                client
                    .get(&readyz)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
            },
        )
        .await;
    }

    /// SIGKILL: a crash, nothing flushed or committed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The whole message path on a topic, database and key prefix of its own.
pub struct Service {
    pub receiver: Role,
    pub director: Role,
    pub distributor: Role,
    pub inbox: PostgresInbox,
    pub db: TestDatabase,
    pub http: reqwest::Client,
}

impl Service {
    pub async fn start() -> Service {
        let topic = testenv::kafka::create_topic("flow", 3).await;
        let db = TestDatabase::create("flow").await;
        let kafka = vec![
            ("NOTIF_KAFKA_BOOTSTRAP_SERVERS", testenv::kafka_bootstrap()),
            ("NOTIF_KAFKA_TOPIC", topic),
        ];
        let shared = vec![
            ("NOTIF_POSTGRES_URL", db.url.clone()),
            ("NOTIF_REDIS_URL", testenv::redis_url()),
            (
                "NOTIF_REDIS_KEY_PREFIX",
                format!("{}:", testenv::unique_name("flow")),
            ),
            ("NOTIF_ACK_TIMEOUT_SECS", "2".to_string()),
        ];
        let mut receiver = Role::new(
            "receiver",
            [
                kafka.clone(),
                vec![("NOTIF_API_KEY_HASHES", ApiKeys::hash(API_KEY))],
            ]
            .concat(),
        );
        let director_only = vec![
            ("NOTIF_KAFKA_GROUP", testenv::unique_name("flow")),
            ("NOTIF_RETRY_BACKOFF_MS", "50".to_string()),
        ];
        let mut director = Role::new("director", [kafka, shared.clone(), director_only].concat());
        let distributor_only = vec![
            ("NOTIF_JWT_SECRET", JWT_SECRET.to_string()),
            ("NOTIF_FORWARD_ADDR", format!("127.0.0.1:{}", free_port())),
        ];
        let mut distributor = Role::new("distributor", [shared, distributor_only].concat());
        // The director makes the inbox's schema, which the distributor reads.
        director.start().await;
        tokio::join!(receiver.start(), distributor.start());
        let pool = db.pool().await;
        Service {
            receiver,
            director,
            distributor,
            inbox: PostgresInbox::new(pool),
            db,
            http: reqwest::Client::new(),
        }
    }

    /// Publishes `(recipient, id)` pairs as one batch; returns the status.
    pub async fn publish(&self, batch: &[(&str, String)]) -> reqwest::Result<StatusCode> {
        let notifications: Vec<_> = batch
            .iter()
            .map(|(recipient, id)| serde_json::json!({"recipient": recipient, "id": id, "payload": {"id": id}}))
            .collect();
        let response = self
            .http
            .post(format!(
                "http://127.0.0.1:{}/v1/notifications",
                self.receiver.http
            ))
            .bearer_auth(API_KEY)
            .json(&serde_json::json!({ "notifications": notifications }))
            .send()
            .await?;
        Ok(response.status())
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

    /// Everything `recipient` receives over a WebSocket until `count` came.
    pub async fn receive_ws(&self, recipient: &str, count: usize) -> Vec<String> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let url = format!(
            "ws://127.0.0.1:{}/v1/connect/ws?token={}",
            self.distributor.http,
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

    /// A role's metrics, as its admin port serves them.
    pub async fn metrics(&self, role: &Role) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", role.admin);
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
            .post(format!("http://127.0.0.1:{}/v1/ack", self.distributor.http))
            .bearer_auth(token(recipient))
            .json(&serde_json::json!({ "ids": ids }))
            .send()
            .await
            .expect("ack");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

pub fn token(recipient: &str) -> String {
    let claims = Claims {
        sub: recipient.into(),
        exp: now_ms() / 1000 + 600,
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
            service.distributor.http,
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

    /// The ids of the next `count` notifications.
    pub async fn ids(&mut self, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        while ids.len() < count {
            let frame = self.next("notification", Duration::from_secs(15)).await;
            let frame = frame
                .unwrap_or_else(|| panic!("got {ids:?}, not {count} notifications, within 15s"));
            ids.push(frame["id"].as_str().expect("an id").to_string());
        }
        ids
    }

    pub async fn ack(&mut self, ids: &[String]) {
        use futures::SinkExt;
        let frame = serde_json::json!({"type": "ack", "ids": ids}).to_string();
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(frame))
            .await
            .expect("send an ack");
        self.next("acked", Duration::from_secs(5))
            .await
            .expect("the ack is answered");
    }
}
