//! The project's images as containers on the test environment's Docker
//! engine: started with `docker run`, removed with their volumes when the
//! test is done with them, whatever happened.

use std::process::{Command, Output};

/// The images `just docker-build-all` builds and tags, which the Helm chart
/// and the samples name.
pub const NOTIFD_IMAGE: &str = "ghcr.io/saasaparilla/notifd:0.1.0";
pub const OPERATOR_IMAGE: &str = "ghcr.io/saasaparilla/notification-operator:0.1.0";

/// Runs `docker args...` and returns its output; fails the test, with what
/// docker said, when it exits non-zero.
pub fn docker(args: &[&str]) -> Output {
    let mut command = Command::new("docker");
    command.args(args);
    succeeded(
        command,
        "docker (the test environment installs it: e2e/env/notif-env up)",
    )
}

/// Runs `command` (`what` names it); fails the test, with what it said, when
/// it cannot run or exits non-zero.
fn succeeded(mut command: Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} does not run: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `docker args...`'s standard output, trimmed.
pub fn docker_text(args: &[&str]) -> String {
    String::from_utf8_lossy(&docker(args).stdout)
        .trim()
        .to_string()
}

/// A container of the test's own, removed (with its anonymous volumes) when
/// dropped.
pub struct Container {
    pub id: String,
}

impl Container {
    /// `docker run --detach` with `args` (options, the image, its arguments).
    pub fn run(args: &[&str]) -> Container {
        let mut all = vec!["run", "--detach"];
        all.extend_from_slice(args);
        Container {
            id: docker_text(&all),
        }
    }

    /// The loopback address that the container's `port` is published on.
    pub fn published(&self, port: u16) -> String {
        let mapping = docker_text(&["port", &self.id, &format!("{port}/tcp")]);
        mapping
            .lines()
            .find(|line| line.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("port {port} is not published on 127.0.0.1: {mapping}"))
            .to_string()
    }

    /// Runs `command` in the container; returns its standard output, trimmed.
    pub fn exec(&self, command: &[&str]) -> String {
        let mut all = vec!["exec", self.id.as_str()];
        all.extend_from_slice(command);
        docker_text(&all)
    }

    /// What the container wrote to its standard output and error so far.
    pub fn logs(&self) -> String {
        let output = docker(&["logs", &self.id]);
        String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", "--volumes", &self.id])
            .output();
    }
}

/// The repository's docker-compose.yml with its `observability` profile, up
/// as a project of the test's own on ports of its own; taken down, volumes
/// included, when dropped.
pub struct Compose {
    pub project: String,
    pub receiver_port: u16,
    pub distributor_port: u16,
    pub prometheus_port: u16,
    /// Whether the `docker compose` plugin is installed, else `docker-compose`.
    plugin: bool,
}

impl Compose {
    /// The project, not up yet.
    pub fn unstarted() -> Compose {
        Compose {
            project: crate::unique_name("compose"),
            receiver_port: crate::notifd::free_port(),
            distributor_port: crate::notifd::free_port(),
            prometheus_port: crate::notifd::free_port(),
            plugin: Command::new("docker")
                .args(["compose", "version"])
                .output()
                .is_ok_and(|o| o.status.success()),
        }
    }

    /// `up -d`: waits for what the services depend on (Kafka's topic,
    /// PostgreSQL and Redis healthy), not for the roles or Prometheus.
    pub fn up() -> Compose {
        let compose = Compose::unstarted();
        compose.run(&["up", "--detach", "--no-build"]);
        compose
    }

    /// Runs the Compose implementation on the project; fails the test, with
    /// what it said, when it exits non-zero.
    pub fn run(&self, args: &[&str]) -> Output {
        let what = "the Compose implementation (the test environment installs docker-compose)";
        succeeded(self.command(args), what)
    }

    /// The `docker compose` plugin where it is installed, else
    /// `docker-compose`, on this project, file and ports.
    fn command(&self, args: &[&str]) -> Command {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker-compose.yml");
        let mut command = if self.plugin {
            let mut docker = Command::new("docker");
            docker.arg("compose");
            docker
        } else {
            Command::new("docker-compose")
        };
        command
            .args(["--project-name", &self.project, "--file", file])
            .args(["--profile", "observability"])
            .args(args)
            .env("NOTIF_RECEIVER_PORT", self.receiver_port.to_string())
            .env("NOTIF_DISTRIBUTOR_PORT", self.distributor_port.to_string())
            .env("NOTIF_PROMETHEUS_PORT", self.prometheus_port.to_string());
        command
    }

    /// The container of `service`.
    pub fn container(&self, service: &str) -> String {
        let output = self.run(&["ps", "--quiet", service]);
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Runs `command` in `service`'s container; its standard output, trimmed.
    pub fn exec(&self, service: &str, command: &[&str]) -> String {
        let mut all = vec!["exec", "-T", service];
        all.extend_from_slice(command);
        String::from_utf8_lossy(&self.run(&all).stdout)
            .trim()
            .to_string()
    }

    /// The project's containers and volumes, as docker lists them.
    pub fn leftovers(&self) -> String {
        let label = format!("label=com.docker.compose.project={}", self.project);
        docker_text(&["ps", "--all", "--quiet", "--filter", &label])
            + &docker_text(&["volume", "ls", "--quiet", "--filter", &label])
    }

    /// `down --volumes`: removes what `up` made.
    pub fn down(&self) {
        self.run(&["down", "--volumes", "--timeout", "5"]);
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "--volumes", "--timeout", "5"])
            .output();
    }
}
