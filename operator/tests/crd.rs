//! The NotificationCluster CRD on the test environment's real kube-apiserver:
//! it installs, the samples apply with their defaults filled in by the server,
//! and bad specs are refused by the server with a message naming the field.
//!
//! Every test installs the CRD itself (server-side apply, forced, under one
//! field manager), so they can run in any order and at the same time.

use std::path::PathBuf;

use kube::api::{ApiResource, DynamicObject, GetParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use operator::crd::NotificationCluster;
use serde_json::{Value, json};
use testenv::{create_namespace, kube_client};

mod common;

use common::{FIELD_MANAGER, delete_namespace, install_crd, read_sample, samples_dir};

/// The CRD installed and a namespace to work in, with an untyped API for
/// NotificationClusters in it: objects go to the server as written, without
/// the client filling in defaults.
async fn setup(prefix: &str) -> (Client, String, Api<DynamicObject>) {
    let client = kube_client().await;
    install_crd(&client).await;
    let namespace = create_namespace(&client, prefix).await;
    let resource = ApiResource::erase::<NotificationCluster>(&());
    let api = Api::namespaced_with(client.clone(), &namespace, &resource);
    (client, namespace, api)
}

fn minimal(name: &str) -> Value {
    let mut sample = read_sample(&samples_dir().join("minimal.yaml"));
    sample["metadata"]["name"] = json!(name);
    sample
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("a NotificationCluster as a DynamicObject")
}

#[tokio::test]
async fn every_sample_applies_and_reads_back_with_its_defaults() {
    let (client, namespace, api) = setup("nc-samples").await;
    let mut samples: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .expect("config/samples")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 3, "too few samples: {samples:?}");

    for path in samples {
        let sample = read_sample(&path);
        // What the Rust types make of the sample, with serde's defaults.
        let typed: NotificationCluster = serde_json::from_value(sample.clone())
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        let name = typed.name_any();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(object(sample)),
        )
        .await
        .unwrap_or_else(|e| panic!("{} is refused: {e}", path.display()));

        let read = api.get(&name).await.expect("read the sample back");
        // The server filled in the same defaults as serde does.
        assert_eq!(
            read.data["spec"],
            serde_json::to_value(&typed.spec).expect("the spec serializes"),
            "{}: the server's defaults differ from the types'",
            path.display()
        );
    }

    // The minimal sample's defaults, spelled out.
    let read = api.get("minimal").await.expect("read minimal back");
    let spec = &read.data["spec"];
    assert_eq!(spec["kafka"]["topic"], "notifications");
    assert_eq!(spec["kafka"]["partitions"], 12);
    assert_eq!(spec["kafka"]["replicationFactor"], 3);
    assert_eq!(spec["kafka"]["retentionHours"], 168);
    assert_eq!(spec["redis"]["keyPrefix"], "notif:");
    assert_eq!(
        spec["delivery"],
        json!({"attempts": 3, "retryBackoffMs": 200, "ackTimeoutSecs": 10, "inboxRetentionHours": 168, "window": 128, "maxHeld": 10000})
    );
    assert_eq!(spec["receiver"], json!({"replicas": 1}));
    assert_eq!(spec["director"], json!({"replicas": 1}));
    assert_eq!(
        spec["distributor"],
        json!({"replicas": 1, "serviceType": "ClusterIP"})
    );
    assert_eq!(spec["deletionPolicy"], "Keep");
    assert_eq!(
        spec["clusterOperation"],
        json!({"reconciliationPaused": false, "stopped": false})
    );
    assert_eq!(spec["auth"]["allowAnonymousPublish"], false);
    assert_eq!(spec["auth"]["jwt"]["algorithm"], "RS256");

    delete_namespace(&client, &namespace).await;
}

/// A spec the server must refuse, and what its message must contain.
struct Invalid {
    what: &'static str,
    change: fn(&mut Value),
    expected: &'static [&'static str],
}

