//! The service as a platform team runs it: the operator's Helm chart
//! installed on the test environment's real node (containerd, kubelet,
//! kube-scheduler, kube-proxy), every pod from the images that `just
//! docker-build-all` built, imported into the node's containerd. Clients
//! reach the pods from loopback, as from outside the node: publishers
//! through a port-forward to the receivers' Service, subscribers through the
//! distributors' NodePort.
//!
//! The node takes only the pods of namespaces that tolerate its taint (the
//! operator's other tests play the kubelet in theirs): each test's namespace
//! carries that toleration as its default.

mod adapter;
mod exclusive;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testenv::docker::{NOTIFD_IMAGE, OPERATOR_IMAGE};
use testenv::{TestDatabase, apply_secret, kube_client};

/// The taint the node registers with (`NODE_TAINT` in notif-env).
const NODE_TAINT: &str = "notif.saasaparilla.dev/real-node";

/// The publishers' API key, whose hash the cluster's Secret holds.
pub const API_KEY: &str = "sk_node_test_publisher";

/// How long pods may take to be scheduled, started and ready.
pub const POD_TIMEOUT: Duration = Duration::from_secs(180);

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/notification-operator"
);
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples");

/// An address of the environment's servers as pods reach them.
fn node_server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests with `just test`, or export the environment with `eval \"$(e2e/env/notif-env env)\"`")
    })
}

/// Runs a command to its end.
fn output(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (the test environment puts it on PATH): {e}")
        })
}

