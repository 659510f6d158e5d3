//! What can stop a reconcile.

use crate::topic::TopicError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Secret {name}, key {key}: {reason}")]
    Secret {
        name: String,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Topic(#[from] TopicError),
}

impl Error {
    /// The kind of error, as the `kind` label of the errors metric and the
    /// reason of the `Degraded` condition.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApi",
            Error::Secret { .. } => "SecretUnavailable",
            Error::Topic(TopicError::Unreachable { .. }) => "KafkaUnreachable",
            Error::Topic(TopicError::Refused { .. }) => "KafkaRefused",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
