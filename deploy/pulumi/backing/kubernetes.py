"""The Kubernetes target: each server a StatefulSet with its volume claims,
a headless Service for its pods' names and a Service for clients, in one
namespace, beside the Secrets the NotificationCluster samples name."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from . import servers
from .settings import Settings

# The Secrets (and their key) that config/samples' clusters read the servers' URLs from.
POSTGRES_SECRET = "notif-postgres"
REDIS_SECRET = "notif-redis"
URL_KEY = "url"
# The Secrets a NotificationCluster made here reads its credentials from.
PUBLISHERS_SECRET = "notif-publishers"
JWT_SECRET = "notif-jwt"

# The apache/kafka image's user; its volume must be writable by it.
KAFKA_GROUP_ID = 1000


class Servers:
    """The three servers and their Secrets in `settings.namespace`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.namespace = k8s.core.v1.Namespace(
            "namespace",
            metadata={"name": settings.namespace, "annotations": settings.namespace_annotations},
        )
        self.ns = self.namespace.metadata.name
        self.postgres = self._postgres()
        self.redis = self._redis()
        self.kafka = self._kafka()
        # Secrets, as the passwords in them are.
        self.postgres_url = settings.postgres_password.apply(
            lambda pw: servers.postgres_url(self._host("postgres"), servers.POSTGRES_PORT, pw)
        )
        self.redis_url = pulumi.Output.from_input(settings.redis_password).apply(
            lambda pw: servers.redis_url(self._host("redis"), servers.REDIS_PORT, pw)
        )
        self.secrets = [
            self._secret(POSTGRES_SECRET, {URL_KEY: self.postgres_url}),
            self._secret(REDIS_SECRET, {URL_KEY: self.redis_url}),
        ]
        self.kafka_bootstrap = f"{self._host('kafka')}:{servers.KAFKA_PORT}"
        self.cluster = self._cluster()

    def _host(self, service: str) -> str:
        return f"{service}.{self.settings.namespace}.svc"

    def _secret(self, name: str, data: dict) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(name, metadata={"name": name, "namespace": self.ns}, string_data=data)

    def _postgres(self) -> k8s.apps.v1.StatefulSet:
        password = self._secret("postgres", {"password": self.settings.postgres_password})
        env = [{"name": k, "value": v} for k, v in servers.postgres_environment().items()]
        env.append(_from_secret("POSTGRES_PASSWORD", password, "password"))
        return self._stateful_set(
            "postgres",
            image=self.settings.images.postgres,
            env=env,
            port=servers.POSTGRES_PORT,
            data=(servers.POSTGRES_DATA, self.settings.sizes.postgres),
            probe={"exec": {"command": servers.POSTGRES_HEALTH}},
        )

    def _redis(self) -> k8s.apps.v1.StatefulSet:
        env = []
        if self.settings.redis_password is not None:
            password = self._secret("redis", {"password": self.settings.redis_password})
            env = [_from_secret(name, password, "password") for name in ("REDIS_PASSWORD", "REDISCLI_AUTH")]
        return self._stateful_set(
            "redis",
            image=self.settings.images.redis,
            env=env,
            command=servers.redis_command(self.settings.redis_password is not None),
            port=servers.REDIS_PORT,
            data=(servers.REDIS_DATA, self.settings.sizes.redis),
            probe={"exec": {"command": servers.REDIS_HEALTH}},
        )

    def _kafka(self) -> k8s.apps.v1.StatefulSet:
        replicas = self.settings.kafka_replicas
        pods = f"kafka-headless.{self.settings.namespace}.svc"
        environment = servers.kafka_environment(
            voters=[f"kafka-{i}.{pods}:{servers.KAFKA_CONTROLLER_PORT}" for i in range(replicas)],
            # Kubernetes puts in the pod's own name.
            listeners={"PLAINTEXT": (servers.KAFKA_PORT, f"$(POD_NAME).{pods}:{servers.KAFKA_PORT}")},
            replication=min(3, replicas),
            cluster_id=servers.kafka_cluster_id(pulumi.get_stack()),
        )
        # Each pod's node id is its ordinal, and its address its name.
        env = [
            _from_field("POD_NAME", "metadata.name"),
            _from_field("KAFKA_NODE_ID", "metadata.labels['apps.kubernetes.io/pod-index']"),
        ] + [{"name": k, "value": v} for k, v in environment.items()]
        return self._stateful_set(
            "kafka",
            image=self.settings.images.kafka,
            env=env,
            port=servers.KAFKA_PORT,
            data=(servers.KAFKA_DATA, self.settings.sizes.kafka),
            probe={"tcp_socket": {"port": servers.KAFKA_PORT}},
            replicas=replicas,
            extra_ports=[servers.KAFKA_CONTROLLER_PORT],
            fs_group=KAFKA_GROUP_ID,
            # Every controller must be found by name before any is ready.
            parallel=True,
        )

    def _stateful_set(
        self,
        name: str,
        *,
        image: str,
        env: list,
        port: int,
        data: tuple[str, str],
        probe: dict,
        command: Optional[list[str]] = None,
        replicas: int = 1,
        extra_ports: tuple = (),
        fs_group: Optional[int] = None,
        parallel: bool = False,
    ) -> k8s.apps.v1.StatefulSet:
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "notif-backing"}
        ports = [{"name": "clients", "port": port}] + [{"name": f"port-{p}", "port": p} for p in extra_ports]
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata={"name": f"{name}-headless", "namespace": self.ns, "labels": labels},
            spec={"cluster_ip": "None", "selector": labels, "ports": ports, "publish_not_ready_addresses": True},
        )
        k8s.core.v1.Service(
            name,
            metadata={"name": name, "namespace": self.ns, "labels": labels},
            spec={"selector": labels, "ports": [{"name": "clients", "port": port, "target_port": port}]},
        )
        path, size = data
        claim_spec = {"access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
        if self.settings.storage_class:
            claim_spec["storage_class_name"] = self.settings.storage_class
        container = {
            "name": name,
            "image": image,
            "env": env,
            "ports": [{"container_port": p["port"], "name": p["name"]} for p in ports],
            "volume_mounts": [{"name": "data", "mount_path": path}],
            "readiness_probe": {**probe, "period_seconds": 5, "failure_threshold": 3},
        }
        if command:
            container["command"] = command
        retention = "Delete" if self.settings.volumes_on_destroy == "delete" else "Retain"
        return k8s.apps.v1.StatefulSet(
            name,
            metadata={"name": name, "namespace": self.ns, "labels": labels},
            spec={
                "service_name": headless.metadata.name,
                "replicas": replicas,
                "selector": {"match_labels": labels},
                "pod_management_policy": "Parallel" if parallel else "OrderedReady",
                "persistent_volume_claim_retention_policy": {"when_deleted": retention, "when_scaled": "Retain"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container],
                        **({"security_context": {"fs_group": fs_group}} if fs_group is not None else {}),
                    },
                },
                "volume_claim_templates": [{"metadata": {"name": "data"}, "spec": claim_spec}],
            },
        )

    def _cluster(self) -> Optional[k8s.apiextensions.CustomResource]:
        cluster = self.settings.cluster
        if cluster is None:
            return None
        credentials = [
            self._secret(PUBLISHERS_SECRET, {"hashes": cluster.api_key_hashes}),
            self._secret(JWT_SECRET, {"secret": cluster.jwt_secret}),
        ]
        return k8s.apiextensions.CustomResource(
            "cluster",
            api_version="notifications.saasaparilla.dev/v1alpha1",
            kind="NotificationCluster",
            metadata={"name": cluster.name, "namespace": self.ns},
            spec={
                "image": cluster.image,
                "kafka": {
                    "bootstrapServers": self.kafka_bootstrap,
                    "replicationFactor": min(3, self.settings.kafka_replicas),
                },
                "redis": {"url": {"name": REDIS_SECRET, "key": URL_KEY}},
                "postgres": {"url": {"name": POSTGRES_SECRET, "key": URL_KEY}},
                "auth": {
                    "apiKeyHashes": {"name": PUBLISHERS_SECRET, "key": "hashes"},
                    "jwt": {"secret": {"name": JWT_SECRET, "key": "secret"}},
                },
            },
            # The cluster starts on servers that are ready and Secrets that exist.
            opts=pulumi.ResourceOptions(depends_on=[self.postgres, self.redis, self.kafka, *self.secrets, *credentials]),
        )

    def export(self) -> None:
        pulumi.export("namespace", self.ns)
        pulumi.export("kafkaBootstrapServers", self.kafka_bootstrap)
        pulumi.export("postgresUrlSecret", {"name": POSTGRES_SECRET, "key": URL_KEY})
        pulumi.export("redisUrlSecret", {"name": REDIS_SECRET, "key": URL_KEY})
        pulumi.export("postgresUrl", self.postgres_url)
        pulumi.export("redisUrl", self.redis_url)
        if self.cluster is not None:
            pulumi.export("cluster", self.cluster.metadata["name"])


def _from_secret(name: str, secret: k8s.core.v1.Secret, key: str) -> dict:
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret.metadata.name, "key": key}}}


def _from_field(name: str, path: str) -> dict:
    return {"name": name, "value_from": {"field_ref": {"field_path": path}}}