const INVALID: &[Invalid] = &[
    Invalid {
        what: "autoscaling minReplicas above maxReplicas",
        change: |spec| {
            spec["receiver"] =
                json!({"autoscaling": {"enabled": true, "minReplicas": 5, "maxReplicas": 2}})
        },
        expected: &[
            "spec.receiver.autoscaling",
            "minReplicas must not exceed maxReplicas",
        ],
    },
    Invalid {
        what: "no partitions",
        change: |spec| spec["kafka"]["partitions"] = json!(0),
        expected: &["spec.kafka.partitions"],
    },
    Invalid {
        what: "a Secret reference without a key",
        change: |spec| spec["redis"]["url"] = json!({"name": "notif-redis"}),
        expected: &["spec.redis.url.key", "Required value"],
    },
    Invalid {
        what: "a Secret reference with an empty name",
        change: |spec| spec["postgres"]["url"]["name"] = json!(""),
        expected: &["spec.postgres.url.name"],
    },
    Invalid {
        what: "an unknown Service type",
        change: |spec| spec["distributor"] = json!({"serviceType": "Ingress"}),
        expected: &["spec.distributor.serviceType", "Unsupported value"],
    },
    Invalid {
        what: "an unknown deletion policy",
        change: |spec| spec["deletionPolicy"] = json!("Purge"),
        expected: &["spec.deletionPolicy", "Unsupported value"],
    },
    Invalid {
        what: "negative replicas",
        change: |spec| spec["director"] = json!({"replicas": -1}),
        expected: &["spec.director.replicas"],
    },
    Invalid {
        what: "both a JWT secret and a public key",
        change: |spec| {
            spec["auth"]["jwt"]["publicKey"] = json!({"name": "notif-jwt", "key": "public.pem"})
        },
        expected: &["spec.auth.jwt", "set exactly one of secret and publicKey"],
    },
    Invalid {
        what: "no image",
        change: |spec| {
            spec.as_object_mut()
                .expect("spec is an object")
                .remove("image");
        },
        expected: &["spec.image", "Required value"],
    },
    Invalid {
        what: "an unknown SASL mechanism",
        change: |spec| {
            spec["kafka"]["sasl"] = json!({
                "mechanism": "GSSAPI",
                "username": {"name": "kafka", "key": "username"},
                "password": {"name": "kafka", "key": "password"},
            })
        },
        expected: &["spec.kafka.sasl.mechanism", "Unsupported value"],
    },
    Invalid {
        what: "shards being added to an inbox that is not sharded",
        change: |spec| spec["postgres"]["shardsBefore"] = json!(1),
        expected: &["spec.postgres", "shardsBefore needs sharded: true"],
    },
    Invalid {
        what: "storing as before without shards being added",
        change: |spec| {
            spec["postgres"]["sharded"] = json!(true);
            spec["postgres"]["storeAsBefore"] = json!(true);
        },
        expected: &["spec.postgres", "storeAsBefore needs shardsBefore"],
    },
    Invalid {
        what: "neither publisher keys nor anonymous publishing",
        change: |spec| {
            spec["auth"]
                .as_object_mut()
                .expect("auth is an object")
                .remove("apiKeyHashes");
        },
        expected: &[
            "spec.auth",
            "set apiKeyHashes, or allowAnonymousPublish: true",
        ],
    },
];

