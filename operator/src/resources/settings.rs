//! The ConfigMap of settings every component reads as environment variables
//! (the `NOTIF_*` fallbacks of `notifd`'s flags), and its hash, which the pod
//! templates carry so that a change of settings, and only that, rolls the pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::{owned_meta, ports};
use crate::crd::NotificationCluster;

/// The pod-template annotation that holds [`hash`].
pub const HASH_ANNOTATION: &str = "notifications.saasaparilla.dev/config-hash";

/// The ConfigMap's name.
pub fn name(nc: &NotificationCluster) -> String {
    format!("{}-settings", nc.name_any())
}

/// The settings, by environment variable. Secrets are not here: the pods
/// take them from the Secrets the spec names.
pub fn settings(nc: &NotificationCluster) -> BTreeMap<String, String> {
    let spec = &nc.spec;
    let mut settings = BTreeMap::from([
        ("NOTIF_LOG_FORMAT", "json".to_string()),
        ("NOTIF_HTTP_ADDR", format!("0.0.0.0:{}", ports::HTTP)),
        ("NOTIF_FORWARD_ADDR", format!("0.0.0.0:{}", ports::FORWARD)),
        ("NOTIF_ADMIN_ADDR", format!("0.0.0.0:{}", ports::ADMIN)),
        (
            "NOTIF_KAFKA_BOOTSTRAP_SERVERS",
            spec.kafka.bootstrap_servers.clone(),
        ),
        ("NOTIF_KAFKA_TOPIC", spec.kafka.topic.clone()),
        (
            "NOTIF_KAFKA_GROUP",
            format!("{}-director", spec.kafka.topic),
        ),
        ("NOTIF_REDIS_KEY_PREFIX", spec.redis.key_prefix.clone()),
        (
            "NOTIF_DELIVERY_ATTEMPTS",
            spec.delivery.attempts.to_string(),
        ),
        (
            "NOTIF_RETRY_BACKOFF_MS",
            spec.delivery.retry_backoff_ms.to_string(),
        ),
        (
            "NOTIF_ACK_TIMEOUT_SECS",
            spec.delivery.ack_timeout_secs.to_string(),
        ),
        (
            "NOTIF_INBOX_RETENTION_HOURS",
            spec.delivery.inbox_retention_hours.to_string(),
        ),
        ("NOTIF_DELIVERY_WINDOW", spec.delivery.window.to_string()),
        ("NOTIF_MAX_HELD", spec.delivery.max_held.to_string()),
        (
            "NOTIF_ALLOW_ANONYMOUS_PUBLISH",
            spec.auth.allow_anonymous_publish.to_string(),
        ),
        (
            "NOTIF_MAX_CONNECTIONS_PER_ADDRESS",
            spec.connections.max_per_address.to_string(),
        ),
    ]);
    if !spec.connections.trusted_proxies.is_empty() {
        let proxies = spec.connections.trusted_proxies.join(",");
        settings.insert("NOTIF_TRUSTED_PROXIES", proxies);
    }
    let jwt = &spec.auth.jwt;
    let audience = jwt.audience.clone().unwrap_or_else(|| nc.name_any());
    if !audience.is_empty() {
        settings.insert("NOTIF_JWT_AUDIENCE", audience);
    }
    if let Some(issuer) = jwt.issuer.clone().filter(|i| !i.is_empty()) {
        settings.insert("NOTIF_JWT_ISSUER", issuer);
    }
    if jwt.public_key.is_some() {
        let algorithm = serde_json::to_value(jwt.algorithm)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        settings.insert("NOTIF_JWT_ALGORITHM", algorithm);
    }
    settings
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The ConfigMap as the operator applies it.
pub fn config_map(nc: &NotificationCluster) -> ConfigMap {
    ConfigMap {
        metadata: owned_meta(nc, name(nc), None),
        data: Some(settings(nc)),
        ..ConfigMap::default()
    }
}

/// A short digest of the settings: the same settings give the same hash.
pub fn hash(settings: &BTreeMap<String, String>) -> String {
    let mut digest = Sha256::new();
    for (key, value) in settings {
        // Lengths first, so that no two different maps give the same bytes.
        digest.update((key.len() as u64).to_be_bytes());
        digest.update(key.as_bytes());
        digest.update((value.len() as u64).to_be_bytes());
        digest.update(value.as_bytes());
    }
    hex::encode(&digest.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::cluster;
    use serde_json::json;

    #[test]
    fn connection_limits_per_address_are_off_unless_asked_for() {
        let default = settings(&cluster(json!({})));
        assert_eq!(default["NOTIF_MAX_CONNECTIONS_PER_ADDRESS"], "0");
        assert!(!default.contains_key("NOTIF_TRUSTED_PROXIES"));
        let limits = json!({"connections": {"maxPerAddress": 500, "trustedProxies": ["10.0.0.0/8", "fd00::/8"]}});
        let limited = settings(&cluster(limits));
        assert_eq!(limited["NOTIF_MAX_CONNECTIONS_PER_ADDRESS"], "500");
        assert_eq!(limited["NOTIF_TRUSTED_PROXIES"], "10.0.0.0/8,fd00::/8");
    }

    #[test]
    fn delivery_settings_become_flags_environment() {
        let nc = cluster(json!({"delivery": {"attempts": 7, "ackTimeoutSecs": 20, "window": 16}}));
        let settings = settings(&nc);
        assert_eq!(settings["NOTIF_DELIVERY_ATTEMPTS"], "7");
        assert_eq!(settings["NOTIF_ACK_TIMEOUT_SECS"], "20");
        assert_eq!(settings["NOTIF_DELIVERY_WINDOW"], "16");
        assert_eq!(settings["NOTIF_MAX_HELD"], "10000");
        assert_eq!(settings["NOTIF_KAFKA_TOPIC"], "notifications");
        assert!(!settings.contains_key("NOTIF_JWT_ALGORITHM"));
    }

    #[test]
    fn hash_follows_settings_and_nothing_else() {
        let base = hash(&settings(&cluster(json!({}))));
        let replicas = hash(&settings(&cluster(json!({"receiver": {"replicas": 5}}))));
        let image = hash(&settings(&cluster(json!({"image": "notifd:other"}))));
        let attempts = hash(&settings(&cluster(json!({"delivery": {"attempts": 9}}))));
        assert_eq!(base, replicas);
        assert_eq!(base, image);
        assert_ne!(base, attempts);
    }

    #[test]
    fn tokens_must_name_the_cluster_as_their_audience_unless_told_otherwise() {
        let default = settings(&cluster(json!({})));
        assert_eq!(default["NOTIF_JWT_AUDIENCE"], "acme");
        assert!(!default.contains_key("NOTIF_JWT_ISSUER"));

        let chosen = settings(&cluster(
            json!({"auth": {"jwt": {"audience": "notifications.acme.com", "issuer": "https://api.acme.com"}}}),
        ));
        assert_eq!(chosen["NOTIF_JWT_AUDIENCE"], "notifications.acme.com");
        assert_eq!(chosen["NOTIF_JWT_ISSUER"], "https://api.acme.com");

        let off = settings(&cluster(json!({"auth": {"jwt": {"audience": ""}}})));
        assert!(!off.contains_key("NOTIF_JWT_AUDIENCE"));
    }

    #[test]
    fn public_key_brings_its_algorithm() {
        let nc = cluster(
            json!({"auth": {"jwt": {"secret": null, "publicKey": {"name": "jwt", "key": "pem"}, "algorithm": "ES256"}}}),
        );
        assert_eq!(settings(&nc)["NOTIF_JWT_ALGORITHM"], "ES256");
    }
}
