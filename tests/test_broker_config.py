"""The Mosquitto configuration `broker config mosquitto` writes, run by a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from typer.testing import CliRunner

from speakerctl.broker.mosquitto import MOSQUITTO_USER, broker_account
from speakerctl.broker.ports import LOOPBACK, free_port, wait_until_listening
from speakerctl.cli.main import app
from speakerctl.errors import ConfigError
from speakerctl.fleet import load_inventory
from speakerctl.protocol import topics
from speakerctl.protocol.limits import BROKER_MAX_PAYLOAD, MAX_CHUNK_PAYLOAD, MAX_JSON_PAYLOAD

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
WAIT = 5.0


@dataclass
class FleetBroker:
    """A generated broker configuration, its ports and the accounts it knows."""

    binary: str
    out: Path
    port: int
    controller_port: int
    secrets: dict[str, str]
    a: str
    b: str

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Mosquitto started on the generated mosquitto.conf, terminated (and saved) on exit."""
        argv = [self.binary, "-c", str(self.out / "mosquitto.conf")]
        with subprocess.Popen(argv, stderr=subprocess.PIPE) as proc:
            try:
                alive = lambda: proc.poll() is None  # noqa: E731
                assert wait_until_listening(LOOPBACK, self.port, WAIT, alive), proc.stderr
                assert wait_until_listening(LOOPBACK, self.controller_port, WAIT, alive)
                yield
            finally:
                proc.terminate()
                proc.wait(WAIT)

    def cluster(self, user: str, client_id: str | None = None, *, clean: bool = True) -> aiomqtt.Client:
        """A connection on the clusters' listener with `user`'s secret."""
        return aiomqtt.Client(
            LOOPBACK,
            self.port,
            username=user,
            password=self.secrets[user],
            identifier=client_id or user,
            clean_session=clean,
            socket_options=[NODELAY],
        )

    def controller(self) -> aiomqtt.Client:
        """A connection on the controller's listener."""
        return aiomqtt.Client(
            LOOPBACK,
            self.controller_port,
            username="speakerctl",
            password=self.secrets["speakerctl"],
            identifier="speakerctl-test",
            socket_options=[NODELAY],
        )


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory the broker's own account can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="speakerctl-broker-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fleet_broker(tmp_path: Path, broker_dir: Path, mosquitto_binary: str) -> FleetBroker:
    """Two provisioned clusters and the controller, and the config written for them."""
    runner, data = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    a, b = (d.id for d in load_inventory().devices[:2])
    issued = _cli(runner, *data, "devices", "provision", a, b, "--controller", "--json")
    secrets = {acc["username"]: acc["secret"] for acc in json.loads(issued)["accounts"]}
    port, controller_port = free_port(), free_port()
    ports = ["--port", str(port), "--controller-port", str(controller_port)]
    _cli(runner, *data, "broker", "config", "mosquitto", "--out", str(broker_dir), *ports)
    return FleetBroker(mosquitto_binary, broker_dir, port, controller_port, secrets, a, b)


def _cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


async def _first(client: aiomqtt.Client, count: int = 1) -> list[aiomqtt.Message]:
    """The first `count` messages, or fewer if WAIT seconds pass first."""
    got: list[aiomqtt.Message] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT):
            async for message in client.messages:
                got.append(message)
                if len(got) == count:
                    break
    return got


@contextlib.asynccontextmanager
async def _subscribed(client: aiomqtt.Client, topic: str) -> AsyncIterator[aiomqtt.Client]:
    async with client:
        await client.subscribe(topic, qos=1)
        yield client


async def test_a_cluster_cannot_take_over_another_clusters_session(fleet_broker: FleetBroker) -> None:
    fb = fleet_broker
    command = topics.device_cmd(fb.b)
    with fb.running():
        async with _subscribed(fb.cluster(fb.b, clean=False), command):
            pass
        async with fb.controller() as controller:
            await controller.publish(command, b"queued for b", qos=1)
        # Cluster a connects with b's client id and a clean session: on a broker that lets it,
        # b's session and its queued command are gone.
        async with fb.cluster(fb.a, fb.b, clean=True):
            pass
        async with fb.cluster(fb.b, clean=False) as b:
            received = await _first(b)
    assert [m.payload for m in received] == [b"queued for b"]


async def test_a_restart_keeps_queued_commands_and_retained_statuses(fleet_broker: FleetBroker) -> None:
    fb = fleet_broker
    command, status = topics.device_cmd(fb.b), topics.device_status(fb.a)
    with fb.running():
        async with _subscribed(fb.cluster(fb.b, clean=False), command):
            pass
        async with fb.controller() as controller:
            await controller.publish(command, b"play after restart", qos=1)
        async with fb.cluster(fb.a) as a:
            await a.publish(status, b'{"state":"idle"}', qos=1, retain=True)
    with fb.running():
        async with fb.cluster(fb.b, clean=False) as b:
            commands = await _first(b)
        async with _subscribed(fb.controller(), topics.ALL_STATUS) as controller:
            statuses = await _first(controller)
    assert [m.payload for m in commands] == [b"play after restart"]
    assert [(str(m.topic), m.payload) for m in statuses] == [(status, b'{"state":"idle"}')]


async def test_a_publish_over_the_broker_payload_limit_is_dropped(fleet_broker: FleetBroker) -> None:
    fb = fleet_broker
    content = topics.content(64 * "0")
    sizes = [MAX_CHUNK_PAYLOAD, MAX_JSON_PAYLOAD, BROKER_MAX_PAYLOAD, BROKER_MAX_PAYLOAD + 1, 1]
    assert max(MAX_CHUNK_PAYLOAD, MAX_JSON_PAYLOAD) <= BROKER_MAX_PAYLOAD
    with fb.running():
        async with _subscribed(fb.cluster(fb.a), content) as a, fb.controller() as controller:
            for size in sizes:
                await controller.publish(content, b"x" * size, qos=1)
            received = await _first(a, 4)
    lengths = [len(m.payload) for m in received if isinstance(m.payload, bytes)]
    assert lengths == [MAX_CHUNK_PAYLOAD, MAX_JSON_PAYLOAD, BROKER_MAX_PAYLOAD, 1]


def test_the_broker_never_runs_as_root() -> None:
    assert broker_account(0, None, lambda name: name == MOSQUITTO_USER) == MOSQUITTO_USER
    assert broker_account(0, "ops", lambda name: False) == "ops"
    with pytest.raises(ConfigError):
        broker_account(0, "root", lambda name: False)


def test_the_generated_config_names_no_root_user(fleet_broker: FleetBroker) -> None:
    lines = (fleet_broker.out / "mosquitto.conf").read_text().splitlines()
    assert "user root" not in lines
    assert f"message_size_limit {BROKER_MAX_PAYLOAD}" in lines
    assert "persistence true" in lines
