"""The fleet and the controller on a three-node NATS cluster (JetStream, MQTT 3.1.1 listener).

Each client is told every node's MQTT listener, starting from a different one, so the fleet is
spread over the cluster; a node killed mid-broadcast sends its clients to the next node, and the
broadcast still ends with every delivery in a final state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from waiting import wait_until

from devices.identity import Installed
from devices.trust import read_trusted_keys
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import generate_tone
from speakerctl.broker.nats import NatsCluster, find_nats_server
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol.lifecycle import FINAL, FINISHED
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BulletinInfo

ZONE = "st-ke-sach"
CLUSTERS = 9

pytestmark = pytest.mark.skipif(find_nats_server() is None, reason="nats-server is not installed")


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One cluster for the module: a cold start takes ~10 s before JetStream serves MQTT sessions."""
    with NatsCluster(tmp_path_factory.mktemp("nats")) as cluster:
        yield cluster


@dataclass
class Rig:
    """A small fleet spread over the NATS nodes and a controller preferring the first node."""

    nats: NatsCluster
    fleet: Fleet
    controller: Controller
    bulletin: BulletinInfo


def _spread(settings: Settings, trust: Path) -> list[Installed]:
    """Cluster k prefers node k mod 3, then the others in turn."""
    addresses = settings.broker_addresses
    keys = read_trusted_keys(trust)
    inventory = load_inventory()
    ids = [d.id for d in inventory.devices_under(ZONE)][:CLUSTERS]
    records = [r for r in provisioning_records(inventory) if r.device_id in ids]
    rotated = [addresses[k % 3 :] + addresses[: k % 3] for k in range(len(records))]
    return [Installed(record, order, keys) for record, order in zip(records, rotated, strict=True)]


@pytest_asyncio.fixture
async def rig(nats: NatsCluster, tmp_path: Path) -> AsyncIterator[Rig]:
    """Every node running and serving sessions (a killed one is restarted), a fresh fleet and controller."""
    for node in nats.nodes:
        node.start().wait_serving()
    await nats.wait_ready()
    settings = Settings(
        data_dir=tmp_path / "controller", broker=nats.broker, accept_window_s=1.0, broadcast_timeout_s=60
    )
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", time_scale=10)
    fleet = Fleet(_spread(settings, trusted_path(settings.keys_dir)), settings.broker_address, options)
    store = open_store(settings)
    tone = generate_tone(2.0, path=tmp_path / "tin.wav")
    bulletin, _ = import_bulletin(store, settings, SystemClock(), tone, "Tin qua NATS")
    controller = Controller(settings, store)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(60)
        async with controller.running():
            yield Rig(nats, fleet, controller, bulletin)
        fleet_task.cancel()


def _request(rig: Rig) -> BroadcastRequest:
    return BroadcastRequest(rig.bulletin.id, tuple(rig.fleet.devices))


async def test_a_bulletin_reaches_the_fleet_through_the_nats_cluster(rig: Rig) -> None:
    ports = {d.agent.link.address.port for d in rig.fleet.devices.values()}
    assert len(ports) == 3  # the fleet really is spread over the three nodes
    result = await rig.controller.broadcast(_request(rig))
    assert result.counts.get(FINISHED) == CLUSTERS, result.counts
    again = await rig.controller.broadcast(_request(rig))
    assert again.complete and again.upload_bytes == 0


async def test_a_node_killed_mid_broadcast_leaves_every_delivery_final(rig: Rig) -> None:
    first = rig.nats.nodes[0]
    assert rig.controller.link.address.port == first.port
    store = rig.controller.store
    running = asyncio.create_task(rig.controller.broadcast(_request(rig)))

    def under_way() -> bool:
        latest = store.broadcasts.latest(1)
        return bool(latest) and sum(store.deliveries.counts(latest[0].id).values()) > 0

    await wait_until(under_way, "the broadcast under way")
    first.kill()
    result = await running
    states = {d.device_id: d.state for d in store.deliveries.of(result.broadcast_id)}
    assert len(states) == CLUSTERS and set(states.values()) <= FINAL, states
    assert rig.controller.link.address.port != first.port
    assert all(d.agent.link.address.port != first.port for d in rig.fleet.devices.values())
