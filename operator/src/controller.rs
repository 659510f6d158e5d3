//! The controller: one reconcile function that makes a `NotificationCluster`
//! into the running service, and reports what it sees in the status.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::watcher::{self, ExponentialBackoff};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::crd::{DeletionPolicy, NotificationCluster, SecretKeyRef};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::resources::{
    Component, FIELD_MANAGER, MANAGED_BY, account, autoscalers, budgets, forward, services,
    settings, workloads,
};
use crate::status::{self, Observed};
use crate::topic::{KafkaConnection, Topics};

/// The finalizer a cluster carries while its topic is to be deleted with it.
pub const TOPIC_FINALIZER: &str = "notifications.saasaparilla.dev/topic";

/// How often a cluster is looked at again when nothing changes: Kafka going
/// away shows in its status within this.
const RESYNC: Duration = Duration::from_secs(60);
/// Retries after an error wait 1 s, doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub topics: Topics,
    /// Consecutive failed reconciles per cluster, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, recorder: Recorder, metrics: Metrics) -> Context {
        Context {
            client,
            recorder,
            metrics,
            topics: Topics::default(),
            failures: Mutex::default(),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs the controller over `namespaces` (all of them when empty) until
/// `shutdown` is cancelled; in-flight reconciles finish first.
pub async fn run(ctx: Arc<Context>, namespaces: Vec<String>, shutdown: CancellationToken) {
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let controllers = scopes.into_iter().map(|namespace| {
        let client = ctx.client.clone();
        let managed =
            watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
        let shutdown = shutdown.clone();
        Controller::new(
            api::<NotificationCluster>(&client, &namespace),
            watcher::Config::default(),
        )
        .owns(api::<Deployment>(&client, &namespace), managed.clone())
        .owns(api::<Service>(&client, &namespace), managed.clone())
        .owns(api::<ConfigMap>(&client, &namespace), managed.clone())
        .owns(api::<ServiceAccount>(&client, &namespace), managed.clone())
        .owns(
            api::<PodDisruptionBudget>(&client, &namespace),
            managed.clone(),
        )
        .owns(api::<HorizontalPodAutoscaler>(&client, &namespace), managed)
        .trigger_backoff(watch_backoff())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile did not complete");
            }
        })
    });
    futures::future::join_all(controllers).await;
}

/// The backoff of the controller's watches, one for all seven of them
/// (kube-runtime's design). With kube's default (0.8 s, doubling to 30 s),
/// each watch's error after an API server restart (each must list again,
/// its resource version being too old) doubled the wait of the next: the
/// operator went about 90 s without noticing changes. Short and capped, the
/// seven take a few seconds, and an API server that is away is still asked
/// only about every 2 s.
fn watch_backoff() -> impl Backoff {
    let exponential = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .without_max_times();
    ResetTimerBackoff::new(
        ExponentialBackoff::from(exponential),
        Duration::from_secs(30),
    )
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Makes the cluster's objects and topic as its spec says, then reports.
#[tracing::instrument(skip_all, fields(cluster = %nc.name_any(), namespace = nc.namespace().unwrap_or_default()))]
pub async fn reconcile(nc: Arc<NotificationCluster>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = if nc.metadata.deletion_timestamp.is_some() {
        clean_up(&nc, &ctx).await
    } else {
        reconcile_live(&nc, &ctx).await
    };
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::kind));
    if result.is_ok() {
        ctx.failures().remove(&key(&nc));
    }
    result
}

