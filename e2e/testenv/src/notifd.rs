//! `notifd` as processes, for whole-system tests and benchmarks: the three
//! roles on the test servers, or `notifd standalone` on a data directory.
//! Each process gets loopback ports of its own and is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::TestDatabase;

/// Environment variables for a process.
pub type Env = Vec<(&'static str, String)>;

/// A free loopback port (free now; the process binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `notifd <role>` with none of this process's `NOTIF_` settings (the test
/// servers' `NOTIF_TEST_` ones aside): only what the test gives it.
pub fn bare_command(binary: &Path, role: &str) -> Command {
    let mut command = Command::new(binary);
    command.arg(role);
    for (key, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("NOTIF_") && !k.starts_with("NOTIF_TEST_"))
    {
        command.env_remove(key);
    }
    command
}

/// The processes' log filter: warnings, or `NOTIF_TEST_LOG` when set (as
/// `NOTIF_LOG` takes it) to see more of a run.
fn log_filter() -> String {
    std::env::var("NOTIF_TEST_LOG").unwrap_or_else(|_| "warn".to_string())
}

/// Sends a child process SIGTERM and waits for it to exit; returns whether
/// it exited cleanly (a graceful stop, as Kubernetes asks for one).
pub fn terminate(mut child: Child) -> bool {
    signal(child.id(), "TERM");
    child.wait().expect("it exits").success()
}

/// Sends process `pid` the signal `name` (`TERM`, `STOP`, `CONT`).
fn signal(pid: u32, name: &str) {
    let signalled = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success(), "SIG{name} sent");
}

/// One `notifd` process: `notifd <name>`.
pub struct Process {
    /// The subcommand: `receiver`, `director`, `distributor` or `standalone`.
    pub name: &'static str,
    binary: PathBuf,
    env: Env,
    child: Option<Child>,
    pub http: u16,
    pub admin: u16,
    /// The port where directors forward to it (a distributor's only).
    pub forward: u16,
    /// Where its standard output goes.
    stdout: PathBuf,
}

impl Process {
    pub fn new(binary: &Path, name: &'static str, env: Env) -> Process {
        Process {
            name,
            binary: binary.to_path_buf(),
            env,
            child: None,
            http: free_port(),
            admin: free_port(),
            forward: free_port(),
            stdout: std::env::temp_dir().join(crate::unique_name("notifd-stdout")),
        }
    }

    /// Another process like this one (same role and settings), on ports of
    /// its own, not started.
    pub fn twin(&self) -> Process {
        Process::new(&self.binary, self.name, self.env.clone())
    }

    /// The value of one of its environment variables.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets one of its environment variables, or removes it (`None`), for
    /// its next start.
    pub fn set_env(&mut self, key: &'static str, value: Option<String>) {
        self.env.retain(|(k, _)| *k != key);
        self.env.extend(value.map(|v| (key, v)));
    }

    /// What it printed to standard output.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process and waits until its /readyz says ready. A process
    /// that exits first, as when another test took one of its free ports in
    /// the meantime, is started again on new ports.
    pub async fn start(&mut self) {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            if self.try_start().await {
                return;
            }
            assert!(
                attempt < ATTEMPTS,
                "notifd {} exited before it was ready, {ATTEMPTS} times",
                self.name
            );
            self.http = free_port();
            self.admin = free_port();
            self.forward = free_port();
        }
    }

    /// Starts it; true once ready, false if it exited before that.
    async fn try_start(&mut self) -> bool {
        let mut command = Command::new(&self.binary);
        command
            .arg(self.name)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("NOTIF_HTTP_ADDR", format!("127.0.0.1:{}", self.http))
            .env("NOTIF_ADMIN_ADDR", format!("127.0.0.1:{}", self.admin))
            .env("NOTIF_FORWARD_ADDR", format!("127.0.0.1:{}", self.forward))
            .env("NOTIF_LOG", log_filter())
            .stdout(std::fs::File::create(&self.stdout).expect("a file for its output"))
            .stderr(Stdio::inherit());
        let child = self.child.insert(command.spawn().expect("notifd starts"));
        let (client, readyz) = (
            reqwest::Client::new(),
            format!("http://127.0.0.1:{}/readyz", self.admin),
        );
        let mut exited = false;
        crate::wait_until(
            &format!("notifd {} is ready", self.name),
            Duration::from_secs(30),
            async || {
                exited = child.try_wait().expect("its status").is_some();
                exited
                    || client
                        .get(&readyz)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
        if exited {
            self.child = None;
        }
        !exited
    }

    /// SIGTERM, and waits for it to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        self.child.take().is_some_and(terminate)
    }

    /// SIGSTOP: it holds its connections and answers nothing, like a
    /// server that hangs or a peer behind a network that drops packets.
    pub fn pause(&self) {
        signal(self.pid().expect("it runs"), "STOP");
    }

    /// SIGCONT: it goes on after [`Process::pause`].
    pub fn resume(&self) {
        signal(self.pid().expect("it runs"), "CONT");
    }

    /// SIGKILL: a crash, nothing flushed or committed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.stdout);
    }
}

/// What a deployment keeps its data in, removed by [`Deployment::finish`].
pub enum Storage {
    Database(TestDatabase),
    /// The inbox's shards.
    Shards(Vec<TestDatabase>),
    DataDir(PathBuf),
}

