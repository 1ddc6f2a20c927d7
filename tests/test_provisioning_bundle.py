"""Provisioning bundles: written per cluster by the CLI, read by the agent's loader, used by the simulator.

The simulated fleet connects with each cluster's own account from its bundle, against a real Mosquitto
configured by `broker config mosquitto`, so the per-device ACL is exercised.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner
from waiting import Observed

from devices.identity import read_bundle, read_bundles
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.ports import LOOPBACK, free_port, wait_until_listening
from speakerctl.cli.main import app
from speakerctl.config import Settings
from speakerctl.errors import ConfigError
from speakerctl.fleet import load_inventory
from speakerctl.protocol import Ack, Command, Ping, Priority, codec, topics
from speakerctl.protocol.provisioning import BUNDLE_FILE
from speakerctl.security.keys import load_or_create_signer


def _cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _two() -> tuple[str, str]:
    a, b = (d.id for d in load_inventory().devices[:2])
    return a, b


def test_a_bundle_holds_id_zone_chain_keys_brokers_credentials_ca_and_version(tmp_path: Path) -> None:
    runner, data = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    a, b = _two()
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n")
    urls = ["mqtts://broker.example:8883", "mqtts://backup.example:8883"]
    out = tmp_path / "bundles"
    args = ["devices", "provision", "--bundle", str(out), a, b, "--cafile", str(ca), "--json"]
    written = json.loads(_cli(runner, *data, *args, "--broker-url", urls[0], "--broker-url", urls[1]))
    assert [w["device_id"] for w in written["bundles"]] == [a, b]
    inventory = load_inventory()
    zone = next(d.zone for d in inventory.devices if d.id == a)
    installed = read_bundle(out / a)
    assert installed.identity.device_id == a
    assert installed.identity.zones == tuple(inventory.tree.ancestors(zone))  # root down
    assert installed.identity.zones[-1] == zone
    assert [x.url for x in installed.brokers] == [
        f"mqtts://{a}@broker.example:8883",
        f"mqtts://{a}@backup.example:8883",
    ]
    assert all(x.password and x.ca_file == str(out / a / "ca.pem") for x in installed.brokers)
    assert (out / a / "ca.pem").read_bytes() == ca.read_bytes()
    assert installed.trusted_keys.keys and written["key_id"] in installed.trusted_keys.keys
    assert (out / a / "password").stat().st_mode & 0o777 == 0o600
    bundle = json.loads((out / a / BUNDLE_FILE).read_text())
    assert (bundle["format"], bundle["protocol"], bundle["username"]) == (1, 1, a)
    # Only the hash of the secret stays on the controller's side.
    stored = (tmp_path / "data" / "credentials.json").read_text()
    assert installed.brokers[0].password not in stored
    assert len(read_bundles(out)) == 2


def test_an_empty_bundle_directory_or_a_bad_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no provisioning bundle"):
        read_bundles(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / BUNDLE_FILE).write_text('{"format": 1, "protocol": 1, "brokers": []}')
    with pytest.raises(ConfigError, match="bundle"):
        read_bundles(tmp_path)


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory the broker's own account can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="speakerctl-broker-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _mosquitto(binary: str, conf: Path, port: int) -> Iterator[None]:
    with subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE) as proc:
        try:
            assert wait_until_listening(LOOPBACK, port, 10, lambda: proc.poll() is None), proc.stderr
            yield
        finally:
            proc.terminate()
            proc.wait(5)


class Inbox:
    """What the controller's link received."""

    def __init__(self) -> None:
        self.seen: Observed[Incoming] = Observed()

    async def __call__(self, message: Incoming) -> None:
        self.seen.add(message)

    def on(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.seen.items if m.topic == topic]


async def test_the_simulated_fleet_connects_with_each_clusters_own_account_and_the_acl_holds(
    tmp_path: Path, broker_dir: Path, mosquitto_binary: str
) -> None:
    runner, data = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    a, b = _two()
    issued = json.loads(_cli(runner, *data, "devices", "provision", "--controller", "--json"))
    controller_secret = issued["accounts"][0]["secret"]
    port, controller_port = free_port(), free_port()
    out = tmp_path / "bundles"
    url = f"mqtt://{LOOPBACK}:{port}"
    _cli(runner, *data, "devices", "provision", "--bundle", str(out), a, b, "--broker-url", url)
    ports = ["--port", str(port), "--controller-port", str(controller_port)]
    _cli(runner, *data, "broker", "config", "mosquitto", "--out", str(broker_dir), *ports)
    settings = Settings(data_dir=tmp_path / "data", broker=f"mqtt://nobody@{LOOPBACK}:1")
    provisioned = runtime.clusters(runtime.context(settings), None, out)  # as `simulate --provisioning`
    # The fleet's own address is a dead one: every cluster must connect as its bundle says.
    fleet = Fleet(provisioned, settings.broker_address, FleetOptions(root=tmp_path / "fleet"))
    controller = BrokerAddress(LOOPBACK, controller_port, "speakerctl", controller_secret)
    inbox = Inbox()
    ctl = Link(controller, inbox, client_id="ctl")
    await ctl.subscribe([topics.ALL_STATUS, topics.ALL_EVENTS])
    signer = load_or_create_signer(tmp_path / "data" / "keys")
    now = time.time_ns() // 1_000_000
    ping = signer.sign_for(
        Command("bundle-ping-1", now, now + 60_000, Priority.NORMAL, Ping()), topics.device_cmd(b)
    )
    with _mosquitto(mosquitto_binary, broker_dir / "mosquitto.conf", port):
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(fleet.run()), tg.create_task(ctl.run(fail_fast=True))]
            await fleet.wait_online(20)
            await ctl.wait_connected(10)
            assert {d.agent.link.address.username for d in fleet.devices.values()} == {a, b}
            # A signed command reaches cluster b through its own account's ACL; it answers.
            await ctl.publish(topics.device_cmd(b), codec.encode(ping))
            await inbox.seen.wait_for(lambda _: _acked(inbox, b, "bundle-ping-1"), "b's ack")
            # Cluster a cannot speak for b: its forged status is refused, its own goes through.
            link_a = fleet.devices[a].agent.link
            await link_a.publish(topics.device_status(b), b'{"forged":1}')
            await link_a.publish(topics.device_events(a), b'{"own":1}')
            await inbox.seen.wait_for(
                lambda _: inbox.on(topics.device_events(a)) == [b'{"own":1}'], "a's own"
            )
            for task in tasks:
                task.cancel()
    assert b'{"forged":1}' not in inbox.on(topics.device_status(b))


def _acked(inbox: Inbox, device: str, command_id: str) -> bool:
    for payload in inbox.on(topics.device_events(device)):
        event = codec.decode_event(payload)
        if isinstance(event, Ack) and event.command_id == command_id:
            return True
    return False


async def test_a_cluster_fails_over_to_the_next_broker_of_its_bundle(embedded_broker: EmbeddedBroker) -> None:
    live = BrokerAddress.parse(embedded_broker.url)
    dead = BrokerAddress(LOOPBACK, free_port())
    link = Link(dead, Inbox(), client_id=f"failover-{free_port()}", fallbacks=[live])
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.wait_connected(20)
        task.cancel()
    assert link.address == live
