use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, ResourceExt};
use testenv::{create_namespace, kube_client};

const TIMEOUT: Duration = Duration::from_secs(90);

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

#[tokio::test]
async fn objects_are_created_listed_and_watched() {
    let client = kube_client().await;
    let namespace = create_namespace(&client, "smoke").await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let listed = namespaces
        .list(&ListParams::default())
        .await
        .expect("list namespaces");
    assert!(listed.items.iter().any(|ns| ns.name_any() == namespace));

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let created = config_maps
        .create(
            &PostParams::default(),
            &config_map("settings", &[("greeting", "hello")]),
        )
        .await
        .expect("create a ConfigMap");
    let listed = config_maps
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps");
    assert!(listed.items.iter().any(|cm| cm.name_any() == "settings"));

    let version = created.resource_version().expect("a resourceVersion");
    let mut events = config_maps
        .watch(
            &WatchParams::default().fields("metadata.name=settings"),
            &version,
        )
        .await
        .expect("a watch from the created version")
        .boxed();
    let patch = serde_json::json!({ "data": { "greeting": "bonjour" } });
    config_maps
        .patch("settings", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch the ConfigMap");
    let event = tokio::time::timeout(TIMEOUT, events.try_next())
        .await
        .expect("a watch event within the timeout")
        .expect("a watch event, not an error")
        .expect("the watch stays open");
    match event {
        WatchEvent::Modified(cm) => {
            assert_eq!(
                cm.data
                    .unwrap_or_default()
                    .get("greeting")
                    .map(String::as_str),
                Some("bonjour")
            );
        }
        other => panic!("expected the modification, saw {other:?}"),
    }

    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("delete the namespace");
}

/// The garbage collector runs in kube-controller-manager: a dependent whose
/// owner is deleted goes too.
#[tokio::test]
async fn the_garbage_collector_deletes_what_a_deleted_owner_owned() {
    let client = kube_client().await;
    let namespace = create_namespace(&client, "smoke-gc").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);

    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .expect("create the owner");
    let mut dependent = config_map("dependent", &[]);
    dependent.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.name_any(),
        uid: owner.uid().expect("the owner's uid"),
        ..Default::default()
    }]);
    config_maps
        .create(&PostParams::default(), &dependent)
        .await
        .expect("create the dependent");

    config_maps
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete the owner");
    let collected = async {
        while config_maps
            .get_opt("dependent")
            .await
            .expect("get the dependent")
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, collected)
        .await
        .expect("the garbage collector deletes the dependent");

    Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("delete the namespace");
}
