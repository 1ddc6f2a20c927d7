"""The whole pipeline for real: broker, simulated fleet (the device agent), controller, store, audio."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import generate_tone
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.link import Incoming, Link
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import AckTimeout, NotFound
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import Ping, Priority, Reboot, SetVolume, topics
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BulletinInfo

# The clusters of Kế Sách district: enough to exercise zones, mixed models and codecs.
ZONE = "st-ke-sach"


@dataclass
class Rig:
    """A running fleet and controller against one broker."""

    settings: Settings
    fleet: Fleet
    controller: Controller
    bulletin: BulletinInfo


@pytest.fixture(params=["mosquitto", "embedded"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs against a fresh Mosquitto of its own and a fresh embedded broker.

    Fresh, because clusters keep persistent sessions: a shared broker would carry one test's
    queued commands into the next.
    """
    if request.param == "mosquitto":
        yield str(request.getfixturevalue("mosquitto").url)
        return
    with EmbeddedBroker() as broker:
        yield broker.url


@pytest.fixture
async def rig(broker_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    """Fleet of the Kế Sách district clusters plus a controller, both on the broker."""
    settings = Settings(
        data_dir=tmp_path / "controller", broker=broker_url, accept_window_s=1.0, broadcast_timeout_s=30
    )
    inventory = load_inventory()
    ids = [d.id for d in inventory.devices_under(ZONE)]
    # Provisioning: the clusters trust the controller's public key, given to them as a file.
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", time_scale=20, trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    fleet.devices = {k: v for k, v in fleet.devices.items() if k in ids}
    store = open_store(settings)
    tone = generate_tone(2.0, path=tmp_path / "tin-tuc.wav")
    bulletin, _ = import_bulletin(store, settings, SystemClock(), tone, "Tin tức nông nghiệp")
    controller = Controller(settings, store)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        async with controller.running():
            yield Rig(settings, fleet, controller, bulletin)
        fleet_task.cancel()


async def test_broadcast_reaches_every_cluster_and_content_is_uploaded_once(rig: Rig) -> None:
    result = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, (ZONE,)))
    n = len(rig.fleet.devices)
    assert result.total == n and n >= 20
    assert result.counts.get("finished") == n, result.counts
    store = rig.controller.store
    assert store.broadcasts.get(result.broadcast_id).state == "complete"
    assert store.deliveries.counts(result.broadcast_id)["finished"] == n
    variants = store.bulletins.variants(rig.bulletin.id)
    # One upload per variant, whatever the fleet size (plus small repairs, if any).
    assert result.upload_bytes < 1.2 * sum(v.size for v in variants)
    for device in rig.fleet.devices.values():
        cached = device.agent.cache.hashes
        assert len(cached) == 1
        blob = device.agent.cache.path(cached[0]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == cached[0]
        assert device.output.played == cached


async def test_second_broadcast_uses_the_cache(rig: Rig) -> None:
    await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, (ZONE,)))
    again = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, (ZONE,), Priority.PRIORITY))
    assert again.complete
    assert again.upload_bytes == 0
    assert all(d.cached for d in rig.controller.store.deliveries.of(again.broadcast_id))


async def test_unknown_target_is_refused_before_anything_is_sent(rig: Rig) -> None:
    with pytest.raises(NotFound, match="no zone or device named 'xa-khong-co'"):
        await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, ("xa-khong-co",)))
    assert rig.controller.store.broadcasts.latest() == []


async def test_malformed_payloads_are_counted_and_nobody_crashes(rig: Rig) -> None:
    victim = next(iter(rig.fleet.devices.values())).agent

    async def ignore(_: Incoming) -> None:
        return None

    intruder = Link(rig.settings.broker_address, ignore, client_id="fuzzer")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(intruder.run())
        await intruder.wait_connected(10)
        dev = victim.config.device_id
        for payload in (b"\xff\xfe", b"{}", b'{"v":1,"kind":"play"}', b"[" * 10_000, b"x" * 17_000):
            await intruder.publish(topics.device_cmd(dev), payload)
            await intruder.publish(topics.device_events(dev), payload)
        task.cancel()
    # The broker acknowledged the garbage before this broadcast began, and each side handles its
    # messages in order: once the victim's report of the broadcast is in, the garbage was handled too.
    result = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, (dev,)))
    assert result.complete
    assert victim.counters.malformed >= 4
    assert rig.controller.ingestor.counters.malformed >= 4


async def test_clusters_report_status_into_the_store(rig: Rig) -> None:
    await rig.controller.ingestor.flush()
    devices = rig.controller.store.devices.all(zone_ids=[ZONE])
    assert devices and all(d.online for d in devices)
    assert all(d.firmware and d.model for d in devices)


async def test_remote_management_is_acknowledged_or_times_out(rig: Rig) -> None:
    device = next(iter(rig.fleet.devices.values()))
    dev = device.agent.config.device_id
    ping = await rig.controller.manage(dev, Ping())
    assert ping.ok and 0 < ping.rtt_ms < 2000
    volume = await rig.controller.manage(dev, SetVolume(35))
    assert volume.ok and device.agent.player.volume == 35
    await rig.controller.manage(dev, Reboot())
    link = device.agent.link
    if link.connects < 2:  # not back yet: wait for it to go down, then to come back
        await asyncio.wait_for(link.disconnected.wait(), 30)
    await asyncio.wait_for(link.connected.wait(), 30)
    assert link.connects == 2  # went down (Last Will) and came back
    with pytest.raises(NotFound):
        await rig.controller.manage("khong-ton-tai", Ping())
    absent = next(d for d in rig.controller.store.devices.all() if d.id not in rig.fleet.devices)
    with pytest.raises(AckTimeout, match="did not acknowledge ping"):
        await rig.controller.manage(absent.id, Ping(), timeout=0.5)
