"""What each server runs with, the same on both targets: its environment,
command, data directory and health check, and the URLs that reach it.
Plain values only: the targets wrap them in their own resources."""

from __future__ import annotations

import base64
import uuid
from typing import Optional
from urllib.parse import quote

# The database, and its owner, that the service's inbox lives in.
POSTGRES_USER = "notifications"
POSTGRES_DB = "notifications"
POSTGRES_PORT = 5432
# A directory below the volume's root, which may hold lost+found.
POSTGRES_DATA = "/var/lib/postgresql/data"
PGDATA = f"{POSTGRES_DATA}/pgdata"

REDIS_PORT = 6379
REDIS_DATA = "/data"

# Clients inside the network or cluster; the controllers; clients on the
# Docker host.
KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
KAFKA_HOST_PORT = 9094
KAFKA_DATA = "/var/lib/kafka/data"

POSTGRES_HEALTH = ["pg_isready", "-U", POSTGRES_USER, "-d", POSTGRES_DB]
# redis-cli takes the password from REDISCLI_AUTH (see redis_environment).
REDIS_HEALTH = ["redis-cli", "ping"]
KAFKA_HEALTH = ["/opt/kafka/bin/kafka-broker-api-versions.sh", "--bootstrap-server", f"localhost:{KAFKA_PORT}"]


def postgres_environment() -> dict[str, str]:
    """Everything but POSTGRES_PASSWORD, which each target passes as a secret."""
    return {"POSTGRES_USER": POSTGRES_USER, "POSTGRES_DB": POSTGRES_DB, "PGDATA": PGDATA}


def redis_command(with_password: bool) -> list[str]:
    """The official image's entrypoint with Redis's arguments. The password,
    when there is one, comes from REDIS_PASSWORD, so that it is not in the
    container's command line."""
    if not with_password:
        return ["docker-entrypoint.sh", "redis-server"]
    return ["sh", "-c", 'exec docker-entrypoint.sh redis-server --requirepass "$REDIS_PASSWORD"']


def kafka_cluster_id(stack: str) -> str:
    """A KRaft cluster id (a UUID in base64url, 22 characters), the same for
    the same stack on every run."""
    id = uuid.uuid5(uuid.NAMESPACE_URL, f"https://saasaparilla.dev/notif-backing/{stack}")
    return base64.urlsafe_b64encode(id.bytes).decode().rstrip("=")


def kafka_environment(
    *,
    voters: list[str],
    listeners: dict[str, tuple[int, str]],
    replication: int,
    cluster_id: str,
) -> dict[str, str]:
    """The apache/kafka image's settings for a combined broker and controller
    in KRaft mode, but for its KAFKA_NODE_ID. `voters` are the controllers' `host:port`s, by
    node id from 0; `listeners` map a client listener's name to its port and
    advertised host:port."""
    names = list(listeners)
    protocols = [f"{name}:PLAINTEXT" for name in names] + ["CONTROLLER:PLAINTEXT"]
    min_isr = str(min(2, replication))
    return {
        "CLUSTER_ID": cluster_id,
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": ",".join(
            [f"{name}://:{port}" for name, (port, _) in listeners.items()]
            + [f"CONTROLLER://:{KAFKA_CONTROLLER_PORT}"]
        ),
        "KAFKA_ADVERTISED_LISTENERS": ",".join(
            f"{name}://{advertised}" for name, (_, advertised) in listeners.items()
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": names[0],
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": ",".join(protocols),
        "KAFKA_CONTROLLER_QUORUM_VOTERS": ",".join(f"{i}@{voter}" for i, voter in enumerate(voters)),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": str(replication),
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": str(replication),
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": min_isr,
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": str(replication),
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": min_isr,
        "KAFKA_DEFAULT_REPLICATION_FACTOR": str(replication),
        "KAFKA_MIN_INSYNC_REPLICAS": min_isr,
        # The operator makes the service's topic, with its partitions.
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }


def postgres_url(host: str, port: int, password: str) -> str:
    return f"postgres://{POSTGRES_USER}:{quote(password, safe='')}@{host}:{port}/{POSTGRES_DB}"


def redis_url(host: str, port: int, password: Optional[str]) -> str:
    credentials = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{credentials}{host}:{port}"
