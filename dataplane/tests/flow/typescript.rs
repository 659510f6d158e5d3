//! The TypeScript SDK (`sdk/typescript`): its unit tests, its strict type
//! check, what its package holds, the committed bundle the demo page embeds,
//! and the SDK itself against each deployment, in headless Chromium
//! (`e2e/browser/sdk.mjs`) and in Node (`test/integration/node.mjs`).
//! `e2e/browser/setup` (run by `just test`) installs what they need.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use testenv::notifd::Env;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::{API_KEY, JWT_SECRET, Service, on_both};

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/typescript")
}

/// `program args` in `dir`, to completion within `limit`; fails unless it
/// succeeds, showing what it printed.
async fn run(dir: &Path, program: &str, args: &[&str], limit: Duration) -> String {
    assert!(
        sdk_dir().join("node_modules").exists(),
        "the SDK's packages are missing: run e2e/browser/setup (just test does)"
    );
    let command = Command::new(program)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(limit, command)
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} ends within {limit:?}"))
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} fails:\n{}",
        printed(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn printed(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn the_unit_tests_of_the_client_pass() {
    let out = run(
        &sdk_dir(),
        "node",
        &["scripts/test.mjs"],
        Duration::from_secs(60),
    )
    .await;
    let count = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("the runner reports `# {key}`:\n{out}"))
    };
    assert!(count("pass") > 0, "some tests ran:\n{out}");
    assert_eq!(count("fail"), 0, "{out}");
}

#[tokio::test]
async fn the_sdk_type_checks_in_strict_mode() {
    run(
        &sdk_dir(),
        "node",
        &[
            "node_modules/typescript/bin/tsc",
            "--noEmit",
            "-p",
            "tsconfig.json",
        ],
        Duration::from_secs(120),
    )
    .await;
}

#[tokio::test]
async fn the_committed_bundle_is_built_from_the_sources() {
    // The demo page embeds dist/notif.js: it must be what the sources build.
    run(
        &sdk_dir(),
        "node",
        &["scripts/build.mjs", "--check"],
        Duration::from_secs(60),
    )
    .await;
}

