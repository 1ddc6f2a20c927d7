"""Protocol v1.3 compact replies: a cached bulletin reaches `playing` with one command in and one event out.

A mixed fleet on one Mosquitto: v1.3 clusters answer a play whose content they hold with `playing`
alone (and list `compact` in their status features); v1.2 clusters beside them still report
`accepted`, `content_ready`, `playing`. A sniffer subscribed to every cluster's events and status
counts what each cluster put on the wire from the command until its `playing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from waiting import Observed

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import generate_tone
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import DeliveryEvent, codec, topics
from speakerctl.protocol.lifecycle import FINISHED, PLAYING
from speakerctl.protocol.limits import COMPACT_FEATURE
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BulletinInfo

ZONE = "st-ke-sach"
CLUSTERS = 6

Seen = tuple[str, str, str]
"""(device, "status" or the delivery state, broadcast id or "")."""


@dataclass
class Rig:
    """A fleet half on v1.3, half on v1.2, its controller, and a sniffer on every cluster's replies."""

    fleet: Fleet
    older: frozenset[str]
    controller: Controller
    bulletin: BulletinInfo
    wire: Observed[Seen]


def _seen(message: Incoming) -> Seen:
    parsed = topics.parse(message.topic)
    if parsed.channel is topics.Channel.STATUS:
        return (parsed.key, "status", "")
    event = codec.decode_event(message.payload)
    if isinstance(event, DeliveryEvent):
        return (parsed.key, event.state.value, event.broadcast_id)
    return (parsed.key, event.kind, "")


@pytest_asyncio.fixture
async def rig(mosquitto: MosquittoProcess, tmp_path: Path) -> AsyncIterator[Rig]:
    """The clusters, the controller and the sniffer, all online."""
    settings = Settings(
        data_dir=tmp_path / "c", broker=mosquitto.url, accept_window_s=1.0, broadcast_timeout_s=30
    )
    load_or_create_signer(settings.keys_dir)
    inventory = load_inventory()
    ids = [d.id for d in inventory.devices_under(ZONE)][:CLUSTERS]
    older = frozenset(ids[::2])
    options = FleetOptions(
        root=tmp_path / "fleet", time_scale=10, trust_file=trusted_path(settings.keys_dir), full_replies=older
    )
    records = [r for r in provisioning_records(inventory) if r.device_id in ids]
    fleet = Fleet(records, settings.broker_address, options)
    store = open_store(settings)
    tone = generate_tone(1.0, path=tmp_path / "tin.wav")
    bulletin, _ = import_bulletin(store, settings, SystemClock(), tone, "Tin ngắn")
    wire: Observed[Seen] = Observed()

    async def sniff(message: Incoming) -> None:
        wire.add(_seen(message))

    sniffer = Link(settings.broker_address, sniff, client_id="sniffer")
    await sniffer.subscribe([topics.ALL_STATUS, topics.ALL_EVENTS])
    controller = Controller(settings, store)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(fleet.run()), tg.create_task(sniffer.run())]
        await fleet.wait_online(30)
        await sniffer.wait_connected(10)
        async with controller.running():
            yield Rig(fleet, older, controller, bulletin, wire)
        for task in tasks:
            task.cancel()


def _after(items: list[Seen], device: str, broadcast_id: str) -> list[Seen]:
    """What `device` sent after the `finished` of `broadcast_id`."""
    own = [s for s in items if s[0] == device]
    end = own.index((device, FINISHED.value, broadcast_id))
    return own[end + 1 :]


def _until_playing(items: list[Seen], device: str, broadcast_id: str, start: int) -> list[Seen]:
    """What `device` sent from `start` until its `playing` of `broadcast_id`, that included."""
    own = [s for s in items[start:] if s[0] == device]
    return own[: own.index((device, PLAYING.value, broadcast_id)) + 1]


async def test_a_cached_bulletin_plays_with_one_reply_on_v1_3_and_v1_2_clusters_still_served(
    rig: Rig,
) -> None:
    devices = list(rig.fleet.devices)
    first = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, tuple(devices)))
    assert first.counts.get(FINISHED) == CLUSTERS, first.counts
    # Each cluster's status after the first broadcast lists the content it now holds.
    await rig.wire.wait_for(
        lambda items: all((d, "status", "") in _after(list(items), d, first.broadcast_id) for d in devices),
        "every cluster's status after the first broadcast",
    )
    await rig.controller.ingestor.flush()
    compact = {d for d, f in rig.controller.ingestor.features.items() if COMPACT_FEATURE in f}
    assert compact == set(devices) - rig.older
    start = len(rig.wire.items)
    again = await rig.controller.broadcast(BroadcastRequest(rig.bulletin.id, tuple(devices)))
    assert again.counts.get(FINISHED) == CLUSTERS and again.upload_bytes == 0, again.counts
    items = list(rig.wire.items)
    for device in devices:
        sent = _until_playing(items, device, again.broadcast_id, start)
        if device in rig.older:
            assert [s[1] for s in sent] == ["accepted", "content_ready", "playing"], (device, sent)
        else:
            assert sent == [(device, PLAYING.value, again.broadcast_id)], (device, sent)
    deliveries = rig.controller.store.deliveries.of(again.broadcast_id)
    assert all(d.cached for d in deliveries)
