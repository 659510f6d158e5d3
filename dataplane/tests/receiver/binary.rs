//! `notifd receiver` as a process: its flags, its admin port, its drain.

use std::process::{Command, Stdio};
use std::time::Duration;

use dataplane::auth::api_keys::ApiKeys;
use reqwest::StatusCode;
use serde_json::json;

const NOTIFD: &str = env!("CARGO_BIN_EXE_notifd");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Runs `notifd receiver` with `args` and an environment of no NOTIF_ settings.
fn receiver(args: &[&str]) -> Command {
    let mut command = testenv::notifd::bare_command(NOTIFD.as_ref(), "receiver");
    command.args(args);
    command
}

#[test]
fn help_documents_each_flag_with_its_default_and_variable() {
    let output = receiver(&["--help"]).output().expect("notifd runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--kafka-bootstrap-servers",
        "NOTIF_KAFKA_BOOTSTRAP_SERVERS",
        "--http-addr",
        "[default: 0.0.0.0:8080]",
        "--api-key-hashes-file",
        "--jwt-secret-file",
        "--admin-addr",
        "--max-batch",
    ] {
        assert!(help.contains(expected), "--help shows {expected}:\n{help}");
    }
}

#[test]
fn bad_configuration_fails_at_start_naming_the_flag() {
    let cases: [(&[&str], &str); 3] = [
        (&[], "--kafka-bootstrap-servers"),
        (
            &["--kafka-bootstrap-servers", "127.0.0.1:1"],
            "--api-key-hashes-file",
        ),
        (
            &[
                "--kafka-bootstrap-servers",
                "127.0.0.1:1",
                "--api-key-hashes",
                "plain-key",
            ],
            "--api-key-hashes",
        ),
    ];
    for (args, flag) in cases {
        let output = receiver(args).output().expect("notifd runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} is refused");
        assert!(
            stderr.contains(flag),
            "{args:?}: the error names {flag}: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_receiver_serves_publishes_reports_and_drains_on_sigterm() {
    let topic = testenv::kafka::create_topic("notifd", 1).await;
    let (http, admin) = (free_port(), free_port());
    let hashes = ApiKeys::hash("k1");
    let mut child = receiver(&[
        "--kafka-bootstrap-servers",
        &testenv::kafka_bootstrap(),
        "--kafka-topic",
        &topic,
        "--api-key-hashes",
        &hashes,
        "--http-addr",
        &format!("127.0.0.1:{http}"),
        "--admin-addr",
        &format!("127.0.0.1:{admin}"),
    ])
    .stderr(Stdio::inherit())
    .spawn()
    .expect("notifd starts");

    let client = reqwest::Client::new();
    let admin_url = format!("http://127.0.0.1:{admin}");
    testenv::wait_until(
        "the receiver is ready",
        Duration::from_secs(30),
        async || {
            let ready = client.get(format!("{admin_url}/readyz")).send().await;
            ready.is_ok_and(|r| r.status() == StatusCode::OK)
        },
    )
    .await;
    let health = client
        .get(format!("{admin_url}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), StatusCode::OK);

    let published = client
        .post(format!("http://127.0.0.1:{http}/v1/notifications"))
        .bearer_auth("k1")
        .json(&json!({"notifications": [{"recipient": "u", "payload": 1}, {"recipient": "v", "payload": 2}]}))
        .send()
        .await
        .expect("the receiver answers");
    assert_eq!(published.status(), StatusCode::ACCEPTED);
    let metrics = client
        .get(format!("{admin_url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("notif_publish_accepted_total 2"),
        "{metrics}"
    );
    // One request, two notifications: the autoscaling metric counts requests.
    assert!(
        metrics.contains("notif_publish_requests_total 1"),
        "{metrics}"
    );

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait")
        .expect("exit status");
    assert!(
        status.success(),
        "SIGTERM drains and exits cleanly: {status}"
    );
    assert_eq!(testenv::kafka::read_all(&topic).await.len(), 2);
}
