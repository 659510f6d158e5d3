//! The status the operator reports: conditions in the form kstatus and
//! Argo CD read (`type`, `status`, `reason`, `message`, `observedGeneration`,
//! `lastTransitionTime`, which changes only when `status` does), ready
//! replicas and endpoints.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::crd::{ComponentReplicas, Endpoints, NotificationCluster, NotificationClusterStatus};
use crate::resources::{Component, ports};

/// What a reconcile saw: the components' Deployments (as the API server has
/// them, status included), the topic, and the error that stopped it, if any.
#[derive(Debug, Default)]
pub struct Observed {
    pub deployments: Vec<(Component, Option<Deployment>)>,
    /// The topic's partitions, or why it is not as asked.
    pub topic: Option<Result<i32, String>>,
    /// Why the reconcile stopped before the end: (reason, message).
    pub error: Option<(&'static str, String)>,
    /// The distributor Service's external address, once a load balancer has one.
    pub external_connect: Option<String>,
}

/// One condition type's status, reason and message.
struct Verdict {
    type_: &'static str,
    status: bool,
    reason: &'static str,
    message: String,
}

/// The status to report for `nc` after a reconcile that saw `observed`.
pub fn status(nc: &NotificationCluster, observed: &Observed) -> NotificationClusterStatus {
    let generation = nc.metadata.generation;
    let operation = &nc.spec.cluster_operation;
    let ready_replicas = ComponentReplicas {
        receiver: ready(observed, Component::Receiver),
        director: ready(observed, Component::Director),
        distributor: ready(observed, Component::Distributor),
    };
    let rolling: Vec<&str> = observed
        .deployments
        .iter()
        .filter(|(_, d)| !rolled_out(d.as_ref()))
        .map(|(c, _)| c.role())
        .collect();
    let short: Vec<&str> = observed
        .deployments
        .iter()
        .filter(|(_, d)| !available(d.as_ref()))
        .map(|(c, _)| c.role())
        .collect();

    let topic = match &observed.topic {
        Some(Ok(partitions)) => Verdict {
            type_: "KafkaTopicReady",
            status: true,
            reason: "TopicReady",
            message: format!("topic {} has {partitions} partitions", nc.spec.kafka.topic),
        },
        Some(Err(message)) => Verdict {
            type_: "KafkaTopicReady",
            status: false,
            reason: "KafkaUnavailable",
            message: message.clone(),
        },
        None => Verdict {
            type_: "KafkaTopicReady",
            status: false,
            reason: "NotChecked",
            message: "the topic has not been checked yet".into(),
        },
    };
    let topic_ready = topic.status;

    let progressing = if operation.reconciliation_paused {
        Verdict {
            type_: "Progressing",
            status: false,
            reason: "ReconciliationPaused",
            message:
                "spec.clusterOperation.reconciliationPaused is set: the operator changes nothing"
                    .into(),
        }
    } else if !rolling.is_empty() {
        Verdict {
            type_: "Progressing",
            status: true,
            reason: "RollingOut",
            message: format!("rolling out: {}", rolling.join(", ")),
        }
    } else {
        Verdict {
            type_: "Progressing",
            status: false,
            reason: "Complete",
            message: "every component runs the current spec".into(),
        }
    };

    let degraded = match &observed.error {
        Some((reason, message)) => Verdict {
            type_: "Degraded",
            status: true,
            reason,
            message: message.clone(),
        },
        None if !topic_ready => Verdict {
            type_: "Degraded",
            status: true,
            reason: "KafkaTopicNotReady",
            message: topic.message.clone(),
        },
        None => Verdict {
            type_: "Degraded",
            status: false,
            reason: "AsExpected",
            message: "nothing stands in the way".into(),
        },
    };

    let ready = if operation.stopped && !operation.reconciliation_paused {
        Verdict {
            type_: "Ready",
            status: false,
            reason: "Stopped",
            message: "spec.clusterOperation.stopped is set: every component is scaled to zero"
                .into(),
        }
    } else if !topic_ready {
        Verdict {
            type_: "Ready",
            status: false,
            reason: "KafkaTopicNotReady",
            message: topic.message.clone(),
        }
    } else if !short.is_empty() {
        Verdict {
            type_: "Ready",
            status: false,
            reason: "ComponentsUnavailable",
            message: format!("not all replicas are ready: {}", short.join(", ")),
        }
    } else {
        Verdict {
            type_: "Ready",
            status: true,
            reason: "AllComponentsReady",
            message: "every component has all its replicas ready".into(),
        }
    };

    let previous = nc
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = [ready, progressing, degraded, topic]
        .into_iter()
        .map(|verdict| condition(verdict, generation, previous))
        .collect();

    let namespace = nc.namespace().unwrap_or_default();
    let internal = |component: Component| {
        format!(
            "http://{}.{namespace}.svc:{}",
            component.object_name(nc),
            ports::HTTP
        )
    };
    NotificationClusterStatus {
        observed_generation: generation,
        conditions,
        ready_replicas: Some(ready_replicas),
        endpoints: Some(Endpoints {
            publish: internal(Component::Receiver),
            connect: observed
                .external_connect
                .clone()
                .unwrap_or_else(|| internal(Component::Distributor)),
        }),
    }
}

fn condition(verdict: Verdict, generation: Option<i64>, previous: &[Condition]) -> Condition {
    let status = if verdict.status { "True" } else { "False" };
    // The transition time moves only when the status does.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == verdict.type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    Condition {
        type_: verdict.type_.into(),
        status: status.into(),
        reason: verdict.reason.into(),
        message: verdict.message,
        observed_generation: generation,
        last_transition_time,
    }
}

