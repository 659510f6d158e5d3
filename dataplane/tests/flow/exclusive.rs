//! A backing server away while notifications flow: nothing accepted is lost,
//! every role stays ready (readiness is the process's own), the server shows
//! as down in `notif_dependency_up`, and the public endpoints answer 503 with
//! Retry-After.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use testenv::control::{self, Server};

use crate::fault::{Phase, Timeline, under_load};
use crate::{API_KEY, Service, token};

/// Redis (presence) stopped: publishing goes on, delivery pauses (the
/// director cannot tell who is connected and takes no guess); when Redis is
/// back, everything accepted arrives, in order.
#[tokio::test]
async fn while_redis_is_stopped_delivery_waits_and_nothing_is_lost() {
    let service = Service::distributed().await;
    control::stop(Server::Redis).await;
    let batch: Vec<(&str, String)> = (0..5).map(|i| ("frank", format!("f{i}"))).collect();
    assert_eq!(
        service.publish(&batch).await.expect("publish"),
        StatusCode::ACCEPTED,
        "the receiver needs no Redis"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = service
        .inbox
        .pending("frank", None, 10, dataplane::notification::now_ms())
        .await
        .expect("inbox");
    assert!(
        held.is_empty(),
        "without presence the director routes nothing: {held:?}"
    );

    control::start(Server::Redis).await;
    service.wait_for_inbox("frank", 5).await;
    assert_eq!(
        service.receive_ws("frank", 5).await,
        ["f0", "f1", "f2", "f3", "f4"]
    );
    service.finish().await;
}

/// The roles of the distributed service.
const ROLES: [&str; 3] = ["receiver", "director", "distributor"];

/// Waits until each of `roles` reports `dependency` up (or down), checking
/// meanwhile that every role stays ready: readiness is the process's own.
async fn wait_for_dependency(service: &Service, roles: &[&str], dependency: &str, up: bool) {
    let sample = format!(r#"notif_dependency_up{{dependency="{dependency}"}}"#);
    let expected = if up { 1.0 } else { 0.0 };
    testenv::wait_until(
        &format!("{roles:?} report {dependency} up={up}"),
        Duration::from_secs(60),
        async || {
            assert_every_role_is_ready(service).await;
            let mut all = true;
            for role in roles {
                let metrics = service.metrics(role).await;
                // Present, so that 0 is a check that failed, not none made.
                all &=
                    metrics.contains(&sample) && testenv::metric_sum(&metrics, &sample) == expected;
            }
            all
        },
    )
    .await;
}

async fn assert_every_role_is_ready(service: &Service) {
    for role in ROLES {
        let url = format!("http://127.0.0.1:{}/readyz", service.role(role).admin);
        let response = service.http.get(url).send().await.expect("/readyz answers");
        assert_eq!(response.status(), StatusCode::OK, "the {role}'s /readyz");
    }
}

/// How soon a request must be answered during an outage: the 503 is of use
/// only if it comes before the client gives up.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A GET answered within [`PROMPTLY`], whatever it answers.
async fn get(service: &Service, url: String) -> reqwest::Response {
    service
        .http
        .get(url)
        .timeout(PROMPTLY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("an answer within {PROMPTLY:?}: {e}"))
}

fn assert_unavailable(response: &reqwest::Response, what: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{what} during the outage"
    );
    assert!(
        response.headers().contains_key(RETRY_AFTER),
        "{what}: 503 with Retry-After"
    );
}

fn poll_url(service: &Service, recipient: &str) -> String {
    format!(
        "{}/v1/connect/poll?wait=1&token={}",
        service.connect_url(),
        token(recipient)
    )
}

/// Kafka stopped: every role stays ready, the receiver and the director
/// report Kafka down, publishing answers 503 with Retry-After; all recovers
/// when Kafka is back.
#[tokio::test]
async fn while_kafka_is_stopped_every_role_stays_ready_and_publish_answers_503() {
    let service = Service::distributed().await;
    let kafka_users = ["receiver", "director"];
    wait_for_dependency(&service, &kafka_users, "kafka", true).await;

    control::stop(Server::Kafka).await;
    wait_for_dependency(&service, &kafka_users, "kafka", false).await;
    let response = service
        .http
        .post(format!(
            "http://127.0.0.1:{}/v1/notifications",
            service.role("receiver").http
        ))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({"recipient": "grace", "id": "g0", "payload": {}}))
        .timeout(PROMPTLY)
        .send()
        .await
        .expect("the receiver answers promptly");
    assert_unavailable(&response, "publish");
    assert_every_role_is_ready(&service).await;

    control::start(Server::Kafka).await;
    wait_for_dependency(&service, &kafka_users, "kafka", true).await;
    testenv::wait_until("publishing resumes", Duration::from_secs(60), async || {
        let batch = [("grace", "g1".to_string())];
        service.publish(&batch).await.ok() == Some(StatusCode::ACCEPTED)
    })
    .await;
    service.finish().await;
}

