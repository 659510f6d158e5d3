//! The service as processes, deployed both ways: the three roles
//! (`notifd receiver`, `director`, `distributor`) on the real Kafka,
//! Postgres and Redis, and `notifd standalone` on its data directory. The
//! same scenarios run against both (`on_both!`): a notification published
//! over HTTP reaches its recipient's client, in order, and survives any
//! process being killed.

mod exclusive;
mod kill;
mod live;
mod offline;
mod openapi;
mod standalone;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::sync::Arc;
use std::time::Duration;

use dataplane::auth::api_keys::ApiKeys;
use dataplane::auth::jwt::{Claims, sign_with_secret};
use dataplane::inbox::{Inbox, PostgresInbox, SqliteInbox};
use dataplane::notification::now_ms;
use reqwest::StatusCode;
use testenv::TestDatabase;

/// Runs the scenario `fn $name(Service)` against each deployment, as the
/// tests `$name::distributed` and `$name::standalone`.
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
}

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
    pub name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    pub http: u16,
    pub admin: u16,
    /// Where its standard output goes.
    stdout: PathBuf,
}

impl Role {
    pub fn new(name: &'static str, env: Vec<(&'static str, String)>) -> Role {
        Role {
            name,
            args: vec![name.to_string()],
            env,
            child: None,
            http: free_port(),
            admin: free_port(),
            stdout: std::env::temp_dir().join(testenv::unique_name("notifd-stdout")),
        }
    }

    /// Adds environment variables for the next start.
    pub fn with_env(mut self, env: Vec<(&'static str, String)>) -> Role {
        self.env.extend(env);
        self
    }

    /// What it printed to standard output.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
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
            .stdout(std::fs::File::create(&self.stdout).expect("a file for its output"))
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

    /// SIGTERM, and waits for it to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(signalled.success(), "SIGTERM sent");
        child.wait().expect("it exits").success()
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
        let _ = std::fs::remove_file(&self.stdout);
    }
}

/// The whole message path, on servers or a data directory of its own.
pub struct Service {
    /// The processes: receiver, director and distributor, or standalone.
    pub roles: Vec<Role>,
    pub inbox: Arc<dyn Inbox>,
    storage: Storage,
    pub http: reqwest::Client,
}

/// What a service keeps its data in, removed by [`Service::finish`].
enum Storage {
    Database(TestDatabase),
    DataDir(PathBuf),
}

impl Service {
    pub async fn distributed() -> Service {
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
            roles: vec![receiver, director, distributor],
            inbox: Arc::new(PostgresInbox::new(pool)),
            storage: Storage::Database(db),
            http: reqwest::Client::new(),
        }
    }

    /// `notifd standalone` with the same credentials and timings.
    pub async fn standalone() -> Service {
        let data_dir = std::env::temp_dir().join(testenv::unique_name("standalone"));
        let credentials = vec![
            ("NOTIF_API_KEY_HASHES", ApiKeys::hash(API_KEY)),
            ("NOTIF_JWT_SECRET", JWT_SECRET.to_string()),
        ];
        Service::standalone_on(&data_dir, credentials).await
    }

    /// `notifd standalone` on `data_dir` with `env` (credentials, say).
    pub async fn standalone_on(
        data_dir: &std::path::Path,
        env: Vec<(&'static str, String)>,
    ) -> Service {
        let data_dir = data_dir.to_path_buf();
        let mut process = Role::new(
            "standalone",
            vec![
                ("NOTIF_DATA_DIR", data_dir.display().to_string()),
                ("NOTIF_ACK_TIMEOUT_SECS", "2".to_string()),
                ("NOTIF_RETRY_BACKOFF_MS", "50".to_string()),
            ],
        )
        .with_env(env);
        process.start().await;
        Service {
            roles: vec![process],
            inbox: Arc::new(SqliteInbox::new(open_database(&data_dir).await)),
            storage: Storage::DataDir(data_dir),
            http: reqwest::Client::new(),
        }
    }

    /// The process that plays `role`: itself, or the standalone process.
    pub fn role(&self, role: &str) -> &Role {
        let index = self.role_index(role);
        &self.roles[index]
    }

    pub fn role_mut(&mut self, role: &str) -> &mut Role {
        let index = self.role_index(role);
        &mut self.roles[index]
    }

    fn role_index(&self, role: &str) -> usize {
        self.roles
            .iter()
            .position(|r| r.name == role || r.name == "standalone")
            .unwrap_or_else(|| panic!("no process plays the {role}"))
    }

    pub fn is_standalone(&self) -> bool {
        matches!(self.storage, Storage::DataDir(_))
    }

    /// The standalone service's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        match &self.storage {
            Storage::DataDir(path) => path,
            Storage::Database(_) => panic!("a distributed service has no data directory"),
        }
    }

    /// Removes what the service stored.
    pub async fn finish(self) {
        let Service { roles, storage, .. } = self;
        drop(roles); // Killed, so that nothing holds the storage.
        match storage {
            Storage::Database(db) => db.drop_database().await,
            Storage::DataDir(path) => {
                let _ = std::fs::remove_dir_all(&path);
            }
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
                self.role("receiver").http
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
            self.role("distributor").http,
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
            serde_json::json!({"acknowledged": ids, "unknown": []}),
            "each id was held for {recipient}"
        );
    }
}

/// The standalone data directory's database, as the process made it.
async fn open_database(data_dir: &std::path::Path) -> sqlx::SqlitePool {
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(data_dir.join("notifd.sqlite"));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .expect("the standalone database")
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
            service.role("distributor").http,
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