/// The whole message path, on servers or a data directory of its own.
pub struct Deployment {
    /// receiver, director and distributor; or standalone.
    pub processes: Vec<Process>,
    pub storage: Storage,
}

impl Deployment {
    /// The three roles on a topic, database and Redis key prefix of their
    /// own; `env` (credentials, timings, a Redis Cluster) goes to each.
    pub async fn distributed(binary: &Path, partitions: i32, env: Env) -> Deployment {
        let db = TestDatabase::create("notifd").await;
        // Presence on the one Redis, unless `env` names a Redis Cluster.
        let presence = match env
            .iter()
            .any(|(key, _)| *key == "NOTIF_REDIS_CLUSTER_URLS")
        {
            true => None,
            false => Some(("NOTIF_REDIS_URL", crate::redis_url())),
        };
        let storage = [("NOTIF_POSTGRES_URL", db.url.clone())];
        let env = storage.into_iter().chain(presence).chain(env).collect();
        Deployment::roles(binary, 1, partitions, env, Storage::Database(db)).await
    }

    /// `instances` of each role, as a service scaled out runs: directors in
    /// one consumer group over the topic's partitions, presence on the Redis
    /// Cluster, the inbox sharded over both PostgreSQL servers.
    pub async fn scaled(binary: &Path, instances: usize, partitions: i32, env: Env) -> Deployment {
        let shards = vec![
            TestDatabase::create_on(&crate::postgres_url(), "notifd").await,
            TestDatabase::create_on(&crate::second_postgres_url(), "notifd").await,
        ];
        let urls: Vec<&str> = shards.iter().map(|db| db.url.as_str()).collect();
        let env = [
            ("NOTIF_POSTGRES_SHARD_URLS", urls.join(",")),
            (
                "NOTIF_REDIS_CLUSTER_URLS",
                crate::redis_cluster_urls().join(","),
            ),
        ]
        .into_iter()
        .chain(env)
        .collect();
        Deployment::roles(binary, instances, partitions, env, Storage::Shards(shards)).await
    }

    /// `instances` of each role on a topic, consumer group and Redis key
    /// prefix of their own, with `env` (where the inbox and presence are).
    async fn roles(
        binary: &Path,
        instances: usize,
        partitions: i32,
        env: Env,
        storage: Storage,
    ) -> Deployment {
        let topic = crate::kafka::create_topic("notifd", partitions).await;
        let shared: Env = [
            ("NOTIF_KAFKA_BOOTSTRAP_SERVERS", crate::kafka_bootstrap()),
            ("NOTIF_KAFKA_TOPIC", topic),
            ("NOTIF_KAFKA_GROUP", crate::unique_name("notifd")),
            (
                "NOTIF_REDIS_KEY_PREFIX",
                format!("{}:", crate::unique_name("notifd")),
            ),
            ("NOTIF_FORWARD_SECRET", crate::unique_name("forward-secret")),
        ]
        .into_iter()
        .chain(env)
        .collect();
        let mut processes: Vec<Process> = ["receiver", "director", "distributor"]
            .into_iter()
            .flat_map(|role| std::iter::repeat_n(role, instances))
            .map(|role| Process::new(binary, role, shared.clone()))
            .collect();
        // The directors make the inbox's schema, which the distributors read.
        for process in processes.iter_mut().filter(|p| p.name == "director") {
            process.start().await;
        }
        for process in processes.iter_mut().filter(|p| p.name != "director") {
            process.start().await;
        }
        Deployment { processes, storage }
    }

    /// `notifd standalone` on `data_dir`, with `env`.
    pub async fn standalone(binary: &Path, data_dir: &Path, env: Env) -> Deployment {
        let env = [("NOTIF_DATA_DIR", data_dir.display().to_string())]
            .into_iter()
            .chain(env)
            .collect();
        let mut process = Process::new(binary, "standalone", env);
        process.start().await;
        Deployment {
            processes: vec![process],
            storage: Storage::DataDir(data_dir.to_path_buf()),
        }
    }

    /// The process that plays `role` (the first, where there are several):
    /// itself, or the standalone process.
    pub fn role(&self, role: &str) -> &Process {
        &self.processes[self.role_index(role)]
    }

    /// Every process that plays `role`, running or not.
    pub fn instances(&self, role: &str) -> impl Iterator<Item = &Process> {
        self.processes
            .iter()
            .filter(move |p| p.name == role || p.name == "standalone")
    }

    pub fn role_mut(&mut self, role: &str) -> &mut Process {
        let index = self.role_index(role);
        &mut self.processes[index]
    }

    fn role_index(&self, role: &str) -> usize {
        self.processes
            .iter()
            .position(|p| p.name == role || p.name == "standalone")
            .unwrap_or_else(|| panic!("no process plays the {role}"))
    }

    /// Stops every process and removes what they stored.
    pub async fn finish(self) {
        let Deployment { processes, storage } = self;
        drop(processes); // Killed, so that nothing holds the storage.
        match storage {
            Storage::Database(db) => db.drop_database().await,
            Storage::Shards(dbs) => {
                for db in dbs {
                    db.drop_database().await;
                }
            }
            Storage::DataDir(path) => {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}
