"""The Docker target: the compose deployment's backing half (PostgreSQL,
Redis and a single Kafka node) as containers with volumes on a network of
their own, each published on the host's `bindAddress`."""

from __future__ import annotations

import pulumi

from . import servers
from .engine import Container, Network, Volume
from .settings import Settings


class Servers:
    """The three servers, named `<dockerPrefix>-<server>`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        docker = settings.docker
        self.labels = {"dev.saasaparilla.notif-backing/stack": f"{pulumi.get_project()}/{pulumi.get_stack()}"}
        self.network = Network(docker.prefix, self.labels)
        keep = pulumi.ResourceOptions(retain_on_delete=settings.volumes_on_destroy == "retain")
        self.volumes = {server: Volume(self.name(server), self.labels, keep) for server in ("postgres", "redis", "kafka")}
        self.postgres = self._container(
            "postgres",
            image=settings.images.postgres,
            env=settings.postgres_password.apply(lambda pw: {**servers.postgres_environment(), "POSTGRES_PASSWORD": pw}),
            health=servers.POSTGRES_HEALTH,
            data=servers.POSTGRES_DATA,
            ports={servers.POSTGRES_PORT: docker.postgres_port},
        )
        password = settings.redis_password
        self.redis = self._container(
            "redis",
            image=settings.images.redis,
            env=pulumi.Output.from_input(password).apply(
                lambda pw: {"REDIS_PASSWORD": pw, "REDISCLI_AUTH": pw} if pw is not None else {}
            ),
            command=servers.redis_command(password is not None),
            health=servers.REDIS_HEALTH,
            data=servers.REDIS_DATA,
            ports={servers.REDIS_PORT: docker.redis_port},
        )
        kafka = self.name("kafka")
        self.kafka = self._container(
            "kafka",
            image=settings.images.kafka,
            env={
                "KAFKA_NODE_ID": "0",
                **servers.kafka_environment(
                    voters=[f"{kafka}:{servers.KAFKA_CONTROLLER_PORT}"],
                    listeners={
                        # Containers on the network, then clients on the host.
                        "PLAINTEXT": (servers.KAFKA_PORT, f"{kafka}:{servers.KAFKA_PORT}"),
                        "HOST": (servers.KAFKA_HOST_PORT, f"{docker.bind_address}:{docker.kafka_port}"),
                    },
                    replication=1,
                    cluster_id=servers.kafka_cluster_id(pulumi.get_stack()),
                ),
            },
            health=servers.KAFKA_HEALTH,
            data=servers.KAFKA_DATA,
            ports={servers.KAFKA_HOST_PORT: docker.kafka_port},
        )

    def name(self, server: str) -> str:
        return f"{self.settings.docker.prefix}-{server}"

    def _container(self, server: str, *, data: str, **kwargs) -> Container:
        return Container(
            self.name(server),
            network=self.network.name,
            labels=self.labels,
            volumes=[{"volume": self.volumes[server].name, "path": data}],
            bind_address=self.settings.docker.bind_address,
            **kwargs,
        )

    def export(self) -> None:
        docker, host = self.settings.docker, self.settings.docker.bind_address
        pulumi.export("network", self.network.name)
        pulumi.export("containers", [c.name for c in (self.postgres, self.redis, self.kafka)])
        pulumi.export("kafkaBootstrapServers", f"{host}:{docker.kafka_port}")
        pulumi.export("kafkaBootstrapServersInNetwork", f"{self.name('kafka')}:{servers.KAFKA_PORT}")
        pulumi.export(
            "postgresUrl",
            pulumi.Output.secret(self.settings.postgres_password).apply(
                lambda pw: servers.postgres_url(host, docker.postgres_port, pw)
            ),
        )
        pulumi.export(
            "redisUrl",
            pulumi.Output.from_input(self.settings.redis_password).apply(
                lambda pw: servers.redis_url(host, docker.redis_port, pw)
            ),
        )