/// After an error: try again with a backoff that doubles per failure in a row.
pub fn error_policy(nc: Arc<NotificationCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures();
    let count = failures.entry(key(&nc)).or_default();
    *count = count.saturating_add(1);
    let delay = Duration::from_secs(1u64 << (*count - 1).min(10)).min(MAX_BACKOFF);
    tracing::warn!(cluster = %nc.name_any(), error = %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn key(nc: &NotificationCluster) -> String {
    format!("{}/{}", nc.namespace().unwrap_or_default(), nc.name_any())
}

async fn reconcile_live(nc: &NotificationCluster, ctx: &Context) -> Result<Action> {
    let mut observed = Observed::default();
    let result = if nc.spec.cluster_operation.reconciliation_paused {
        observe_topic(nc, ctx, &mut observed).await;
        Ok(())
    } else {
        ensure(nc, ctx, &mut observed).await
    };
    if let Err(e) = &result {
        observed.error = Some((e.kind(), e.to_string()));
        publish(
            ctx,
            nc,
            EventType::Warning,
            e.kind(),
            "Reconcile",
            e.to_string(),
        )
        .await;
    }
    observe_objects(nc, ctx, &mut observed).await?;
    report(nc, ctx, &observed).await?;
    result.map(|()| Action::requeue(RESYNC))
}

/// Everything the spec asks for, in order: the Kubernetes objects first, so
/// that a Kafka out of reach (each admin request may wait seconds) neither
/// delays nor stops them; then the topic, whose error is returned so that
/// the reconcile is retried.
async fn ensure(nc: &NotificationCluster, ctx: &Context, observed: &mut Observed) -> Result<()> {
    ensure_finalizer(nc, ctx).await?;
    apply(ctx, nc, account::service_account(nc)).await?;
    ensure_forward_secret(nc, ctx).await?;
    apply(ctx, nc, forward::network_policy(nc)).await?;
    let config_map = settings::config_map(nc);
    let hash = settings::hash(config_map.data.as_ref().unwrap_or(&Default::default()));
    apply(ctx, nc, config_map).await?;
    for component in Component::ALL {
        apply(ctx, nc, workloads::deployment(nc, component, &hash)).await?;
        apply(ctx, nc, services::service(nc, component)).await?;
        apply(ctx, nc, budgets::budget(nc, component)).await?;
        match autoscalers::autoscaler(nc, component) {
            Some(hpa) => apply(ctx, nc, hpa).await?,
            None => delete::<HorizontalPodAutoscaler>(ctx, nc, &component.object_name(nc)).await?,
        }
    }
    let topic = ensure_topic(nc, ctx).await;
    observed.topic = Some(match &topic {
        Ok(partitions) => Ok(*partitions),
        Err(e) => Err(e.to_string()),
    });
    topic.map(|_| ())
}

async fn ensure_topic(nc: &NotificationCluster, ctx: &Context) -> Result<i32> {
    let connection = kafka_connection(nc, &ctx.client).await?;
    let topic = ctx.topics.ensure(&connection, &nc.spec.kafka).await?;
    for change in topic.changes {
        let note = format!("topic {}: {change}", nc.spec.kafka.topic);
        publish(
            ctx,
            nc,
            EventType::Normal,
            "TopicUpdated",
            "EnsureTopic",
            note,
        )
        .await;
    }
    Ok(topic.partitions)
}

/// Paused: the topic is looked at, never changed.
async fn observe_topic(nc: &NotificationCluster, ctx: &Context, observed: &mut Observed) {
    let partitions = match kafka_connection(nc, &ctx.client).await {
        Ok(connection) => ctx
            .topics
            .partitions(&connection, &nc.spec.kafka.topic)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    observed.topic = Some(match partitions {
        Ok(Some(partitions)) => Ok(partitions),
        Ok(None) => Err(format!("topic {} does not exist", nc.spec.kafka.topic)),
        Err(e) => Err(e),
    });
}

/// The finalizer is there exactly while the topic is to go with the cluster.
async fn ensure_finalizer(nc: &NotificationCluster, ctx: &Context) -> Result<()> {
    let wanted = nc.spec.deletion_policy == DeletionPolicy::Delete;
    let has = nc.finalizers().iter().any(|f| f == TOPIC_FINALIZER);
    if wanted == has {
        return Ok(());
    }
    let mut finalizers: Vec<String> = nc
        .finalizers()
        .iter()
        .filter(|f| *f != TOPIC_FINALIZER)
        .cloned()
        .collect();
    if wanted {
        finalizers.push(TOPIC_FINALIZER.into());
    }
    set_finalizers(nc, ctx, finalizers).await
}

async fn set_finalizers(
    nc: &NotificationCluster,
    ctx: &Context,
    finalizers: Vec<String>,
) -> Result<()> {
    // The resourceVersion makes this fail, and retry, if the list changed meanwhile.
    let patch =
        json!({"metadata": {"finalizers": finalizers, "resourceVersion": nc.resource_version()}});
    own_api::<NotificationCluster>(ctx, nc)
        .patch(
            &nc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// The cluster is being deleted: the garbage collector takes the owned
/// objects; the operator deletes the topic if the policy says so.
async fn clean_up(nc: &NotificationCluster, ctx: &Context) -> Result<Action> {
    if !nc.finalizers().iter().any(|f| f == TOPIC_FINALIZER) {
        return Ok(Action::await_change());
    }
    if nc.spec.deletion_policy == DeletionPolicy::Delete {
        let connection = kafka_connection(nc, &ctx.client).await?;
        ctx.topics.delete(&connection, &nc.spec.kafka.topic).await?;
        let note = format!(
            "topic {} deleted (deletionPolicy: Delete)",
            nc.spec.kafka.topic
        );
        publish(
            ctx,
            nc,
            EventType::Normal,
            "TopicDeleted",
            "DeleteTopic",
            note,
        )
        .await;
    }
    let rest = nc
        .finalizers()
        .iter()
        .filter(|f| *f != TOPIC_FINALIZER)
        .cloned()
        .collect();
    set_finalizers(nc, ctx, rest).await?;
    Ok(Action::await_change())
}

/// The Deployments as they are now, and the distributor's external address.
async fn observe_objects(
    nc: &NotificationCluster,
    ctx: &Context,
    observed: &mut Observed,
) -> Result<()> {
    for component in Component::ALL {
        let deployment = own_api::<Deployment>(ctx, nc)
            .get_opt(&component.object_name(nc))
            .await?;
        observed.deployments.push((component, deployment));
    }
    let distributor = own_api::<Service>(ctx, nc)
        .get_opt(&Component::Distributor.object_name(nc))
        .await?;
    observed.external_connect = distributor
        .and_then(|s| s.status?.load_balancer?.ingress?.into_iter().next())
        .and_then(|ingress| ingress.hostname.or(ingress.ip))
        .map(|host| format!("http://{host}:{}", crate::resources::ports::HTTP));
    Ok(())
}

/// Writes the status when it changed, with an Event when readiness did.
async fn report(nc: &NotificationCluster, ctx: &Context, observed: &Observed) -> Result<()> {
    let status = status::status(nc, observed);
    let previous = nc.status.clone().unwrap_or_default();
    if status == previous {
        return Ok(());
    }
    if let Some(ready) = status.conditions.iter().find(|c| c.type_ == "Ready") {
        let was = previous.conditions.iter().find(|c| c.type_ == "Ready");
        if was.map(|c| &c.status) != Some(&ready.status) {
            let type_ = if ready.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            };
            let reason = ready.reason.clone();
            publish(ctx, nc, type_, &reason, "Report", ready.message.clone()).await;
        }
    }
    let patch = json!({ "status": status });
    own_api::<NotificationCluster>(ctx, nc)
        .patch_status(
            &nc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Server-side apply under the operator's field manager. Forced: the
/// operator owns these fields, and a hand edit (a `kubectl scale`) is undone.
async fn apply<K>(ctx: &Context, nc: &NotificationCluster, object: K) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
    K::DynamicType: Default,
{
    let name = object.meta().name.clone().unwrap_or_default();
    own_api::<K>(ctx, nc)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
    Ok(())
}

/// Deletes an object the spec no longer asks for; one already gone is fine.
async fn delete<K>(ctx: &Context, nc: &NotificationCluster, name: &str) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    match own_api::<K>(ctx, nc)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => {
            let note = format!(
                "{} {name} is no longer needed",
                K::kind(&Default::default())
            );
            publish(ctx, nc, EventType::Normal, "Deleted", "Delete", note).await;
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Makes the forward port's Secret if it is not there: once, so that its
/// value, and the pods that read it, stay as they are.
async fn ensure_forward_secret(nc: &NotificationCluster, ctx: &Context) -> Result<()> {
    let secrets = own_api::<Secret>(ctx, nc);
    let name = forward::secret_ref(nc).name;
    if secrets.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    match secrets
        .create(&PostParams::default(), &forward::new_secret(nc))
        .await
    {
        // Made meanwhile by another reconcile: that one stays.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        result => result.map(|_| ()).map_err(Into::into),
    }
}

fn own_api<K>(ctx: &Context, nc: &NotificationCluster) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(ctx.client.clone(), &nc.namespace().unwrap_or_default())
}

/// How the operator reaches the cluster's Kafka: the bootstrap servers and,
/// from the Secrets the spec names, SASL credentials and the CA.
async fn kafka_connection(nc: &NotificationCluster, client: &Client) -> Result<KafkaConnection> {
    let kafka = &nc.spec.kafka;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &nc.namespace().unwrap_or_default());
    let mut connection = vec![(
        "bootstrap.servers".to_string(),
        kafka.bootstrap_servers.clone(),
    )];
    if let Some(protocol) = kafka.security_protocol() {
        connection.push(("security.protocol".into(), protocol.into()));
    }
    if let Some(sasl) = &kafka.sasl {
        connection.push(("sasl.mechanism".into(), sasl.mechanism.name().into()));
        connection.push((
            "sasl.username".into(),
            secret(&secrets, &sasl.username).await?,
        ));
        connection.push((
            "sasl.password".into(),
            secret(&secrets, &sasl.password).await?,
        ));
    }
    if let Some(ca) = kafka
        .tls
        .as_ref()
        .and_then(|tls| tls.ca_certificate.as_ref())
    {
        connection.push(("ssl.ca.pem".into(), secret(&secrets, ca).await?));
    }
    Ok(connection)
}

async fn secret(secrets: &Api<Secret>, reference: &SecretKeyRef) -> Result<String> {
    let error = |reason: String| Error::Secret {
        name: reference.name.clone(),
        key: reference.key.clone(),
        reason,
    };
    let secret = secrets
        .get_opt(&reference.name)
        .await?
        .ok_or_else(|| error("no such Secret".into()))?;
    let value = secret
        .data
        .and_then(|mut data| data.remove(&reference.key))
        .ok_or_else(|| error("no such key".into()))?;
    String::from_utf8(value.0).map_err(|_| error("the value is not UTF-8".into()))
}

/// Records an Event on the cluster; failing to is logged, never fatal.
async fn publish(
    ctx: &Context,
    nc: &NotificationCluster,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &nc.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "cannot record an Event");
    }
}
