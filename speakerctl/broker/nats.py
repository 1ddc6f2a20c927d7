"""A NATS server cluster with JetStream and its MQTT listener: configs, nodes started and stopped by PID.

NATS speaks MQTT 3.1.1 only (no MQTT 5, no `$share` shared subscriptions); every QoS 1 subscription
is a JetStream consumer and retained messages live in a stream, so the MQTT listener needs JetStream
and, in a cluster, a JetStream quorum (two of three nodes) before it serves. The link already speaks
3.1.1 and nothing more, so controller, agents and simulator run on it unchanged; they are given
the three MQTT listeners as one comma-separated broker list and fail over between them.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.ports import LOOPBACK, accepts_connections, restartable_ports, wait_until_listening
from speakerctl.broker.process import OwnedProcess, terminate
from speakerctl.errors import BrokerError

CLUSTER_NAME = "speakerctl"
CONF_NAME = "nats.conf"
OUTPUT_NAME = "nats.out"


def find_nats_server() -> str | None:
    """The nats-server binary: on PATH, or where Debian's package puts it."""
    found = shutil.which("nats-server")
    if found is not None:
        return found
    debian = Path("/usr/sbin/nats-server")
    return str(debian) if debian.exists() else None


@dataclass(frozen=True, slots=True)
class NatsNodeConfig:
    """One node: its client, route and MQTT ports, its peers' routes, and the MQTT delivery limits."""

    name: str
    port: int
    cluster_port: int
    mqtt_port: int
    routes: tuple[int, ...]
    """Route ports of the other nodes."""
    host: str = LOOPBACK
    ack_wait: str = "30s"
    """How long NATS waits for a QoS 1 PUBACK before it redelivers (mqtt.ack_wait)."""
    max_ack_pending: int = 1000
    """Unacknowledged QoS 1 messages per subscription before NATS stops sending (mqtt.max_ack_pending)."""
    replicas: int = 3
    """Replicas of the MQTT sessions', retained messages' and QoS 1 streams: survives one node lost."""

    def render(self, store_dir: Path) -> str:
        """The node's nats-server configuration."""
        routes = ", ".join(f"nats-route://{self.host}:{p}" for p in self.routes)
        return f"""server_name: {self.name}
listen: {self.host}:{self.port}
jetstream {{
  store_dir: "{store_dir}"
  max_memory_store: 64MB
  max_file_store: 1GB
}}
cluster {{
  name: {CLUSTER_NAME}
  listen: {self.host}:{self.cluster_port}
  routes: [{routes}]
}}
mqtt {{
  listen: {self.host}:{self.mqtt_port}
  ack_wait: "{self.ack_wait}"
  max_ack_pending: {self.max_ack_pending}
  stream_replicas: {self.replicas}
}}
"""


def cluster_configs(size: int = 3, host: str = LOOPBACK) -> tuple[NatsNodeConfig, ...]:
    """Configs of a `size`-node cluster on free ports of `host`, each routing to all the others."""
    # Nodes are killed and restarted on the same ports: keep them out of the ephemeral range.
    free = restartable_ports(3 * size, host)
    ports = [(free[3 * i], free[3 * i + 1], free[3 * i + 2]) for i in range(size)]
    return tuple(
        NatsNodeConfig(
            name=f"n{i + 1}",
            port=client,
            cluster_port=route,
            mqtt_port=mqtt,
            routes=tuple(p[1] for j, p in enumerate(ports) if j != i),
            host=host,
            replicas=min(3, size),
        )
        for i, (client, route, mqtt) in enumerate(ports)
    )


class NatsNode(OwnedProcess):
    """One nats-server we started and own by PID; `port` is its MQTT listener."""

    def __init__(
        self,
        config: NatsNodeConfig,
        directory: Path,
        *,
        binary: str | None = None,
        startup_timeout: float = 20,
    ) -> None:
        self.config = config
        self.directory = directory
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The address the listeners are bound to."""
        return self.config.host

    @property
    def port(self) -> int:
        """The MQTT listener's port (what the link connects to)."""
        return self.config.mqtt_port

    @property
    def nats_url(self) -> str:
        """`nats://host:port` of the NATS client listener (queue-group ingestion)."""
        return f"nats://{self.host}:{self.config.port}"

    def start(self) -> Self:
        """Write the config and start the node; `wait_serving` waits for its MQTT listener."""
        if self.is_running:
            return self
        binary = self._binary or find_nats_server()
        if binary is None:
            raise BrokerError("nats-server is not installed", hint="apt-get install nats-server")
        if accepts_connections(self.host, self.config.port):
            raise BrokerError(f"cannot start nats-server: {self.host}:{self.config.port} is already in use")
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / CONF_NAME
        conf.write_text(self.config.render(self.directory / "jetstream"), encoding="utf-8")
        with (self.directory / OUTPUT_NAME).open("ab") as output:
            process = subprocess.Popen(
                [binary, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        weakref.finalize(self, terminate, process, 1.0)
        self._process = process
        return self

    def wait_serving(self) -> None:
        """Wait until the MQTT listener accepts connections, or stop the node and raise BrokerError."""
        if not wait_until_listening(self.host, self.port, self._startup_timeout, lambda: self.is_running):
            code = self._process.poll() if self._process is not None else None
            self.stop()
            log = (self.directory / OUTPUT_NAME).read_text(encoding="utf-8", errors="replace")[-2000:]
            raise BrokerError(f"nats-server {self.config.name} did not serve MQTT (exit {code}): {log}")

    def kill(self) -> None:
        """Kill the node at once (SIGKILL), as a crash would; its store stays for a restart."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()


class NatsCluster:
    """A three-node NATS cluster (JetStream, MQTT) on loopback, in one directory; stopped by PID."""

    def __init__(self, directory: Path, *, size: int = 3, binary: str | None = None) -> None:
        self.nodes = [
            NatsNode(config, directory / config.name, binary=binary) for config in cluster_configs(size)
        ]

    @property
    def mqtt_urls(self) -> Sequence[str]:
        """Every node's MQTT listener, as `mqtt://host:port`."""
        return [node.url for node in self.nodes]

    @property
    def broker(self) -> str:
        """The broker setting for the whole cluster: every node's MQTT URL, comma-separated."""
        return ",".join(self.mqtt_urls)

    def start(self) -> Self:
        """Start every node (they find each other over the routes), then wait until each serves MQTT."""
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                node.wait_serving()
        except BaseException:
            self.stop()
            raise
        return self

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every running node opens MQTT sessions (its JetStream streams exist), or LinkError.

        A node listens at once but refuses sessions until the cluster has a JetStream leader and the
        MQTT streams: about ten seconds after a cold start of three nodes.
        """
        for node in self.nodes:
            if node.is_running:
                probe = Link(
                    BrokerAddress(node.host, node.port), _ignore, client_id=f"probe-{node.config.name}"
                )
                async with asyncio.TaskGroup() as tg:
                    task = tg.create_task(probe.run())
                    try:
                        await probe.wait_connected(timeout)
                    finally:
                        task.cancel()

    def stop(self) -> None:
        """Stop every node by PID; safe to call twice."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _ignore(_: Incoming) -> None:
    return None
