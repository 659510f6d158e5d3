"""The stack's configuration, read once and checked, with its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi

TARGETS = ("kubernetes", "docker")
VOLUME_POLICIES = ("retain", "delete")

# The images docker-compose.yml runs; the versions the service is tested on.
POSTGRES_IMAGE = "postgres:15-bookworm"
REDIS_IMAGE = "redis:7.0-bookworm"
KAFKA_IMAGE = "apache/kafka:4.3.1"


class ConfigError(ValueError):
    """A configuration value that cannot be used, named with its key."""


@dataclass(frozen=True)
class Images:
    postgres: str = POSTGRES_IMAGE
    redis: str = REDIS_IMAGE
    kafka: str = KAFKA_IMAGE


@dataclass(frozen=True)
class Sizes:
    """Volume sizes, as Kubernetes quantities (the Docker target ignores them)."""

    postgres: str = "10Gi"
    redis: str = "1Gi"
    kafka: str = "20Gi"


@dataclass(frozen=True)
class Cluster:
    """The NotificationCluster to make beside the servers (Kubernetes only)."""

    name: str
    image: str
    api_key_hashes: pulumi.Output[str]
    jwt_secret: pulumi.Output[str]


@dataclass(frozen=True)
class Docker:
    """Where the Docker target's servers are published on the host."""

    prefix: str = "notif"
    bind_address: str = "127.0.0.1"
    postgres_port: int = 5432
    redis_port: int = 6379
    kafka_port: int = 9094


@dataclass(frozen=True)
class Settings:
    target: str
    postgres_password: pulumi.Output[str]
    # Redis asks for no password when this is None.
    redis_password: Optional[pulumi.Output[str]]
    volumes_on_destroy: str = "retain"
    images: Images = field(default_factory=Images)
    sizes: Sizes = field(default_factory=Sizes)
    storage_class: Optional[str] = None
    namespace: str = "notifications"
    namespace_annotations: dict = field(default_factory=dict)
    kafka_replicas: int = 1
    cluster: Optional[Cluster] = None
    docker: Docker = field(default_factory=Docker)


def _one_of(config: pulumi.Config, key: str, allowed: tuple, default: str) -> str:
    value = config.get(key) or default
    if value not in allowed:
        raise ConfigError(f"config '{key}' is '{value}'; it must be one of: {', '.join(allowed)}")
    return value


def _port(config: pulumi.Config, key: str, default: int) -> int:
    value = config.get_int(key)
    if value is None:
        return default
    if not 1 <= value <= 65535:
        raise ConfigError(f"config '{key}' is {value}; a port is from 1 to 65535")
    return value


def _cluster(config: pulumi.Config) -> Optional[Cluster]:
    image = config.get("clusterImage")
    if image is None:
        return None
    missing = [key for key in ("publisherKeyHashes", "jwtSecret") if config.get(key) is None]
    if missing:
        raise ConfigError(
            f"config 'clusterImage' makes a NotificationCluster, which needs {' and '.join(missing)} "
            "(pulumi config set --secret KEY VALUE)"
        )
    return Cluster(
        name=config.get("clusterName") or "notifications",
        image=image,
        api_key_hashes=config.require_secret("publisherKeyHashes"),
        jwt_secret=config.require_secret("jwtSecret"),
    )


def read(config: Optional[pulumi.Config] = None) -> Settings:
    """The settings of the current stack."""
    config = config or pulumi.Config()
    target = _one_of(config, "target", TARGETS, "kubernetes")
    replicas = config.get_int("kafkaReplicas")
    replicas = 1 if replicas is None else replicas
    if replicas < 1:
        raise ConfigError(f"config 'kafkaReplicas' is {replicas}; Kafka needs at least 1 broker")
    cluster = _cluster(config)
    if cluster is not None and target != "kubernetes":
        raise ConfigError("config 'clusterImage' is for the kubernetes target only: the operator makes the cluster")
    return Settings(
        target=target,
        postgres_password=config.require_secret("postgresPassword"),
        redis_password=config.get_secret("redisPassword"),
        volumes_on_destroy=_one_of(config, "volumesOnDestroy", VOLUME_POLICIES, "retain"),
        images=Images(
            postgres=config.get("postgresImage") or POSTGRES_IMAGE,
            redis=config.get("redisImage") or REDIS_IMAGE,
            kafka=config.get("kafkaImage") or KAFKA_IMAGE,
        ),
        sizes=Sizes(
            postgres=config.get("postgresStorage") or Sizes.postgres,
            redis=config.get("redisStorage") or Sizes.redis,
            kafka=config.get("kafkaStorage") or Sizes.kafka,
        ),
        storage_class=config.get("storageClass"),
        namespace=config.get("namespace") or "notifications",
        namespace_annotations=config.get_object("namespaceAnnotations") or {},
        kafka_replicas=replicas,
        cluster=cluster,
        docker=Docker(
            prefix=config.get("dockerPrefix") or Docker.prefix,
            bind_address=config.get("bindAddress") or Docker.bind_address,
            postgres_port=_port(config, "postgresPort", Docker.postgres_port),
            redis_port=_port(config, "redisPort", Docker.redis_port),
            kafka_port=_port(config, "kafkaPort", Docker.kafka_port),
        ),
    )
