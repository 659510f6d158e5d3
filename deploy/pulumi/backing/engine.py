"""Networks, volumes and containers on a Docker engine, as Pulumi resources.

A dynamic provider over the engine's API (the `docker` client library), in
place of the pulumi-docker provider, which cannot be built from the Go
module proxy. The engine is the one DOCKER_HOST names, or the local socket.
A container is made anew when any of its inputs changes, and counts as made
only once its health check passes."""

from __future__ import annotations

import time
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

# How long a new container may take to become healthy.
HEALTHY_WITHIN_SECS = 180


def _client():
    # Imported here: the provider runs in a process of its own, which
    # imports this module by name.
    import docker

    return docker.from_env()


def _not_found():
    import docker

    return docker.errors.NotFound


class _Replaced(ResourceProvider):
    """Anything changed means a new one: networks, volumes and containers
    are not changed in place."""

    def diff(self, id: str, olds: dict, news: dict) -> DiffResult:
        changed = [k for k in set(olds) | set(news) if not k.startswith("__") and olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


class _Objects(_Replaced):
    """Reading and removing, the same for each kind of object: `kind` is the
    client's collection of them (`networks`, `volumes`, `containers`)."""

    kind: str

    def _get(self, id: str) -> Any:
        return getattr(_client(), self.kind).get(id)

    def read(self, id: str, props: dict) -> ReadResult:
        """What `pulumi refresh` finds: the object as it was made, or, when
        it is gone, no id, which tells the engine so."""
        try:
            self._get(id)
        except _not_found():
            return ReadResult(None, {})
        return ReadResult(id, props)

    def delete(self, id: str, props: dict) -> None:
        try:
            self._remove(self._get(id))
        except _not_found():
            pass

    def _remove(self, obj: Any) -> None:
        obj.remove()


class NetworkProvider(_Objects):
    kind = "networks"

    def create(self, props: dict) -> CreateResult:
        network = _client().networks.create(props["name"], driver="bridge", labels=props["labels"])
        return CreateResult(network.id, props)


class VolumeProvider(_Objects):
    kind = "volumes"

    def create(self, props: dict) -> CreateResult:
        volume = _client().volumes.create(props["name"], labels=props["labels"])
        return CreateResult(volume.name, props)


class ContainerProvider(_Objects):
    kind = "containers"

    def create(self, props: dict) -> CreateResult:
        container = _client().containers.run(
            props["image"],
            command=props.get("command") or None,
            name=props["name"],
            environment=props["env"],
            labels=props["labels"],
            volumes={v["volume"]: {"bind": v["path"], "mode": "rw"} for v in props["volumes"]},
            # Numbers come back from the engine as floats.
            ports={f"{port}/tcp": (props["bindAddress"], int(host)) for port, host in props["ports"].items()},
            network=props["network"],
            healthcheck={
                "test": ["CMD", *props["health"]],
                "interval": 3_000_000_000,
                "timeout": 20_000_000_000,
                "retries": 30,
            },
            restart_policy={"Name": "unless-stopped"},
            detach=True,
        )
        _wait_until_healthy(container, props["name"])
        return CreateResult(container.id, props)

    def _remove(self, container: Any) -> None:
        container.remove(force=True)


def _wait_until_healthy(container: Any, name: str) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN_SECS
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return
        if state["Status"] in ("exited", "dead"):
            raise RuntimeError(f"container {name} exited ({state.get('ExitCode')}); its log ends:\n{_tail(container)}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"container {name} is not healthy after {HEALTHY_WITHIN_SECS} s ({health}); its log ends:\n{_tail(container)}"
            )
        time.sleep(1)


def _tail(container: Any) -> str:
    return container.logs(tail=20).decode(errors="replace")


class Network(Resource, module="docker", name="Network"):
    def __init__(self, name: str, labels: dict, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(NetworkProvider(), name, {"name": name, "labels": labels}, opts)


class Volume(Resource, module="docker", name="Volume"):
    def __init__(self, name: str, labels: dict, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(VolumeProvider(), name, {"name": name, "labels": labels}, opts)


class Container(Resource, module="docker", name="Container"):
    """A container on `network`, reachable there by its name, with
    `volumes` (each a volume's name and the path it is mounted on), `ports`
    (container port to host port on `bind_address`) and a `health` command."""

    def __init__(
        self,
        name: str,
        *,
        image: str,
        network: pulumi.Input[str],
        env: dict,
        labels: dict,
        health: list[str],
        volumes: list,
        ports: dict,
        bind_address: str,
        command: Optional[list[str]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "name": name,
            "image": image,
            "network": network,
            "env": env,
            "labels": labels,
            "health": health,
            "volumes": volumes,
            # Keys are strings in the state.
            "ports": {str(port): host for port, host in ports.items()},
            "bindAddress": bind_address,
            "command": command,
        }
        # The environment holds passwords.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["env"]))
        super().__init__(ContainerProvider(), name, props, opts)
