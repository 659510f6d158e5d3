"""The program's resources for each target, with Pulumi's mocks in place of
the engine: what is made, with which inputs, that passwords stay secret,
and that bad configuration is refused by name. No CLI or provider runs."""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import rpc

from backing import settings
from backing.docker import Servers as DockerServers
from backing.kubernetes import Servers as KubernetesServers
from backing.settings import ConfigError

PROJECT = "notif-backing"


class Recorded(pulumi.runtime.Mocks):
    """Keeps what was registered; each resource's outputs are its inputs."""

    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of(self, typ: str) -> dict[str, dict]:
        return {r.name: r.inputs for r in self.resources if r.typ == typ}


def configure(mocks: Recorded, values: dict, secret: tuple = ("postgresPassword", "redisPassword")) -> None:
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False)
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{k}": v for k, v in values.items()},
        [f"{PROJECT}:{k}" for k in secret if k in values],
    )



def run(target: type, values: dict, secret: tuple = ("postgresPassword", "redisPassword"), probe=lambda s: []):
    """Runs `target`'s program on `values` under mocks, to its end; returns
    what was registered, the servers, and the values of `probe(servers)`."""
    mocks = Recorded()
    configure(mocks, values, secret)
    made = {}

    @pulumi.runtime.test
    def program():
        made["servers"] = target(settings.read())
        return pulumi.Output.all(*probe(made["servers"])).apply(lambda values: made.setdefault("probed", values))

    program()
    return mocks, made["servers"], made["probed"]


def secret(value: dict):
    """The value inside a secret the engine was given; fails if it was not one."""
    assert value.get(rpc._special_sig_key) == rpc._special_secret_sig, f"not a secret: {value}"
    return value["value"]


def secrecy(output: pulumi.Output) -> pulumi.Output:
    return pulumi.Output.from_input(output.is_secret())