/// Redis stopped: every role stays ready, the director and the distributor
/// report Redis down, and connecting (WebSocket, SSE, poll) answers 503 with
/// Retry-After; all recovers when Redis is back.
#[tokio::test]
async fn while_redis_is_stopped_every_role_stays_ready_and_connect_answers_503() {
    let service = Service::distributed().await;
    let redis_users = ["director", "distributor"];
    wait_for_dependency(&service, &redis_users, "redis", true).await;

    control::stop(Server::Redis).await;
    wait_for_dependency(&service, &redis_users, "redis", false).await;
    let sse = format!(
        "{}/v1/connect/sse?token={}",
        service.connect_url(),
        token("heidi")
    );
    assert_unavailable(&get(&service, sse.clone()).await, "an SSE connection");
    assert_unavailable(&get(&service, poll_url(&service, "heidi")).await, "a poll");
    let ws = format!(
        "ws://127.0.0.1:{}/v1/connect/ws?token={}",
        service.role("distributor").http,
        token("heidi")
    );
    let handshake = tokio::time::timeout(PROMPTLY, tokio_tungstenite::connect_async(ws)).await;
    match handshake.expect("a WebSocket handshake answered promptly") {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key(RETRY_AFTER));
        }
        other => panic!("a WebSocket handshake during the outage: {other:?}"),
    }
    assert_every_role_is_ready(&service).await;

    control::start(Server::Redis).await;
    wait_for_dependency(&service, &redis_users, "redis", true).await;
    testenv::wait_until("connecting resumes", Duration::from_secs(60), async || {
        get(&service, poll_url(&service, "heidi")).await.status() == StatusCode::OK
    })
    .await;
    service.finish().await;
}

/// PostgreSQL stopped: every role stays ready, the director and the
/// distributor report it down, and a poll (which reads the inbox) answers
/// 503 with Retry-After; all recovers when PostgreSQL is back.
#[tokio::test]
async fn while_postgres_is_stopped_every_role_stays_ready_and_poll_answers_503() {
    let service = Service::distributed().await;
    let postgres_users = ["director", "distributor"];
    wait_for_dependency(&service, &postgres_users, "postgres", true).await;

    control::stop(Server::Postgres).await;
    wait_for_dependency(&service, &postgres_users, "postgres", false).await;
    // Known to be away: answered at once, not after the pool's acquire
    // timeout (5 s).
    let started = tokio::time::Instant::now();
    assert_unavailable(&get(&service, poll_url(&service, "ivan")).await, "a poll");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    assert_every_role_is_ready(&service).await;

    control::start(Server::Postgres).await;
    wait_for_dependency(&service, &postgres_users, "postgres", true).await;
    testenv::wait_until("polling resumes", Duration::from_secs(60), async || {
        get(&service, poll_url(&service, "ivan")).await.status() == StatusCode::OK
    })
    .await;
    service.finish().await;
}

/// Redis stopped for 3 s under load, with clients on every transport: the
/// director stops routing (it cannot tell who is connected), and delivery
/// goes on from where it stopped once Redis is back.
#[tokio::test]
async fn redis_stopped_under_load_loses_nothing() {
    a_server_away_under_load("redis-away", Server::Redis).await;
}

/// PostgreSQL stopped for 3 s under load: notifications that would be
/// stored wait in Kafka, and nothing accepted is lost.
#[tokio::test]
async fn postgres_stopped_under_load_loses_nothing() {
    a_server_away_under_load("postgres-away", Server::Postgres).await;
}

/// Kafka stopped for 13 s under load, longer than the receivers' produce
/// timeout (2 s here) and the directors' consumer session (10 s): publishes
/// are refused meanwhile, and everything accepted before and after arrives.
#[tokio::test]
async fn kafka_stopped_under_load_loses_nothing() {
    a_server_away_under_load("kafka-away", Server::Kafka).await;
}

async fn a_server_away_under_load(name: &str, server: Server) {
    let service = Service::distributed().await;
    let publish_url = service.publish_url();
    let away = match server {
        Server::Kafka => Duration::from_secs(13),
        _ => Duration::from_secs(3),
    };
    let timeline = Timeline::outage(Duration::from_secs(1), away, Duration::from_secs(4));
    let fault = async |phase| match phase {
        Phase::Fault => control::stop(server).await,
        Phase::Recovery => control::start(server).await,
    };
    under_load(name, &publish_url, &service.connect_url(), timeline, fault).await;
    service.finish().await;
}
