//! What only the standalone service does: its data directory and its lock,
//! a restart, the development credentials and the commands it prints,
//! `notifd token`, and the demo page in a browser.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;

use crate::{NOTIFD, Service, WsClient};

fn ids(names: &[&str]) -> Vec<(&'static str, String)> {
    names.iter().map(|n| ("alice", n.to_string())).collect()
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_is_refused() {
    let service = Service::standalone().await;
    let second = Command::new(NOTIFD)
        .arg("standalone")
        .arg("--data-dir")
        .arg(service.data_dir())
        .args(["--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .output()
        .expect("notifd runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second one exits: {stderr}");
    assert!(
        stderr.contains("--data-dir") && stderr.contains("is in use by another notifd"),
        "it says why: {stderr}"
    );
    assert_eq!(
        service.publish(&ids(&["still-1"])).await.expect("publish"),
        StatusCode::ACCEPTED,
        "the first one goes on"
    );
    assert_eq!(service.receive_ws("alice", 1).await, ["still-1"]);
    service.finish().await;
}

#[tokio::test]
async fn a_restart_keeps_what_was_not_acknowledged_and_nothing_else() {
    let mut service = Service::standalone().await;
    let accepted = service
        .publish(&ids(&["n1", "n2", "n3"]))
        .await
        .expect("publish");
    assert_eq!(accepted, StatusCode::ACCEPTED);
    service.wait_for_inbox("alice", 3).await;
    let mut client = WsClient::connect(&service, "alice").await;
    assert_eq!(client.ids(3).await, ["n1", "n2", "n3"]);
    client.ack(&["n1".to_string()]).await;
    drop(client);

    assert!(
        service.role_mut("standalone").stop(),
        "SIGTERM: a clean exit"
    );
    service.role_mut("standalone").start().await;
    assert_eq!(
        service.receive_ws("alice", 2).await,
        ["n2", "n3"],
        "after the restart: what was not acknowledged, in order"
    );
    service.finish().await;
}

/// The lines of the welcome text that are commands to run.
fn printed_commands(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn development_credentials_are_made_once_and_the_printed_commands_work() {
    let data_dir = std::env::temp_dir().join(testenv::unique_name("standalone-dev"));
    let mut service = Service::standalone_on(&data_dir, vec![]).await;
    let key_file = data_dir.join("api-key");
    let key = std::fs::read_to_string(&key_file).expect("an API key is kept");
    let mode = std::fs::metadata(&key_file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "only its owner may read the key");
    let private = |path: &Path| {
        let mode = std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only the owner may read {}",
            path.display()
        );
    };
    private(&data_dir);
    for file in [
        "notifd.sqlite",
        "notifd.sqlite-wal",
        "notifd.sqlite-shm",
        "notifd.lock",
    ] {
        private(&data_dir.join(file));
    }
    let welcome = service.role("standalone").stdout();
    assert!(
        welcome.contains(key.trim()),
        "the key is printed: {welcome}"
    );

    // The printed commands, run as printed: a subscription, then a publish.
    let [subscribe, publish] = printed_commands(&welcome)
        .try_into()
        .unwrap_or_else(|c| panic!("two commands to try: {c:?}"));
    let subscriber = std::process::Command::new("timeout")
        .args(["10", "bash", "-c", &subscribe])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("bash runs");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let published = Command::new("bash")
        .args(["-c", &publish])
        .output()
        .expect("bash runs");
    let answer = String::from_utf8_lossy(&published.stdout);
    assert!(
        answer.contains(r#""ids":["#),
        "the publish is accepted: {answer}"
    );
    let received = subscriber.wait_with_output().expect("the subscriber ends");
    let events = String::from_utf8_lossy(&received.stdout);
    assert!(
        events.contains("event: notification") && events.contains(r#""text":"hello""#),
        "the subscription receives it: {events}"
    );

    // `notifd token` signs with the kept secret; a restart keeps both.
    let token = Command::new(NOTIFD)
        .args(["token", "--recipient", "alice", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("notifd token runs");
    assert!(token.status.success());
    assert!(service.role_mut("standalone").stop());
    service.role_mut("standalone").start().await;
    assert!(service.role("standalone").stdout().contains(key.trim()));
    let token = String::from_utf8(token.stdout).expect("text");
    let url = format!(
        "http://127.0.0.1:{}/v1/connect/poll?token={}&wait=0",
        service.role("distributor").http,
        token.trim()
    );
    let poll = service.http.get(url).send().await.expect("poll");
    assert_eq!(poll.status(), StatusCode::OK, "the token still works");
    service.finish().await;
}

#[tokio::test]
async fn the_demo_page_hands_out_tokens_only_on_development_credentials() {
    let service = Service::standalone().await;
    let base = format!("http://127.0.0.1:{}", service.role("receiver").http);
    let page = service.http.get(&base).send().await.expect("the page");
    assert_eq!(page.status(), StatusCode::OK);
    let tokens = service
        .http
        .get(format!("{base}/demo/tokens?recipient=alice"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        tokens.status(),
        StatusCode::NOT_FOUND,
        "configured credentials: no tokens for anyone who asks"
    );
    service.finish().await;
}

#[tokio::test]
async fn the_demo_page_works_in_a_browser() {
    let data_dir = std::env::temp_dir().join(testenv::unique_name("standalone-demo"));
    let service = Service::standalone_on(&data_dir, vec![]).await;
    let base = format!("http://127.0.0.1:{}", service.role("receiver").http);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/browser/demo.mjs");
    assert!(
        script.with_file_name("node_modules").exists(),
        "the browser test's packages are missing: run e2e/browser/setup (just test does)"
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo.png");
    let _ = std::fs::remove_file(&screenshot);
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&base)
        .arg(&screenshot)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test ends within 2 minutes")
        .expect("node runs");
    assert!(
        output.status.success(),
        "the demo works in Chromium:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "a screenshot is kept at {}", screenshot.display());
    service.finish().await;
}

#[tokio::test]
async fn the_demo_tokens_are_only_for_a_browser_on_this_machine() {
    let data_dir = std::env::temp_dir().join(testenv::unique_name("standalone-demo-tokens"));
    let service = Service::standalone_on(&data_dir, vec![]).await;
    let port = service.role("receiver").http;
    let tokens = async |host: &str| {
        service
            .http
            .get(format!(
                "http://127.0.0.1:{port}/demo/tokens?recipient=alice"
            ))
            .header("host", host)
            .send()
            .await
            .expect("an answer")
    };
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let answer = tokens(&host).await;
        assert_eq!(answer.status(), StatusCode::OK, "Host: {host}");
    }
    // A page on another name that resolves here (DNS rebinding) gets none.
    let answer = tokens(&format!("rebound.example:{port}")).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let error: serde_json::Value = answer.json().await.expect("a JSON error");
    assert_eq!(error["error"]["code"], "forbidden");
    service.finish().await;
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed_and_publishing_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // This process holds the connections: it needs the files.
    rlimit::increase_nofile_limit(10_000).expect("a higher open-files limit");
    let service = Service::standalone_with(vec![
        ("NOTIF_HEADER_READ_TIMEOUT_SECS", "2".to_string()),
        ("NOTIF_MAX_CONNECTIONS", "2500".to_string()),
    ])
    .await;
    let address = format!("127.0.0.1:{}", service.role("receiver").http);
    let mut partial = Vec::new();
    for _ in 0..2_000 {
        let mut socket = tokio::net::TcpStream::connect(&address)
            .await
            .expect("a connection");
        socket
            .write_all(b"POST /v1/notifications HTTP/1.1\r\nHost: loc")
            .await
            .expect("part of the headers");
        partial.push(socket);
    }
    let started = std::time::Instant::now();
    service
        .publish_accepted(&[("alice", "beside-stalled-1".to_string())])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a publish beside 2,000 stalled connections took {:?}",
        started.elapsed()
    );
    let closing = partial.iter_mut().map(|socket| async move {
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });
    tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(closing))
        .await
        .expect("every stalled connection is closed within the header timeout");
    service.finish().await;
}

/// What `notifd standalone` on the development credentials writes to its
/// log (warnings and worse) by the time it says it is running, listening
/// on `http_addr`.
async fn warnings_on_development_credentials(http_addr: &str) -> String {
    let data_dir = std::env::temp_dir().join(testenv::unique_name("standalone"));
    let mut notifd = tokio::process::Command::new(NOTIFD)
        .arg("standalone")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--http-addr", http_addr, "--admin-addr", "127.0.0.1:0"])
        .env("NOTIF_LOG", "warn")
        .env_remove("NOTIF_API_KEY_HASHES")
        .env_remove("NOTIF_JWT_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("notifd runs");
    let mut stdout = tokio::io::BufReader::new(notifd.stdout.take().expect("its output"));
    let mut line = String::new();
    let admin = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncBufReadExt;
        while stdout.read_line(&mut line).await.expect("its output") > 0 {
            // "  admin:    http://127.0.0.1:PORT/metrics /healthz /readyz"
            if let Some(url) = line.trim().strip_prefix("admin:") {
                return url
                    .trim()
                    .split(' ')
                    .next()
                    .map(|metrics| metrics.replace("/metrics", ""));
            }
            line.clear();
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("it prints its admin port");
    // Ready only after the warning would have been written.
    testenv::wait_until("it is ready", Duration::from_secs(30), async || {
        reqwest::get(format!("{admin}/readyz"))
            .await
            .is_ok_and(|answer| answer.status() == StatusCode::OK)
    })
    .await;
    notifd.start_kill().expect("stopped");
    let output = notifd.wait_with_output().await.expect("its log");
    let _ = std::fs::remove_dir_all(&data_dir);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn development_credentials_served_beyond_this_machine_are_warned_of() {
    const WARNING: &str = "the development credentials are served beyond this machine";
    let loopback = warnings_on_development_credentials("127.0.0.1:0").await;
    assert!(
        !loopback.contains(WARNING),
        "on loopback, no warning: {loopback}"
    );
    // Every address of this machine; no traffic goes anywhere but loopback.
    let everywhere = warnings_on_development_credentials("0.0.0.0:0").await;
    assert!(
        everywhere.contains(WARNING),
        "on every address, a warning: {everywhere}"
    );
}
