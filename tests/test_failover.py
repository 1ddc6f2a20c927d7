"""Several broker addresses: settings, the link's rotation, and a fleet that moves to the next broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from waiting import wait_until

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import generate_tone
from speakerctl.broker.address import parse_addresses
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.clock import SystemClock
from speakerctl.config import Settings, load_settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import ConfigError, LinkError
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BulletinInfo

ZONE = "st-ke-sach"
CLUSTERS = 6


def test_settings_take_several_brokers_in_order(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker="mqtt://a:1883, mqtt://b:1884,", broker_ca="/ca.pem")
    assert [a.url for a in settings.broker_addresses] == ["mqtt://a:1883", "mqtt://b:1884"]
    assert settings.broker_address.host == "a" and [a.port for a in settings.broker_fallbacks] == [1884]
    assert all(a.ca_file == "/ca.pem" for a in settings.broker_addresses)


def test_a_toml_list_of_brokers_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('broker = ["mqtt://a:1883", "mqtt://b:1884"]\n', encoding="utf-8")
    assert [a.port for a in load_settings(path, env={}).broker_addresses] == [1883, 1884]


@pytest.mark.parametrize("text", ["", " , ", "mqtt://a:1883,http://b"])
def test_a_bad_broker_list_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_addresses(text)


async def test_no_broker_of_several_fails_fast_naming_them_all(tmp_path: Path) -> None:
    ports = free_port(), free_port()
    settings = Settings(data_dir=tmp_path, broker=",".join(f"mqtt://127.0.0.1:{p}" for p in ports))
    controller = Controller(settings, open_store(settings))
    with pytest.raises(ExceptionGroup) as caught:
        async with controller.running():
            pytest.fail("connected to brokers that do not exist")
    error = caught.value.exceptions[0]
    assert isinstance(error, LinkError)
    assert all(f"127.0.0.1:{p}" in str(error) for p in ports)


@dataclass
class Rig:
    """Two independent Mosquittos, a small fleet and a controller told both addresses."""

    first: MosquittoProcess
    second: MosquittoProcess
    fleet: Fleet
    controller: Controller
    bulletin: BulletinInfo


@pytest.fixture
async def rig(tmp_path: Path, mosquitto_binary: str) -> AsyncIterator[Rig]:
    """The first broker is everybody's preference; the second is where they go when it dies."""
    brokers = [
        MosquittoProcess(MosquittoConfig(port=free_port()), tmp_path / f"m{i}", binary=mosquitto_binary)
        for i in (1, 2)
    ]
    with brokers[0] as first, brokers[1] as second:
        settings = Settings(
            data_dir=tmp_path / "controller",
            broker=f"{first.url},{second.url}",
            accept_window_s=1.0,
            broadcast_timeout_s=30,
        )
        load_or_create_signer(settings.keys_dir)
        options = FleetOptions(
            root=tmp_path / "fleet", time_scale=20, trust_file=trusted_path(settings.keys_dir)
        )
        inventory = load_inventory()
        ids = [d.id for d in inventory.devices_under(ZONE)][:CLUSTERS]
        records = [r for r in provisioning_records(inventory) if r.device_id in ids]
        fleet = Fleet(records, settings.broker_address, options, settings.broker_fallbacks)
        store = open_store(settings)
        tone = generate_tone(1.0, path=tmp_path / "tin.wav")
        bulletin, _ = import_bulletin(store, settings, SystemClock(), tone, "Tin thử")
        controller = Controller(settings, store)
        async with asyncio.TaskGroup() as tg:
            fleet_task = tg.create_task(fleet.run())
            await fleet.wait_online(30)
            async with controller.running():
                yield Rig(first, second, fleet, controller, bulletin)
            fleet_task.cancel()


def _on(rig: Rig, broker: MosquittoProcess) -> Callable[[], bool]:
    links = [d.agent.link for d in rig.fleet.devices.values()] + [rig.controller.link]
    return lambda: all(link.connected.is_set() and link.address.port == broker.port for link in links)


async def test_clients_continue_on_the_second_broker_when_the_first_dies(rig: Rig) -> None:
    assert _on(rig, rig.first)()
    before = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, tuple(rig.fleet.devices)))
    assert before.counts.get("finished") == CLUSTERS, before.counts
    rig.first.stop()
    await wait_until(_on(rig, rig.second), "every link on the second broker")
    after = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, tuple(rig.fleet.devices)))
    assert after.counts.get("finished") == CLUSTERS, after.counts
    assert after.upload_bytes == 0  # the clusters kept their cache across the move