fn ready(observed: &Observed, component: Component) -> i32 {
    observed
        .deployments
        .iter()
        .find(|(c, _)| *c == component)
        .and_then(|(_, d)| d.as_ref()?.status.as_ref()?.ready_replicas)
        .unwrap_or(0)
}

fn desired(deployment: &Deployment) -> i32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

/// Whether the Deployment controller has caught up with the spec and every
/// pod runs the current template.
fn rolled_out(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let Some(status) = &deployment.status else {
        return false;
    };
    status.observed_generation >= deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) >= desired(deployment)
        && status.replicas.unwrap_or(0) <= desired(deployment)
}

/// Whether every replica the Deployment wants is ready.
fn available(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let ready = deployment
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    rolled_out(Some(deployment)) && ready >= desired(deployment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::cluster;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use serde_json::json;

    fn deployment(replicas: i32, ready: i32) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.generation = Some(2);
        d.spec = Some(DeploymentSpec {
            replicas: Some(replicas),
            ..DeploymentSpec::default()
        });
        d.status = Some(DeploymentStatus {
            observed_generation: Some(2),
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ready_replicas: Some(ready),
            ..DeploymentStatus::default()
        });
        d
    }

    fn observed(ready: i32) -> Observed {
        Observed {
            deployments: Component::ALL
                .iter()
                .map(|c| (*c, Some(deployment(2, ready))))
                .collect(),
            topic: Some(Ok(12)),
            ..Observed::default()
        }
    }

    fn get<'a>(status: &'a NotificationClusterStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn ready_when_every_replica_is() {
        let nc = cluster(json!({}));
        let status = status(&nc, &observed(2));
        assert_eq!(get(&status, "Ready").status, "True");
        assert_eq!(get(&status, "Progressing").status, "False");
        assert_eq!(get(&status, "Degraded").status, "False");
        assert_eq!(status.ready_replicas.unwrap().director, 2);
        assert_eq!(
            status.endpoints.unwrap().publish,
            "http://acme-receiver.apps.svc:8080"
        );
    }

    #[test]
    fn not_ready_while_replicas_are_missing_or_kafka_is_down() {
        let nc = cluster(json!({}));
        let short = status(&nc, &observed(1));
        assert_eq!(get(&short, "Ready").reason, "ComponentsUnavailable");
        let mut down = observed(2);
        down.topic = Some(Err("Kafka at k:9092 does not answer".into()));
        let down = status(&nc, &down);
        assert_eq!(get(&down, "Ready").status, "False");
        assert_eq!(get(&down, "KafkaTopicReady").reason, "KafkaUnavailable");
        assert_eq!(get(&down, "Degraded").status, "True");
    }

    #[test]
    fn transition_time_stays_while_status_does() {
        let mut nc = cluster(json!({}));
        let first = status(&nc, &observed(2));
        let since = get(&first, "Ready").last_transition_time.clone();
        nc.status = Some(first);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let again = status(&nc, &observed(2));
        assert_eq!(get(&again, "Ready").last_transition_time, since);
        nc.status = Some(again);
        let changed = status(&nc, &observed(0));
        assert_ne!(get(&changed, "Ready").last_transition_time, since);
    }

    #[test]
    fn paused_and_stopped_say_so() {
        let paused = cluster(json!({"clusterOperation": {"reconciliationPaused": true}}));
        assert_eq!(
            get(&status(&paused, &observed(2)), "Progressing").reason,
            "ReconciliationPaused"
        );
        let stopped = cluster(json!({"clusterOperation": {"stopped": true}}));
        assert_eq!(
            get(&status(&stopped, &observed(0)), "Ready").reason,
            "Stopped"
        );
    }
}
