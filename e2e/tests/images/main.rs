//! The project's images, built from the Dockerfile by `just docker-build-all`
//! (which `just test` runs first), run as users run them: read-only, as the
//! non-root user, reached through ports published on loopback.

use std::time::Duration;

use notif_sdk::{NewNotification, Publisher, Subscriber, Transport};
use serde_json::json;
use testenv::docker::{Container, NOTIFD_IMAGE, OPERATOR_IMAGE, docker_text};

#[tokio::test]
async fn notifd_standalone_in_its_image_takes_a_publish_and_delivers_it_over_sse() {
    let container = Container::run(&[
        "--read-only",
        "--publish",
        "127.0.0.1::8080",
        "--publish",
        "127.0.0.1::9090",
        NOTIFD_IMAGE,
    ]);
    let http = format!("http://{}", container.published(8080));
    let admin = format!("http://{}", container.published(9090));
    let ready = async || {
        reqwest::get(format!("{admin}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    testenv::wait_until(
        "standalone in its container is ready",
        Duration::from_secs(30),
        ready,
    )
    .await;

    // As the welcome message says: the development API key, and a token
    // made by `notifd token`, both from the container's data directory.
    let api_key = container.exec(&["cat", "/var/lib/notifd/api-key"]);
    let token = container.exec(&["notifd", "token", "--recipient", "alice"]);
    let mut subscription = Subscriber::new(&http, token)
        .transport(Transport::Sse)
        .subscribe();
    let connected = async || subscription.is_connected();
    testenv::wait_until(
        "the SSE subscription connects",
        Duration::from_secs(10),
        connected,
    )
    .await;

    let ids = Publisher::new(&http, api_key)
        .publish(&[NewNotification::new(
            "alice",
            json!({"text": "hello from a container"}),
        )])
        .await
        .expect("the publish is accepted");
    let delivered = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("delivered within 10 s")
        .expect("a notification");
    assert_eq!(delivered.id, ids[0]);
    assert_eq!(
        delivered.payload.get(),
        r#"{"text":"hello from a container"}"#
    );
    assert!(
        container.logs().contains("is running"),
        "{}",
        container.logs()
    );
}

#[test]
fn the_operator_image_prints_its_crd() {
    let printed = docker_text(&["run", "--rm", "--read-only", OPERATOR_IMAGE, "crd"]);
    let kept =
        include_str!("../../../crds/notificationclusters.notifications.saasaparilla.dev.yaml");
    assert_eq!(printed, kept.trim());
}

#[test]
fn both_images_run_as_the_numeric_non_root_user() {
    for image in [NOTIFD_IMAGE, OPERATOR_IMAGE] {
        let user = docker_text(&["image", "inspect", "--format", "{{.Config.User}}", image]);
        assert_eq!(user, "65532:65532", "{image}");
    }
}

#[test]
fn every_dockerfile_is_hadolint_clean() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let standins = std::fs::read_dir(format!("{root}/e2e/env/images")).expect("the stand-ins");
    let mut dockerfiles = vec!["Dockerfile".to_string()];
    for entry in standins {
        let name = entry.expect("an entry").file_name();
        dockerfiles.push(format!(
            "e2e/env/images/{}/Dockerfile",
            name.to_string_lossy()
        ));
    }
    let output = std::process::Command::new("hadolint")
        .current_dir(root)
        .args(&dockerfiles)
        .output()
        .expect("hadolint runs (`just tools` installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(dockerfiles.len() >= 6, "{dockerfiles:?}");
}
