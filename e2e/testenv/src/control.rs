//! Stopping and starting one server of the environment, for fault tests.
//!
//! These go through `e2e/env/notif-env`, the same commands a person uses.
//! A test that stops a shared server must run alone: `just test` runs the
//! tests named `exclusive::…` after the parallel ones, one at a time.

use std::path::PathBuf;
use std::process::Command;

/// The servers of the environment, by the names `notif-env` knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Redis,
    Kafka,
    Etcd,
    KubeApiserver,
    KubeControllerManager,
}

impl Server {
    pub const ALL: [Server; 6] = [
        Server::Postgres,
        Server::Redis,
        Server::Kafka,
        Server::Etcd,
        Server::KubeApiserver,
        Server::KubeControllerManager,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Server::Postgres => "postgres",
            Server::Redis => "redis",
            Server::Kafka => "kafka",
            Server::Etcd => "etcd",
            Server::KubeApiserver => "kube-apiserver",
            Server::KubeControllerManager => "kube-controller-manager",
        }
    }
}

/// Stops `server` gracefully (the way its operator would) and waits until it is gone.
pub async fn stop(server: Server) {
    notif_env(&["stop", server.name()]).await;
}

/// Kills `server` with SIGKILL: a crash, with no chance to clean up.
pub async fn kill(server: Server) {
    notif_env(&["kill", server.name()]).await;
}

/// Starts `server` again and waits until it is ready.
pub async fn start(server: Server) {
    notif_env(&["start", server.name()]).await;
}

/// Whether `server` is running and answering, as `notif-env status` sees it.
pub async fn is_ready(server: Server) -> bool {
    run(&["status", server.name()]).await.status.success()
}

/// Copies images from the Docker engine into the node's containerd, where
/// its pods find them without a pull.
pub async fn import_into_node(images: &[&str]) {
    notif_env(&[&["node-import"], images].concat()).await;
}

async fn notif_env(args: &[&str]) {
    let output = run(args).await;
    assert!(
        output.status.success(),
        "`notif-env {}` failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn run(args: &[&str]) -> std::process::Output {
    let script = script();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(&script)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
    })
    .await
    .expect("the notif-env task")
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../env/notif-env")
}