#[tokio::test]
async fn the_package_holds_what_a_user_needs_and_nothing_else() {
    let dir = sdk_dir();
    // The declarations are built, not committed; the bundle is committed.
    run(
        &dir,
        "node",
        &["scripts/build.mjs", "--types"],
        Duration::from_secs(120),
    )
    .await;
    let out = run(
        &dir,
        "npm",
        &["pack", "--dry-run", "--json", "--ignore-scripts"],
        Duration::from_secs(60),
    )
    .await;
    let packs: serde_json::Value = serde_json::from_str(&out).expect("npm pack --json");
    let pack = &packs[0];
    let files: BTreeSet<String> = pack["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("a path").to_string())
        .collect();
    let mut expected: BTreeSet<String> = ["LICENSE", "README.md", "package.json", "dist/notif.js"]
        .into_iter()
        .map(String::from)
        .collect();
    for entry in walk(&dir.join("dist/types")) {
        let relative = entry.strip_prefix(&dir).expect("under the package");
        expected.insert(relative.to_string_lossy().into_owned());
    }
    assert!(
        expected.iter().any(|f| f == "dist/types/index.d.ts"),
        "the declarations are built: {expected:?}"
    );
    assert_eq!(files, expected, "the packed files");
    eprintln!(
        "npm pack: {} files, {} bytes packed, {} unpacked",
        files.len(),
        pack["size"],
        pack["unpackedSize"]
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// What the SDK's integration scripts need to know about `service`: its
/// credentials, and where publishers publish (clients connect at the URL
/// the scripts are given).
fn script_env<'a>(command: &'a mut Command, service: &Service) -> &'a mut Command {
    command
        .env("NOTIF_SDK_JWT_SECRET", JWT_SECRET)
        .env("NOTIF_SDK_API_KEY", API_KEY)
        .env("NOTIF_SDK_PUBLISH_URL", service.publish_url())
}

/// Tokens checked with no leeway on their expiry, so that the script's
/// `token` scenario, whose tokens last 4 s, shows them refreshed before
/// they expire.
fn no_leeway() -> Env {
    vec![("NOTIF_JWT_LEEWAY_SECS", "0".to_string())]
}

mod in_chromium_every_transport_delivers_falls_back_resumes_and_refreshes_its_token {
    use super::{Service, in_chromium, no_leeway};

    #[tokio::test]
    async fn distributed() {
        in_chromium(Service::distributed_with(no_leeway()).await).await;
    }

    #[tokio::test]
    async fn standalone() {
        in_chromium(Service::standalone_with(no_leeway()).await).await;
    }
}

async fn in_chromium(mut service: Service) {
    let base = service.connect_url();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/browser/sdk.mjs");
    assert!(
        script.with_file_name("node_modules").exists(),
        "the browser test's packages are missing: run e2e/browser/setup (just test does)"
    );
    let mut child = script_env(Command::new("node").arg(&script).arg(&base), &service)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let mut printed = Vec::new();
    // The script asks for the restart of its `restart` scenario: the
    // process its clients are connected to.
    let session = async {
        while let Some(line) = stdout.next_line().await.expect("its output") {
            if line == "restart" {
                let connected = service.role_mut("distributor");
                let port = connected.http;
                assert!(connected.stop(), "a clean stop");
                connected.start().await;
                assert_eq!(connected.http, port, "restarted on its port");
                stdin.write_all(b"restarted\n").await.expect("the answer");
            } else {
                printed.push(line);
            }
        }
        let mut errors = String::new();
        stderr.read_to_string(&mut errors).await.expect("stderr");
        (child.wait().await.expect("node ends"), errors)
    };
    let (status, errors) = tokio::time::timeout(Duration::from_secs(300), session)
        .await
        .expect("the browser test ends within 5 minutes");
    let printed = printed.join("\n");
    assert!(
        status.success(),
        "the SDK in Chromium:\n{printed}\n{errors}"
    );
    eprintln!("{printed}");
    service.finish().await;
}

on_both!(in_node_every_transport_delivers_and_a_refused_token_is_replaced);
async fn in_node_every_transport_delivers_and_a_refused_token_is_replaced(service: Service) {
    let output = script_env(
        Command::new("node")
            .arg("--experimental-websocket")
            .arg("test/integration/node.mjs")
            .arg(service.connect_url()),
        &service,
    )
    .current_dir(sdk_dir())
    .kill_on_drop(true)
    .output();
    let output = tokio::time::timeout(Duration::from_secs(90), output)
        .await
        .expect("the Node run ends within 90 s")
        .expect("node runs");
    assert!(
        output.status.success(),
        "the SDK in Node:\n{}",
        printed(&output)
    );
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    service.finish().await;
}

#[tokio::test]
async fn the_readme_example_prints_what_alice_is_sent() {
    let service = Service::standalone().await;
    let mut child = Command::new("node")
        .args(["--experimental-websocket", "example.mjs"])
        .current_dir(sdk_dir())
        .env("NOTIFD", env!("CARGO_BIN_EXE_notifd"))
        // `notifd token` signs with the service's secret.
        .env("NOTIF_JWT_SECRET", JWT_SECRET)
        .env("NOTIF_URL", service.connect_url())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let text = "hello from the README";
    let mut printed = Vec::new();
    let shown = async {
        while let Some(line) = lines.next_line().await.expect("its output") {
            if line.starts_with("state:") && line.contains("'connected'") {
                let response = service
                    .http
                    .post(format!("{}/v1/notifications", service.publish_url()))
                    .bearer_auth(API_KEY)
                    .json(&serde_json::json!({"recipient": "alice", "payload": {"text": text}}))
                    .send()
                    .await
                    .expect("publish");
                assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
            }
            if line.starts_with("notification:") {
                return line;
            }
            printed.push(line);
        }
        panic!("the example ended, having printed:\n{}", printed.join("\n"));
    };
    let line = tokio::time::timeout(Duration::from_secs(30), shown)
        .await
        .expect("the example prints the notification within 30 s");
    assert!(
        line.ends_with(r#"{"text":"hello from the README"}"#),
        "{line}"
    );
    service.finish().await;
}
