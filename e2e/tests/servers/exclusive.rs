//! Stopping and starting one server by name, as fault tests will. These take
//! shared servers away, so `just test` runs them alone, after the others.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use redis::AsyncCommands;
use sqlx::{Connection, PgConnection};
use testenv::control::{self, Server};
use testenv::{kube_client, postgres_url, redis_url, unique_name};

/// Stops `server`, checks that `works` now fails, starts it, and checks that
/// `works` succeeds again within 30 s (clients reconnect).
async fn stop_and_start<F, Fut>(server: Server, works: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    works()
        .await
        .unwrap_or_else(|e| panic!("{} works before the stop: {e}", server.name()));
    control::stop(server).await;
    assert!(
        !control::is_ready(server).await,
        "status says {} is down",
        server.name()
    );
    assert!(
        works().await.is_err(),
        "{} answers while stopped",
        server.name()
    );
    control::start(server).await;
    assert!(
        control::is_ready(server).await,
        "status says {} is up",
        server.name()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = works().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} does not work within 30s of its start: {e}",
            server.name()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn postgres_stops_and_starts_by_name() {
    stop_and_start(Server::Postgres, || async {
        let mut connection = PgConnection::connect(&postgres_url())
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query("SELECT 1")
            .execute(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn redis_stops_and_starts_by_name() {
    let key = unique_name("exclusive");
    stop_and_start(Server::Redis, || async {
        let client = redis::Client::open(redis_url()).map_err(|e| e.to_string())?;
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis
            .set::<_, _, ()>(&key, 1)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
}

#[tokio::test]
async fn kafka_stops_and_starts_by_name() {
    let topic = testenv::kafka::create_topic("exclusive", 1).await;
    stop_and_start(Server::Kafka, || async {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = testenv::kafka::client_config()
            .set("message.timeout.ms", "5000")
            .create()
            .map_err(|e| e.to_string())?;
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload("v"),
                Duration::from_secs(5),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    })
    .await;
}

/// The API server, and etcd under it: while either is down the API does not
/// answer; once both are back it does, with what it stored before.
#[tokio::test]
async fn the_control_plane_stops_and_starts_by_name() {
    let client = kube_client().await;
    let namespace = testenv::create_namespace(&client, "exclusive").await;
    for server in [Server::KubeApiserver, Server::Etcd] {
        stop_and_start(server, || async {
            let namespaces: Api<Namespace> = Api::all(kube_client().await);
            let list = tokio::time::timeout(
                Duration::from_secs(10),
                namespaces.list(&ListParams::default()),
            )
            .await
            .map_err(|_| "no answer within 10s".to_string())?
            .map_err(|e| e.to_string())?;
            match list
                .items
                .iter()
                .any(|ns| kube::ResourceExt::name_any(ns) == namespace)
            {
                true => Ok(()),
                false => Err(format!("namespace {namespace} is missing")),
            }
        })
        .await;
    }
    control::stop(Server::KubeControllerManager).await;
    assert!(!control::is_ready(Server::KubeControllerManager).await);
    control::start(Server::KubeControllerManager).await;
    assert!(control::is_ready(Server::KubeControllerManager).await);

    Api::<Namespace>::all(client)
        .delete(&namespace, &kube::api::DeleteParams::default())
        .await
        .expect("delete the namespace");
}