def env_of(stateful_set: dict) -> dict:
    container = stateful_set["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_kubernetes_makes_each_server_a_stateful_set_with_its_volume_and_services():
    mocks, _, _ = run(
        KubernetesServers,
        {
            "postgresPassword": "pg-secret",
            "redisPassword": "redis-secret",
            "namespace": "backing",
            "kafkaReplicas": "3",
            "storageClass": "fast",
            "kafkaStorage": "50Gi",
            "volumesOnDestroy": "delete",
        },
    )
    sets = mocks.of("kubernetes:apps/v1:StatefulSet")
    assert sorted(sets) == ["kafka", "postgres", "redis"]
    services = mocks.of("kubernetes:core/v1:Service")
    assert sorted(services) == sorted(
        ["kafka", "kafka-headless", "postgres", "postgres-headless", "redis", "redis-headless"]
    )
    for name, spec in ((n, s["spec"]) for n, s in sets.items()):
        assert spec["serviceName"] == f"{name}-headless"
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"] == labels
        assert services[name]["spec"]["selector"] == labels
        assert services[f"{name}-headless"]["spec"]["clusterIP"] == "None"
        assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
        assert spec["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    assert sets["kafka"]["spec"]["replicas"] == 3
    assert sets["kafka"]["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert sets["postgres"]["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"

    kafka = env_of(sets["kafka"])
    pods = "kafka-headless.backing.svc"
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(f"{i}@kafka-{i}.{pods}:9093" for i in range(3))
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://$(POD_NAME).{pods}:9092"
    assert kafka["KAFKA_NODE_ID"] == {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
    assert kafka["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
    assert kafka["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert len(kafka["CLUSTER_ID"]) == 22

    # Passwords reach the servers from Secrets, never as plain values.
    postgres = env_of(sets["postgres"])
    assert postgres["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": "postgres", "key": "password"}}
    assert env_of(sets["redis"])["REDIS_PASSWORD"] == {"secretKeyRef": {"name": "redis", "key": "password"}}
    secrets = mocks.of("kubernetes:core/v1:Secret")
    assert secret(secrets["notif-postgres"]["stringData"]) == {
        "url": "postgres://notifications:pg-secret@postgres.backing.svc:5432/notifications"
    }
    assert secret(secrets["notif-redis"]["stringData"]) == {"url": "redis://:redis-secret@redis.backing.svc:6379"}
    assert not mocks.of("kubernetes:notifications.saasaparilla.dev/v1alpha1:NotificationCluster")


def test_kubernetes_keeps_passwords_and_urls_secret():
    def probe(servers):
        secrets = {s._name: s for s in servers.secrets}
        return [
            servers.postgres_url,
            secrecy(servers.postgres_url),
            secrecy(servers.redis_url),
            secrecy(secrets["notif-postgres"].string_data),
            secrecy(secrets["notif-redis"].string_data),
        ]

    _, _, (url, *flags) = run(KubernetesServers, {"postgresPassword": "pg secret/with:marks", "redisPassword": "r"}, probe=probe)
    # Marks in the password are escaped in the URL.
    assert url == "postgres://notifications:pg%20secret%2Fwith%3Amarks@postgres.notifications.svc:5432/notifications"
    assert flags == [True] * 4


def test_redis_without_a_password_asks_for_none():
    mocks, _, (url,) = run(KubernetesServers, {"postgresPassword": "pg"}, probe=lambda s: [s.redis_url])
    assert url == "redis://redis.notifications.svc:6379"
    redis = mocks.of("kubernetes:apps/v1:StatefulSet")["redis"]
    container = redis["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["docker-entrypoint.sh", "redis-server"]
    assert container["env"] == []
    assert "redis" not in mocks.of("kubernetes:core/v1:Secret")


def test_the_notification_cluster_reads_the_secrets_made_beside_it():
    mocks, _, _ = run(
        KubernetesServers,
        {
            "postgresPassword": "pg",
            "clusterImage": "ghcr.io/saasaparilla/notifd:0.1.0",
            "publisherKeyHashes": "sha256:ab",
            "jwtSecret": "a-jwt-secret-of-at-least-32-bytes",
        },
        secret=("postgresPassword", "publisherKeyHashes", "jwtSecret"),
    )
    spec = mocks.of("kubernetes:notifications.saasaparilla.dev/v1alpha1:NotificationCluster")["cluster"]["spec"]
    assert spec["image"] == "ghcr.io/saasaparilla/notifd:0.1.0"
    assert spec["kafka"] == {"bootstrapServers": "kafka.notifications.svc:9092", "replicationFactor": 1}
    assert spec["postgres"]["url"] == {"name": "notif-postgres", "key": "url"}
    assert spec["redis"]["url"] == {"name": "notif-redis", "key": "url"}
    secrets = mocks.of("kubernetes:core/v1:Secret")
    assert secret(secrets["notif-publishers"]["stringData"]) == {"hashes": "sha256:ab"}
    assert secret(secrets["notif-jwt"]["stringData"]) == {"secret": "a-jwt-secret-of-at-least-32-bytes"}


def test_docker_makes_the_servers_containers_on_a_network_with_volumes():
    mocks, _, (postgres_env, redis_env) = run(
        DockerServers,
        {"target": "docker", "postgresPassword": "pg", "dockerPrefix": "t1", "kafkaPort": "19094", "postgresPort": "15432"},
        probe=lambda s: [s.postgres.env, s.redis.env],
    )
    containers = mocks.of("pulumi-python:dynamic/docker:Container")
    assert sorted(containers) == ["t1-kafka", "t1-postgres", "t1-redis"]
    assert sorted(mocks.of("pulumi-python:dynamic/docker:Volume")) == ["t1-kafka", "t1-postgres", "t1-redis"]
    assert list(mocks.of("pulumi-python:dynamic/docker:Network")) == ["t1"]
    for name, container in containers.items():
        assert container["network"] == "t1"
        assert container["bindAddress"] == "127.0.0.1"
        assert [v["volume"] for v in container["volumes"]] == [name]
    assert containers["t1-postgres"]["ports"] == {"5432": 15432}
    kafka = containers["t1-kafka"]
    assert kafka["ports"] == {"9094": 19094}
    assert kafka["env"]["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://t1-kafka:9092,HOST://127.0.0.1:19094"
    assert kafka["env"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "0@t1-kafka:9093"
    assert postgres_env["POSTGRES_PASSWORD"] == "pg"
    assert redis_env == {}


def test_docker_keeps_passwords_secret():
    _, _, flags = run(
        DockerServers,
        {"target": "docker", "postgresPassword": "pg", "redisPassword": "r"},
        probe=lambda s: [secrecy(s.postgres.env), secrecy(s.redis.env)],
    )
    assert flags == [True, True]


@pytest.mark.parametrize(
    "values, message",
    [
        ({"target": "nomad", "postgresPassword": "pg"}, "config 'target' is 'nomad'; it must be one of: kubernetes, docker"),
        ({"postgresPassword": "pg", "kafkaReplicas": "0"}, "config 'kafkaReplicas' is 0"),
        ({"target": "docker", "postgresPassword": "pg", "redisPort": "70000"}, "config 'redisPort' is 70000"),
        ({"postgresPassword": "pg", "volumesOnDestroy": "maybe"}, "config 'volumesOnDestroy' is 'maybe'"),
        ({"postgresPassword": "pg", "clusterImage": "notifd"}, "needs publisherKeyHashes and jwtSecret"),
    ],
)
def test_bad_configuration_is_refused_by_name(values, message):
    configure(Recorded(), values)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        settings.read()


def test_a_missing_postgres_password_is_refused_by_name():
    configure(Recorded(), {})
    with pytest.raises(pulumi.ConfigMissingError, match="postgresPassword"):
        settings.read()