/// Runs a command; returns its stdout, or fails the test with its stderr.
fn run(program: &str, args: &[&str]) -> String {
    let output = output(program, args);
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The operator's chart installed by `helm` into a namespace of its own,
/// which holds the Secrets the samples name, pointing at the environment's
/// servers (the inbox at a database of the release's own).
pub struct Release {
    pub namespace: String,
    release: String,
    database: TestDatabase,
}

impl Release {
    pub async fn install(prefix: &str) -> Release {
        Release::install_watching(prefix, &[]).await
    }

    /// A release whose operator also reconciles the clusters of `others`,
    /// namespaces that exist already.
    pub async fn install_watching(prefix: &str, others: &[&str]) -> Release {
        testenv::control::import_into_node(&[NOTIFD_IMAGE, OPERATOR_IMAGE]).await;
        let client = kube_client().await;
        let namespace = testenv::unique_name(prefix);
        let tolerations =
            json!([{"key": NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]);
        let object: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": namespace,
                "annotations": {"scheduler.alpha.kubernetes.io/defaultTolerations": tolerations.to_string()},
            }
        }))
        .expect("a namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {namespace}: {e}"));
        let database = TestDatabase::create("node").await;
        let hash = format!("sha256:{}", hex::encode(Sha256::digest(API_KEY)));
        let postgres = database.url_through(&node_server("NOTIF_NODE_POSTGRES"));
        for secret in [
            (
                "notif-redis",
                "url",
                node_server("NOTIF_NODE_REDIS").as_str(),
            ),
            ("notif-postgres", "url", &postgres),
            ("notif-publishers", "hashes", &hash),
            ("notif-jwt", "secret", "a-node-test-secret"),
        ] {
            apply_secret(&client, &namespace, "node-test", secret).await;
        }
        let release = Release {
            release: format!("op-{}", &namespace[namespace.len() - 6..]),
            namespace,
            database,
        };
        let timeout = format!("{}s", POD_TIMEOUT.as_secs());
        let watched = [&[release.namespace.as_str()], others].concat().join(",");
        let watch = format!("watchNamespaces={{{watched}}}");
        run(
            "helm",
            &[
                "install",
                &release.release,
                CHART,
                "--namespace",
                &release.namespace,
                "--set",
                &watch,
                "--set",
                "logFormat=text",
                "--wait",
                "--timeout",
                &timeout,
            ],
        );
        release
    }

    /// `kubectl` in the release's namespace.
    pub fn kubectl(&self, args: &[&str]) -> String {
        kubectl_in(&self.namespace, args)
    }

    /// `kubectl` in the release's namespace; its stdout if it succeeded.
    pub fn try_kubectl(&self, args: &[&str]) -> Option<String> {
        let output = output(
            "kubectl",
            &[&["--namespace", &self.namespace], args].concat(),
        );
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits until a Deployment's rollout has finished.
    pub fn rollout_status(&self, deployment: &str) {
        let timeout = format!("--timeout={}s", POD_TIMEOUT.as_secs());
        self.kubectl(&["rollout", "status", deployment, &timeout]);
    }

    /// The operator replica that holds the leader's Lease, if one does.
    pub fn lease_holder(&self) -> Option<String> {
        let lease = format!("{}-notification-operator", self.release);
        self.try_kubectl(&[
            "get",
            "lease",
            &lease,
            "--output",
            "jsonpath={.spec.holderIdentity}",
        ])
    }

    /// Applies the minimal sample on the environment's Kafka, with a topic of
    /// its own and the distributors on a NodePort. Returns the cluster's name
    /// once it reports Ready.
    pub fn apply_minimal(&self) -> String {
        let sample =
            std::fs::read_to_string(format!("{SAMPLES}/minimal.yaml")).expect("the sample");
        let mut cluster: Value = serde_yaml::from_str(&sample).expect("the sample's YAML");
        cluster["spec"]["kafka"]["bootstrapServers"] = json!(node_server("NOTIF_NODE_KAFKA"));
        cluster["spec"]["kafka"]["replicationFactor"] = json!(1);
        cluster["spec"]["kafka"]["topic"] = json!(testenv::unique_name("nc-node"));
        cluster["spec"]["distributor"]["serviceType"] = json!("NodePort");
        // JSON is YAML.
        self.apply(&cluster.to_string());
        let name = cluster["metadata"]["name"]
            .as_str()
            .expect("a name")
            .to_string();
        self.wait_ready(&name);
        name
    }

    /// Applies a manifest in the release's namespace, where `NAMESPACE`
    /// stands for it.
    pub fn apply_manifest(&self, manifest: &str) {
        self.apply(&manifest.replace("NAMESPACE", &self.namespace));
    }

    /// `kubectl apply` of `yaml` in the release's namespace.
    fn apply(&self, yaml: &str) {
        let file = std::env::temp_dir().join(format!("{}.yaml", self.namespace));
        std::fs::write(&file, yaml).expect("a file for kubectl");
        self.kubectl(&["apply", "--filename", file.to_str().expect("a path")]);
    }

    /// Waits until the cluster reports Ready (all its components' pods are).
    pub fn wait_ready(&self, cluster: &str) {
        let timeout = format!("--timeout={}s", POD_TIMEOUT.as_secs());
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("notificationcluster/{cluster}"),
            &timeout,
        ]);
    }

    /// The pods of one component of `cluster` (`receiver`, `director`,
    /// `distributor`), by name.
    pub fn pods(&self, cluster: &str, component: &str) -> Vec<String> {
        let selector =
            format!("app.kubernetes.io/instance={cluster},app.kubernetes.io/component={component}");
        self.kubectl(&[
            "get",
            "pods",
            "--selector",
            &selector,
            "--output",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(String::from)
        .collect()
    }

    /// The URL of the distributors' NodePort on loopback.
    pub fn connect_url(&self, cluster: &str) -> String {
        let port = self.kubectl(&[
            "get",
            "service",
            &format!("{cluster}-distributor"),
            "--output",
            "jsonpath={.spec.ports[?(@.name==\"http\")].nodePort}",
        ]);
        format!("http://127.0.0.1:{}", port.trim())
    }

    /// The URL of `service`'s HTTP port at its cluster address.
    pub fn service_url(&self, service: &str) -> String {
        service_url(&self.namespace, service)
    }

    /// A client token for `recipient` of `cluster`.
    pub fn token(&self, cluster: &str, recipient: &str) -> String {
        token(&self.namespace, cluster, recipient)
    }

    /// A port-forward from loopback to `port` of the Service `service`.
    pub fn port_forward(&self, service: &str, port: u16) -> PortForward {
        PortForward::start(&self.namespace, &format!("service/{service}"), port)
    }

    /// Uninstalls the chart and deletes the namespace (a failed test's
    /// stays for a look).
    pub async fn finish(self) {
        run(
            "helm",
            &[
                "uninstall",
                &self.release,
                "--namespace",
                &self.namespace,
                "--wait",
            ],
        );
        Api::<Namespace>::all(kube_client().await)
            .delete(&self.namespace, &DeleteParams::default())
            .await
            .expect("the namespace is deleted");
        self.database.drop_database().await;
    }
}

/// `kubectl` in `namespace`.
pub fn kubectl_in(namespace: &str, args: &[&str]) -> String {
    run("kubectl", &[&["--namespace", namespace], args].concat())
}

/// The URL of the HTTP port of `service` in `namespace` at its cluster
/// address, which kube-proxy routes on this machine as on any node.
pub fn service_url(namespace: &str, service: &str) -> String {
    let ip = kubectl_in(
        namespace,
        &[
            "get",
            "service",
            service,
            "--output",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    format!("http://{}:8080", ip.trim())
}

/// A client token for `recipient` of `cluster` in `namespace`, as a user
/// makes one: `notifd token` in a distributor's pod, with the cluster's
/// secret.
pub fn token(namespace: &str, cluster: &str, recipient: &str) -> String {
    kubectl_in(
        namespace,
        &[
            "exec",
            &format!("deployment/{cluster}-distributor"),
            "--",
            "notifd",
            "token",
            "--recipient",
            recipient,
        ],
    )
    .trim()
    .to_string()
}

/// `kubectl port-forward` to a Service: it picks one of its pods.
pub struct PortForward {
    child: Child,
    pub url: String,
}

impl PortForward {
    fn start(namespace: &str, target: &str, port: u16) -> PortForward {
        let mut child = Command::new("kubectl")
            .args([
                "--namespace",
                namespace,
                "port-forward",
                target,
                &format!(":{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kubectl port-forward starts");
        // "Forwarding from 127.0.0.1:41234 -> 8080"
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        stdout
            .read_line(&mut line)
            .expect("kubectl port-forward says where it listens");
        // It writes a line for each connection: read them, or it stops on a
        // closed pipe.
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(drop));
        let address = line
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("kubectl port-forward said {line:?}"));
        PortForward {
            child,
            url: format!("http://{address}"),
        }
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