#[tokio::test]
async fn invalid_specs_are_refused_with_the_field_named() {
    let (client, namespace, api) = setup("nc-invalid").await;
    for (i, invalid) in INVALID.iter().enumerate() {
        let mut cluster = minimal(&format!("invalid-{i}"));
        (invalid.change)(&mut cluster["spec"]);
        let refused = api
            .create(&PostParams::default(), &object(cluster))
            .await
            .expect_err(&format!("{} is accepted", invalid.what));
        let kube::Error::Api(status) = refused else {
            panic!("{}: not an API error: {refused}", invalid.what);
        };
        eprintln!("{}: {} {}", invalid.what, status.code, status.message);
        assert_eq!(status.code, 422, "{}: {}", invalid.what, status.message);
        for expected in invalid.expected {
            assert!(
                status.message.contains(expected),
                "{}: the message does not contain {expected:?}: {}",
                invalid.what,
                status.message
            );
        }
    }
    delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn partitions_may_grow_but_not_shrink_and_the_topic_stays() {
    let (client, namespace, api) = setup("nc-partitions").await;
    api.create(&PostParams::default(), &object(minimal("grow")))
        .await
        .expect("create the minimal cluster");
    let merge = |spec: Value| Patch::Merge(json!({ "spec": spec }));

    let grown = api
        .patch(
            "grow",
            &PatchParams::default(),
            &merge(json!({"kafka": {"partitions": 24}})),
        )
        .await
        .expect("more partitions are accepted");
    assert_eq!(grown.data["spec"]["kafka"]["partitions"], 24);

    for (what, change, expected) in [
        (
            "fewer partitions",
            json!({"kafka": {"partitions": 6}}),
            ["spec.kafka.partitions", "partitions may only grow"],
        ),
        (
            "another topic",
            json!({"kafka": {"topic": "renamed"}}),
            ["spec.kafka.topic", "topic cannot be changed"],
        ),
    ] {
        let refused = api
            .patch("grow", &PatchParams::default(), &merge(change))
            .await
            .expect_err(&format!("{what} is accepted"));
        let kube::Error::Api(status) = refused else {
            panic!("{what}: not an API error: {refused}");
        };
        eprintln!("{what}: {} {}", status.code, status.message);
        assert_eq!(status.code, 422, "{what}: {}", status.message);
        for expected in expected {
            assert!(
                status.message.contains(expected),
                "{what}: the message does not contain {expected:?}: {}",
                status.message
            );
        }
    }

    let read = api.get("grow").await.expect("read back");
    assert_eq!(read.data["spec"]["kafka"]["partitions"], 24);
    assert_eq!(read.data["spec"]["kafka"]["topic"], "notifications");
    delete_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn the_status_subresource_takes_the_status_and_the_columns_show_it() {
    let (client, namespace, api) = setup("nc-status").await;
    api.create(&PostParams::default(), &object(minimal("status")))
        .await
        .expect("create the minimal cluster");
    let typed: Api<NotificationCluster> = Api::namespaced(client.clone(), &namespace);
    let status = json!({
        "status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": "Ready",
                "status": "False",
                "reason": "Progressing",
                "message": "waiting for the distributors",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }],
            "readyReplicas": {"receiver": 1, "director": 1, "distributor": 0},
            "endpoints": {"publish": "http://status-receiver:8080", "connect": "http://status-distributor:8080"},
        }
    });
    typed
        .patch_status("status", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("the status is written");
    let read = typed.get("status").await.expect("read back, typed");
    let read_status = read.status.expect("a status");
    assert_eq!(read_status.observed_generation, Some(1));
    assert_eq!(read_status.conditions[0].type_, "Ready");
    assert_eq!(
        read_status.endpoints.expect("endpoints").connect,
        "http://status-distributor:8080"
    );

    // The printer columns, as `kubectl get nc` shows them.
    let mut request = kube::core::Request::new(typed.resource_url())
        .get("status", &GetParams::default())
        .expect("a GET request");
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io"),
    );
    let table: Value = client.request(request).await.expect("the table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("column definitions")
        .iter()
        .map(|column| column["name"].as_str().expect("a column name"))
        .collect();
    assert_eq!(columns, ["Name", "Ready", "Publish", "Connect", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "status");
    assert_eq!(cells[1], "False");
    assert_eq!(cells[2], "http://status-receiver:8080");
    assert_eq!(cells[3], "http://status-distributor:8080");

    delete_namespace(&client, &namespace).await;
}
