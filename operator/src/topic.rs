//! The Kafka topic of a cluster, kept as the spec asks through Kafka's admin
//! API: created, its partitions grown, its retention kept in sync, and
//! deleted when the cluster goes under the `Delete` policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::crd::KafkaSpec;

/// How long one admin request may wait for Kafka. A reconcile waits at most
/// a few of these, so an unreachable Kafka shows in status within seconds.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What stops the topic from being as the spec asks.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Kafka at {servers} does not answer: {reason}")]
    Unreachable { servers: String, reason: String },
    #[error("Kafka refused to {action} topic {topic}: {reason}")]
    Refused {
        action: &'static str,
        topic: String,
        reason: String,
    },
}

/// The topic as found (or made) by [`Topics::ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    pub partitions: i32,
    /// What the operator changed, for an Event: "created", "grew to 24 partitions"...
    pub changes: Vec<String>,
}

/// The connection settings to a Kafka cluster, secrets included; one admin
/// client is kept per distinct set.
pub type KafkaConnection = Vec<(String, String)>;

/// Admin clients by connection, shared by every reconcile.
#[derive(Default)]
pub struct Topics {
    clients: Mutex<HashMap<KafkaConnection, Arc<AdminClient<DefaultClientContext>>>>,
}

impl Topics {
    fn client(
        &self,
        connection: &KafkaConnection,
    ) -> Result<Arc<AdminClient<DefaultClientContext>>, TopicError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(connection) {
            return Ok(client.clone());
        }
        let mut config = ClientConfig::new();
        for (key, value) in connection {
            config.set(key, value);
        }
        let client: AdminClient<DefaultClientContext> =
            config.create().map_err(|e| TopicError::Unreachable {
                servers: servers(connection),
                reason: e.to_string(),
            })?;
        let client = Arc::new(client);
        clients.insert(connection.clone(), client.clone());
        Ok(client)
    }

    /// Makes the topic exist with at least the partitions and exactly the
    /// retention the spec asks for.
    pub async fn ensure(
        &self,
        connection: &KafkaConnection,
        spec: &KafkaSpec,
    ) -> Result<TopicState, TopicError> {
        let client = self.client(connection)?;
        let topic = spec.topic.as_str();
        let retention = (spec.retention_hours * 3_600_000).to_string();
        let options = options();
        let mut changes = Vec::new();
        let partitions = match partitions(&client, connection, topic).await? {
            None => {
                let new = NewTopic::new(
                    topic,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication_factor),
                )
                .set("retention.ms", &retention);
                let results = client
                    .create_topics([&new], &options)
                    .await
                    .map_err(|e| unreachable(connection, e))?;
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((_, code)) => return Err(refused("create", topic, code)),
                    }
                }
                changes.push(format!("created with {} partitions", spec.partitions));
                spec.partitions
            }
            Some(found) if found < spec.partitions => {
                let grow = NewPartitions::new(topic, spec.partitions as usize);
                for result in client
                    .create_partitions([&grow], &options)
                    .await
                    .map_err(|e| unreachable(connection, e))?
                {
                    result.map_err(|(_, code)| refused("add partitions to", topic, code))?;
                }
                changes.push(format!(
                    "grew from {found} to {} partitions",
                    spec.partitions
                ));
                spec.partitions
            }
            Some(found) => found,
        };
        if current_retention(&client, connection, topic)
            .await?
            .as_deref()
            != Some(&retention)
        {
            let alter =
                AlterConfig::new(ResourceSpecifier::Topic(topic)).set("retention.ms", &retention);
            for result in client
                .alter_configs([&alter], &options)
                .await
                .map_err(|e| unreachable(connection, e))?
            {
                result.map_err(|(_, code)| refused("set the retention of", topic, code))?;
            }
            if changes.is_empty() {
                changes.push(format!("retention set to {} hours", spec.retention_hours));
            }
        }
        Ok(TopicState {
            partitions,
            changes,
        })
    }

    /// Deletes the topic; a topic already gone is not an error.
    pub async fn delete(
        &self,
        connection: &KafkaConnection,
        topic: &str,
    ) -> Result<(), TopicError> {
        let client = self.client(connection)?;
        let results = client
            .delete_topics(&[topic], &options())
            .await
            .map_err(|e| unreachable(connection, e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((_, code)) => return Err(refused("delete", topic, code)),
            }
        }
        Ok(())
    }

    /// The topic's partition count, or none when it does not exist.
    pub async fn partitions(
        &self,
        connection: &KafkaConnection,
        topic: &str,
    ) -> Result<Option<i32>, TopicError> {
        partitions(&self.client(connection)?, connection, topic).await
    }
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

/// The partition count from the cluster's metadata. All topics are asked
/// for: asking for one by name can make a broker auto-create it.
async fn partitions(
    client: &Arc<AdminClient<DefaultClientContext>>,
    connection: &KafkaConnection,
    topic: &str,
) -> Result<Option<i32>, TopicError> {
    let client = client.clone();
    let topic = topic.to_string();
    // librdkafka's metadata call blocks its thread.
    let metadata = tokio::task::spawn_blocking(move || {
        client
            .inner()
            .fetch_metadata(None, TIMEOUT)
            .map(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .map(|t| t.partitions().len() as i32)
            })
    })
    .await
    .map_err(|e| TopicError::Unreachable {
        servers: servers(connection),
        reason: e.to_string(),
    })?;
    metadata.map_err(|e| unreachable(connection, e))
}

async fn current_retention(
    client: &AdminClient<DefaultClientContext>,
    connection: &KafkaConnection,
    topic: &str,
) -> Result<Option<String>, TopicError> {
    let results = client
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options())
        .await
        .map_err(|e| unreachable(connection, e))?;
    for result in results {
        let resource = result.map_err(|code| refused("describe", topic, code))?;
        if let Some(entry) = resource.get("retention.ms") {
            return Ok(entry.value.clone());
        }
    }
    Ok(None)
}

fn servers(connection: &KafkaConnection) -> String {
    connection
        .iter()
        .find(|(key, _)| key == "bootstrap.servers")
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

fn unreachable(connection: &KafkaConnection, error: KafkaError) -> TopicError {
    TopicError::Unreachable {
        servers: servers(connection),
        reason: error.to_string(),
    }
}

fn refused(action: &'static str, topic: &str, code: RDKafkaErrorCode) -> TopicError {
    TopicError::Refused {
        action,
        topic: topic.to_string(),
        reason: code.to_string(),
    }
}
