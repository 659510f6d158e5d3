//! The receiver against the test environment's real Kafka: what a publisher
//! sees, and what lands in the topic.

mod binary;
mod exclusive;
mod publish;

use std::sync::Arc;
use std::time::Duration;

use dataplane::auth::api_keys::ApiKeys;
use dataplane::auth::jwt::JwtVerifier;
use dataplane::auth::publisher::PublisherAuth;
use dataplane::json_body::BodyLimits;
use dataplane::log::{KafkaConfig, KafkaLog, Log};
use dataplane::metrics::ReceiverMetrics;
use dataplane::receiver::request::Limits;
use dataplane::receiver::{Receiver, router};

pub const API_KEY: &str = "test-publisher-key";
pub const JWT_SECRET: &[u8] = b"test-jwt-secret";

/// A receiver serving on a loopback port, writing to a topic of its own.
pub struct TestReceiver {
    pub url: String,
    pub topic: String,
    pub http: reqwest::Client,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        // The receiver's and librdkafka's logs, shown with a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
        let topic = testenv::kafka::create_topic("receiver", 3).await;
        let log = KafkaLog::new(&KafkaConfig {
            bootstrap_servers: testenv::kafka_bootstrap(),
            topic: topic.clone(),
            properties: vec![],
            produce_timeout: Duration::from_secs(3),
            partition_refresh: Duration::from_millis(200),
        })
        .expect("a Kafka log");
        // As the receiver's /readyz does: ready once the partition count is read.
        testenv::wait_until(
            "the Kafka log is ready",
            Duration::from_secs(30),
            async || log.is_reachable().await,
        )
        .await;
        let receiver = Arc::new(Receiver {
            log: Arc::new(log),
            auth: PublisherAuth {
                api_keys: ApiKeys::parse(&ApiKeys::hash(API_KEY)).expect("key hashes"),
                jwt: Some(JwtVerifier::with_secret(JWT_SECRET).expect("a verifier")),
                open: false,
            },
            limits: Limits {
                max_batch: 10,
                max_payload_bytes: 1024,
                max_ttl_secs: 3600,
            },
            body: BodyLimits {
                max_bytes: 64 * 1024,
                timeout: Duration::from_secs(1),
            },
            metrics: ReceiverMetrics::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, router(receiver)).await });
        TestReceiver {
            url,
            topic,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs `body` as JSON with the test API key.
    pub async fn publish(&self, body: serde_json::Value) -> reqwest::Response {
        self.publish_raw(body.to_string(), Some(API_KEY)).await
    }

    pub async fn publish_raw(&self, body: String, bearer: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/v1/notifications", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the receiver answers")
    }
}
