"""Stopping what is on air, on a real Mosquitto with simulated clusters: a broadcast everywhere, one
zone only, a user outside the zone refused, confirmation of wide and emergency broadcasts, and Ctrl-C
on a real `speakerctl broadcast` process."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest
import pytest_asyncio
from test_faults import random_bulletin
from waiting import SAFETY_NET_S, Observed

from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import broadcasts, stops
from speakerctl.app.access import Actor, Role
from speakerctl.app.context import open_store
from speakerctl.app.runtime import context, controller
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.session import Session
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol.lifecycle import PLAYING, STOPPED
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BroadcastState, Store

LONG_MS = 600_000
"""Ten minutes of sound: every test stops it long before it ends."""
PROCESS_S = 120.0


@dataclass
class World:
    """Mosquitto, the controller's settings and store, and the clusters of two communes, online."""

    settings: Settings
    store: Store
    fleet: Fleet
    communes: tuple[str, str]
    bulletin: int

    def under(self, commune: str) -> list[str]:
        """The clusters of one commune."""
        return sorted(d.id for d in load_inventory().devices_under(commune))

    def playing(self, device_ids: Sequence[str]) -> dict[str, str | None]:
        """What each cluster's player is playing now (None: silent)."""
        current = {d: self.fleet.devices[d].agent.player.current for d in device_ids}
        return {d: job.play.broadcast_id if job else None for d, job in current.items()}


def _two_communes() -> tuple[str, str]:
    inventory = load_inventory()
    leaves = [z.id for z in inventory.zones if not inventory.children(z.id) and inventory.devices_under(z.id)]
    small = sorted(leaves, key=lambda z: (len(inventory.devices_under(z)), z))
    return small[0], small[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, mosquitto_binary: str) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("stop")
    with MosquittoProcess(
        MosquittoConfig(port=free_port()), root / "mosquitto", binary=mosquitto_binary
    ) as mq:
        settings = Settings(data_dir=root / "ctl", broker=mq.url, accept_window_s=1)
        load_or_create_signer(settings.keys_dir)
        communes = _two_communes()
        inside = {d.id for c in communes for d in load_inventory().devices_under(c)}
        clusters = tuple(c for c in provisioning_records(load_inventory()) if c.device_id in inside)
        options = FleetOptions(
            root=root / "fleet", trust_file=trusted_path(settings.keys_dir), repair_after_s=0.5
        )
        fleet = Fleet(clusters, settings.broker_address, options)
        store = open_store(settings)
        bulletin = random_bulletin(store, settings.content_dir, 4 * 16384, duration_ms=LONG_MS)
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(SAFETY_NET_S)
            yield World(settings, store, fleet, communes, bulletin)


async def _on_air(world: World, targets: Sequence[str]) -> tuple[str, asyncio.Task[object]]:
    """Start a broadcast in this process and return once every targeted cluster is playing it."""
    ctx = context(world.settings)
    broadcast_id = broadcasts.new_id(ctx)
    total = sum(len(world.under(t)) for t in targets)
    seen: Observed[Counter[str]] = Observed()
    task = asyncio.create_task(
        broadcasts.broadcast(
            ctx,
            world.bulletin,
            targets,
            progress=lambda c, _: seen.add(Counter(c)),
            broadcast_id=broadcast_id,
        )
    )
    try:
        await seen.wait_for(
            lambda items: bool(items) and items[-1][PLAYING] == total, "every cluster playing"
        )
    except AssertionError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return broadcast_id, task


@pytest.mark.asyncio(loop_scope="module")
async def test_stop_silences_every_cluster_and_records_who_stopped_it(world: World) -> None:
    broadcast_id, follower = await _on_air(world, world.communes)
    clusters = world.under(world.communes[0]) + world.under(world.communes[1])
    ctx = context(world.settings)
    # Another controller stops it, as `serve` (the web console) would: the broadcasting one only sees
    # its clusters' reports and the store.
    async with controller(ctx, session=Session("stopper", persistent=False)).running() as running:
        view = await stops.stop(ctx, Actor("lan", Role.OPERATOR), broadcast_id, controller=running)
    assert (view.clusters, view.confirmed, view.unconfirmed, view.whole) == (
        len(clusters),
        len(clusters),
        [],
        True,
    )
    assert world.playing(clusters) == dict.fromkeys(clusters, None)
    result = await asyncio.wait_for(follower, SAFETY_NET_S)  # the broadcasting controller ends at once
    assert result.counts == {STOPPED.value: len(clusters)}  # type: ignore[attr-defined]
    info = world.store.broadcasts.get(broadcast_id)
    assert (info.state, info.stopped_by) == (BroadcastState.STOPPED, "lan")
    deliveries = world.store.deliveries.of(broadcast_id)
    assert {(d.state, d.detail) for d in deliveries} == {(STOPPED, "stopped by lan")}
    (audit,) = [e for e in world.store.audit.entries() if e.action == f"stop {broadcast_id}"]
    assert (audit.actor, audit.outcome) == ("lan", "confirmed")
