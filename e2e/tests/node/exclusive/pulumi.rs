//! The Pulumi program's Kubernetes target on the node: PostgreSQL, Redis and
//! Kafka as StatefulSets whose pods run and are ready, the connection
//! Secrets the samples name, and the NotificationCluster on top of them,
//! which the operator turns into a service that delivers.

use notif_sdk::{NewNotification, Publisher, Transport};
use serde_json::json;
use sha2::{Digest, Sha256};
use testenv::docker::NOTIFD_IMAGE;
use testenv::pulumi::Stack;

use super::{connected, publish, receive_in_order};
use crate::{API_KEY, POD_TIMEOUT, Release, kubectl_in, run, service_url, token};

/// The images the program names by default, which the test environment
/// makes (`notif-env images`).
const SERVER_IMAGES: [&str; 3] = [
    "postgres:15-bookworm",
    "redis:7.0-bookworm",
    "apache/kafka:4.3.1",
];
const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crds/notificationclusters.notifications.saasaparilla.dev.yaml"
);

#[tokio::test]
async fn pulumi_runs_the_servers_on_the_node_and_the_cluster_made_beside_them_delivers() {
    testenv::control::import_into_node(&[&SERVER_IMAGES[..], &[NOTIFD_IMAGE]].concat()).await;
    let stack = Stack::init("pulumi-k8s").await;
    let namespace = stack.name.clone();
    // The node has no storage provisioner: a volume of the test's own for
    // each claim, on a storage class of the test's own.
    let volumes = Volumes::make(&namespace, 3);
    let tolerations =
        json!([{"key": crate::NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]);
    let annotations =
        json!({"scheduler.alpha.kubernetes.io/defaultTolerations": tolerations.to_string()});
    let hash = format!("sha256:{}", hex::encode(Sha256::digest(API_KEY)));
    for (key, value) in [
        ("namespace", namespace.as_str()),
        ("namespaceAnnotations", &annotations.to_string()),
        ("storageClass", &namespace),
        ("postgresStorage", "1Gi"),
        ("redisStorage", "1Gi"),
        ("kafkaStorage", "1Gi"),
        ("volumesOnDestroy", "delete"),
        ("clusterImage", NOTIFD_IMAGE),
    ] {
        stack.set(key, value).await;
    }
    for (key, value) in [
        ("postgresPassword", "a postgres/password"),
        ("redisPassword", "a-redis-password"),
        ("publisherKeyHashes", &hash),
        ("jwtSecret", "a-pulumi-node-test-jwt-secret-32b"),
    ] {
        stack.set_secret(key, value).await;
    }
    run("kubectl", &["apply", "--server-side", "--filename", CRD]);

    // `up` returns once each StatefulSet's pods are ready.
    let outputs = stack.up().await;
    assert_eq!(outputs["namespace"], namespace.as_str());
    assert_eq!(
        outputs["kafkaBootstrapServers"],
        format!("kafka.{namespace}.svc:9092")
    );
    assert_eq!(
        outputs["postgresUrlSecret"],
        json!({"name": "notif-postgres", "key": "url"})
    );
    let kubectl = |args: &[&str]| kubectl_in(&namespace, args);
    for server in ["postgres", "redis", "kafka"] {
        let ready = kubectl(&[
            "get",
            "statefulset",
            server,
            "--output",
            "jsonpath={.status.readyReplicas}",
        ]);
        assert_eq!(ready, "1", "{server}'s pod is ready");
    }

    let release = Release::install_watching("pulumi-op", &[&namespace]).await;
    let cluster = outputs["cluster"]
        .as_str()
        .expect("the cluster's name")
        .to_string();
    let timeout = format!("--timeout={}s", POD_TIMEOUT.as_secs());
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("notificationcluster/{cluster}"),
        &timeout,
    ]);
    let publisher = Publisher::new(
        &service_url(&namespace, &format!("{cluster}-receiver")),
        API_KEY,
    );
    // The cluster is Ready once its pods are; kube-proxy routes the
    // receiver's Service a moment later.
    let warm_up = [NewNotification::new("nobody", json!({}))];
    testenv::wait_until(
        "the receiver's Service takes a publish",
        POD_TIMEOUT,
        async || publisher.publish(&warm_up).await.is_ok(),
    )
    .await;
    let recipient = testenv::unique_name("pulumi");
    let mut subscription = connected(
        &service_url(&namespace, &format!("{cluster}-distributor")),
        token(&namespace, &cluster, &recipient),
        Transport::WebSocket,
    )
    .await;
    let accepted = publish(&publisher, std::slice::from_ref(&recipient), 10).await;
    receive_in_order(&mut subscription, &recipient, &accepted[0]).await;
    drop(subscription);

    stack.expect_no_changes().await;
    // The operator still runs, to finish the cluster that `destroy` deletes first.
    stack.destroy().await;
    let left = run(
        "kubectl",
        &[
            "get",
            "namespace",
            &namespace,
            "--ignore-not-found",
            "--output",
            "name",
        ],
    );
    assert_eq!(left, "", "destroy leaves nothing: the namespace is gone");
    release.finish().await;
    volumes.remove();
}

/// PersistentVolumes on the node's disk, of a storage class named after the
/// test, which no other claim asks for.
struct Volumes {
    names: Vec<String>,
    dir: std::path::PathBuf,
}

impl Volumes {
    fn make(class: &str, count: usize) -> Volumes {
        let dir = std::env::temp_dir().join(format!("{class}-volumes"));
        let names: Vec<String> = (0..count).map(|i| format!("{class}-{i}")).collect();
        for name in &names {
            let path = dir.join(name);
            std::fs::create_dir_all(&path).expect("a volume's directory");
            // Each image runs as a user of its own.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .expect("the volume's directory is writable");
            let volume = json!({
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name},
                "spec": {
                    "storageClassName": class,
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": path, "type": "Directory"},
                },
            });
            let file = dir.join(format!("{name}.json"));
            std::fs::write(&file, volume.to_string()).expect("the volume's manifest");
            run(
                "kubectl",
                &["apply", "--filename", file.to_str().expect("a path")],
            );
        }
        Volumes { names, dir }
    }

    fn remove(self) {
        for name in &self.names {
            run("kubectl", &["delete", "persistentvolume", name, "--wait"]);
        }
        std::fs::remove_dir_all(&self.dir).expect("the volumes' directories are removed");
    }
}
