//! Runs alone (`exclusive::`): Kafka, PostgreSQL and Redis, and the
//! service's three roles beside them, all in containers, load the machine
//! more than tests beside it should bear.

use std::time::Duration;

use notif_sdk::{NewNotification, Publisher, Subscriber, Subscription, Transport};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use testenv::docker::{Container, NOTIFD_IMAGE, docker_text};
use testenv::notifd::free_port;
use testenv::pulumi::Stack;

const API_KEY: &str = "sk_pulumi_docker_publisher";
/// With marks a URL must escape: the server takes it as set, and the
/// service reaches it with it escaped in its URL.
const POSTGRES_PASSWORD: &str = "pg pass/word:1@";
const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn the_docker_target_runs_servers_the_service_stores_in_and_reads_from_and_destroy_leaves_nothing()
 {
    let stack = Stack::init("pulumi-docker").await;
    let (postgres_port, redis_port, kafka_port) = (free_port(), free_port(), free_port());
    let redis_password = testenv::unique_name("redis-password");
    for (key, value) in [
        ("target", "docker"),
        ("dockerPrefix", stack.name.as_str()),
        ("postgresPort", &postgres_port.to_string()),
        ("redisPort", &redis_port.to_string()),
        ("kafkaPort", &kafka_port.to_string()),
        ("volumesOnDestroy", "delete"),
    ] {
        stack.set(key, value).await;
    }
    stack
        .set_secret("postgresPassword", POSTGRES_PASSWORD)
        .await;
    stack.set_secret("redisPassword", &redis_password).await;

    let outputs = stack.up().await;
    assert_eq!(
        outputs["kafkaBootstrapServers"],
        format!("127.0.0.1:{kafka_port}")
    );
    assert_eq!(outputs["postgresUrl"], "[secret]");
    assert_eq!(outputs["redisUrl"], "[secret]");
    let state = stack.state().await;
    assert!(
        !state.contains(POSTGRES_PASSWORD) && !state.contains(&redis_password),
        "no password is in the stack's state in the clear"
    );
    let label = format!(
        "label=dev.saasaparilla.notif-backing/stack=notif-backing/{}",
        stack.name
    );
    let servers = docker_text(&[
        "ps",
        "--filter",
        &label,
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert_eq!(servers.lines().count(), 3, "three servers run: {servers}");
    assert!(
        servers.lines().all(|line| line.contains("(healthy)")),
        "each server is healthy: {servers}"
    );

    // What the servers demand: Redis a password, PostgreSQL its password.
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let mut redis = redis::Client::open(redis_url.as_str())
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers on its published port");
    let refused: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut redis).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("NOAUTH")),
        "Redis asks for its password"
    );
    let postgres_url = format!(
        "postgres://notifications:pg%20pass%2Fword%3A1%40@127.0.0.1:{postgres_port}/notifications"
    );

    // The service on them: its topic made from this machine, through Kafka's
    // listener for the host; its roles in containers on the stack's network,
    // reaching the servers by name, as the compose deployment does.
    let topic =
        testenv::kafka::create_topic_on(&format!("127.0.0.1:{kafka_port}"), "pulumi", 3).await;
    let network = outputs["network"]
        .as_str()
        .expect("the network")
        .to_string();
    let prefix = &stack.name;
    let service = Service::start(&network, prefix, &topic, &redis_password).await;
    let publisher = Publisher::new(&service.receiver_url, API_KEY);

    // One recipient connected, one away: the away one's notifications wait
    // in PostgreSQL's inbox, and reach it in order when it connects.
    let online = testenv::unique_name("online");
    let away = testenv::unique_name("away");
    let mut subscription = service.subscribe(&online, Transport::WebSocket);
    tokio::time::timeout(TIMEOUT, subscription.connected())
        .await
        .expect("connected in time")
        .expect("connected");
    let live = publish(&publisher, &online, 5).await;
    receive_in_order(&mut subscription, &online, &live).await;
    let stored = publish(&publisher, &away, 5).await;
    let mut inbox = sqlx::PgConnection::connect(&postgres_url)
        .await
        .expect("PostgreSQL takes its password, as the program set it");
    let waiting = async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE recipient = $1")
            .bind(&away)
            .fetch_one(&mut inbox)
            .await
            .expect("the inbox is read")
            == 5
    };
    testenv::wait_until(
        "the away recipient's notifications are in the inbox",
        TIMEOUT,
        waiting,
    )
    .await;
    let mut later = service.subscribe(&away, Transport::Sse);
    receive_in_order(&mut later, &away, &stored).await;
    drop((subscription, later, inbox));

    stack.expect_no_changes().await;
    // A server removed behind the stack's back is found gone, and made again.
    docker_text(&["rm", "--force", &format!("{prefix}-redis")]);
    stack.refresh().await;
    stack.up().await;
    let redis = docker_text(&[
        "ps",
        "--filter",
        &format!("name=^{prefix}-redis$"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(redis.contains("(healthy)"), "Redis is back: {redis}");
    stack.expect_no_changes().await;
    // The network goes only once nothing is attached to it.
    drop(service);
    stack.destroy().await;
    for listing in [
        ["container", "ls", "--all", "--quiet", "--filter", &label].as_slice(),
        ["volume", "ls", "--quiet", "--filter", &label].as_slice(),
        ["network", "ls", "--quiet", "--filter", &label].as_slice(),
    ] {
        assert_eq!(
            docker_text(listing),
            "",
            "no {} of the stack is left",
            listing[0]
        );
    }
}

/// The service's three roles from its image, on the stack's network.
struct Service {
    _containers: Vec<Container>,
    receiver_url: String,
    distributor_url: String,
    distributor: String,
}

impl Service {
    async fn start(network: &str, prefix: &str, topic: &str, redis_password: &str) -> Service {
        let hash = format!("sha256:{}", hex::encode(Sha256::digest(API_KEY)));
        let distributor = format!("{prefix}-distributor");
        let settings = [
            format!("NOTIF_KAFKA_BOOTSTRAP_SERVERS={prefix}-kafka:9092"),
            format!("NOTIF_KAFKA_TOPIC={topic}"),
            format!(
                "NOTIF_POSTGRES_URL=postgres://notifications:pg%20pass%2Fword%3A1%40@{prefix}-postgres:5432/notifications"
            ),
            format!("NOTIF_REDIS_URL=redis://:{redis_password}@{prefix}-redis:6379"),
            format!("NOTIF_API_KEY_HASHES={hash}"),
            "NOTIF_JWT_SECRET=a-pulumi-test-jwt-secret-of-32-bytes".to_string(),
            "NOTIF_FORWARD_SECRET=a-pulumi-test-forward-secret".to_string(),
            "NOTIF_FORWARD_ADDR=0.0.0.0:8082".to_string(),
            format!("NOTIF_FORWARD_ADVERTISE_ADDR={distributor}:8082"),
            format!("NOTIF_DISTRIBUTOR_ID={distributor}"),
        ];
        let role = |name: &str, role: &str| {
            let mut args = vec![
                "--name",
                name,
                "--network",
                network,
                "--publish",
                "127.0.0.1::8080",
            ];
            for setting in &settings {
                args.extend(["--env", setting]);
            }
            args.extend([NOTIFD_IMAGE, role]);
            Container::run(&args)
        };
        // The director makes the inbox's schema, which the distributor reads.
        let director = role(&format!("{prefix}-director"), "director");
        let receiver = role(&format!("{prefix}-receiver"), "receiver");
        let distributor_container = role(&distributor, "distributor");
        let receiver_url = format!("http://{}", receiver.published(8080));
        let distributor_url = format!("http://{}", distributor_container.published(8080));
        let service = Service {
            _containers: vec![director, receiver, distributor_container],
            receiver_url,
            distributor_url,
            distributor,
        };
        let publisher = Publisher::new(&service.receiver_url, API_KEY);
        let first = [NewNotification::new("nobody", json!({})).with_id("warm-up")];
        testenv::wait_until("the receiver takes a publish", TIMEOUT, async || {
            publisher.publish(&first).await.is_ok()
        })
        .await;
        service
    }

    fn subscribe(&self, recipient: &str, transport: Transport) -> Subscription {
        let token = docker_text(&[
            "exec",
            &self.distributor,
            "notifd",
            "token",
            "--recipient",
            recipient,
        ]);
        Subscriber::new(&self.distributor_url, token)
            .transport(transport)
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .subscribe()
    }
}

/// Publishes `count` notifications to `recipient`, one at a time; returns
/// their ids.
async fn publish(publisher: &Publisher, recipient: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let notification = NewNotification::new(recipient, json!({"n": n}));
        ids.extend(
            publisher
                .publish(&[notification])
                .await
                .expect("the publish is accepted"),
        );
    }
    ids
}

/// Receives (and acknowledges) `expected.len()` notifications and asserts
/// they are `expected`, in order.
async fn receive_in_order(subscription: &mut Subscription, recipient: &str, expected: &[String]) {
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let notification = tokio::time::timeout(TIMEOUT, subscription.next())
            .await
            .unwrap_or_else(|_| {
                panic!("{recipient}: got {got:?} of {expected:?} before the timeout")
            })
            .unwrap_or_else(|e| panic!("{recipient}: the subscription ended: {e}"));
        subscription.ack(&notification.id);
        got.push(notification.id);
    }
    assert_eq!(got, expected, "{recipient} receives everything, in order");
}
