//! The distributor against the real Postgres inbox and Redis presence: what
//! a client sees on each transport, and what its acknowledgements do.

mod ack;
mod binary;
mod poll;
mod query;
mod sse;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use dataplane::auth::jwt::{Claims, JwtVerifier, sign_with_secret};
use dataplane::distributor::heartbeat::Heartbeats;
use dataplane::distributor::live::Live;
use dataplane::distributor::{Distributor, router};
use dataplane::inbox::{Inbox, Positioned, PostgresInbox};
use dataplane::metrics::DistributorMetrics;
use dataplane::notification::{Notification, now_ms};
use dataplane::presence::{Presence, RedisPresence};
use serde_json::value::RawValue;
use testenv::TestDatabase;
use tokio_util::sync::CancellationToken;

pub const SECRET: &[u8] = b"distributor-test-secret";

pub struct TestDistributor {
    pub url: String,
    pub inbox: PostgresInbox,
    pub presence: RedisPresence,
    pub id: String,
    pub db: TestDatabase,
    pub http: reqwest::Client,
    pub stop: CancellationToken,
    /// Live delivery, as the director's forwarding stream drives it.
    pub live: Arc<Live>,
}

impl TestDistributor {
    pub async fn start() -> TestDistributor {
        let db = TestDatabase::create("distributor").await;
        let pool = db.pool().await;
        let inbox = PostgresInbox::new(pool);
        inbox.migrate().await.expect("migrations");
        let prefix = format!("{}:", testenv::unique_name("distributor"));
        let presence = RedisPresence::connect(&testenv::redis_url(), &prefix)
            .await
            .expect("Redis");
        let id = testenv::unique_name("d");
        let stop = CancellationToken::new();
        let live = Arc::new(Live::default());
        let distributor = Arc::new(Distributor {
            id: id.clone(),
            inbox: Arc::new(inbox.clone()),
            presence: Arc::new(presence.clone()),
            jwt: JwtVerifier::with_secret(SECRET).expect("a verifier"),
            presence_ttl: Duration::from_secs(30),
            heartbeats: Heartbeats::start(
                Arc::new(presence.clone()),
                live.clone(),
                Duration::from_secs(30),
                stop.clone(),
            ),
            page_size: 2,
            metrics: DistributorMetrics::default(),
            live: live.clone(),
            connection_queue: 16,
            ack_timeout: Duration::from_secs(2),
            relay: Default::default(),
            stop: stop.clone(),
            forward_secret: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let shutdown = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router(distributor))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        TestDistributor {
            live,
            url,
            inbox,
            presence,
            id,
            db,
            http: reqwest::Client::new(),
            stop,
        }
    }

    /// Puts notifications `ids` in `recipient`'s inbox, at positions 10, 20, ...
    pub async fn fill_inbox(&self, recipient: &str, ids: &[&str]) {
        let batch: Vec<Positioned> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Positioned {
                position: 10 * (i as u64 + 1),
                notification: notification(recipient, id, None),
            })
            .collect();
        self.inbox.store(&batch).await.expect("store");
    }

    pub async fn is_present(&self, recipient: &str) -> bool {
        self.presence
            .lookup(recipient)
            .await
            .expect("presence")
            .contains(&self.id)
    }
}

pub fn notification(recipient: &str, id: &str, expires_at_ms: Option<u64>) -> Notification {
    Notification {
        id: id.into(),
        recipient: recipient.into(),
        payload: RawValue::from_string(format!(r#"{{"text":"{id}"}}"#)).expect("JSON"),
        kind: Some("test".into()),
        published_at_ms: now_ms(),
        expires_at_ms,
    }
}

/// A client token for `recipient`, valid for ten minutes.
pub fn token(recipient: &str) -> String {
    let claims = Claims {
        sub: recipient.into(),
        exp: now_ms() / 1000 + 600,
        scope: String::new(),
    };
    sign_with_secret(&claims, SECRET).expect("a token")
}
