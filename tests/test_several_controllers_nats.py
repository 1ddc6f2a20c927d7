"""Three `speakerctl serve` processes on one PostgreSQL and a three-node NATS cluster (issue 13).

Each controller is given every node's MQTT listener and NATS client port, starting from its own node,
and ingests the fleet's statuses through the JetStream work queue (`ingest_nats`) rather than over
MQTT; events reach every controller over MQTT. Six simulated clusters are spread over the nodes the
same way. The owner of a broadcast killed with SIGKILL while the clusters play it, then a NATS node
killed: another controller takes the broadcast over, every delivery ends finished and in the play log,
no cluster plays it twice, and the statuses still reach the store. The leader killed before a
scheduled occurrence: another airs it, once. Waits poll the database and the logs, never sleep.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from fleet_small import PROVINCE, inventory
from several import (
    ENV,
    NAMES,
    World,
    add_bulletin,
    add_schedule,
    aired,
    all_started,
    assert_final_once,
    controllers,
    find_leader,
    restart,
    rotated,
    sounding,
    spread,
)
from waiting import SAFETY_NET_S, wait_until

from devices.trust import read_trusted_keys
from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import open_store
from speakerctl.broker.nats import NatsCluster, find_nats_server
from speakerctl.config import Settings
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState
from speakerctl.security.keys import load_or_create_signer, trusted_path

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(find_nats_server() is None, reason="nats-server is not installed"),
]
TIME_SCALE = 20
"""The clusters play 20× faster than real time: 400 s of audio sound for 20 s."""
RECOVERY_S = 120.0
"""Safety net for a broadcast to close after a controller and a node died: a lease to lapse, a
JetStream election, refused subscriptions retried, repairs."""


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats")) as cluster:
        yield cluster


def _own(nats: NatsCluster) -> Mapping[str, Mapping[str, str]]:
    """Per controller, its broker and NATS lists, starting from node k for the k-th controller."""
    urls = [node.nats_url for node in nats.nodes]
    return {
        name: {
            "SPEAKERCTL_BROKER": ",".join(rotated(nats.mqtt_urls, k)),
            "SPEAKERCTL_INGEST_NATS": ",".join(rotated(urls, k)),
        }
        for k, name in enumerate(NAMES)
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, nats: NatsCluster, postgres_module_url: str
) -> AsyncIterator[World]:
    await nats.wait_ready()
    root = tmp_path_factory.mktemp("several-nats")
    settings = Settings(
        data_dir=root / "shared",
        broker=nats.broker,
        database_url=postgres_module_url,
        inventory=str(inventory(root / "fleet.json")),
    )
    load_or_create_signer(settings.keys_dir)
    store = open_store(settings)  # the inventory loaded once, before the controllers start
    fleet = _fleet(settings, root / "fleet")
    own = _own(nats)
    async with FleetRunner() as runner:
        for device in fleet.devices.values():
            runner.start(device.agent)
        await fleet.wait_online(SAFETY_NET_S)
        with controllers(settings, root, ENV, own=lambda name: own[name]) as running:
            world = World(store, fleet, running, settings)
            await all_started(world)
            yield world
    store.close()


def _fleet(settings: Settings, root: Path) -> Fleet:
    records = provisioning_records(load_inventory(settings.inventory))
    trust = trusted_path(settings.keys_dir)
    installed = spread(records, settings.broker_addresses, read_trusted_keys(trust))
    options = FleetOptions(root=root, time_scale=TIME_SCALE, trust_file=trust)
    return Fleet(installed, settings.broker_address, options)


def _heard_since(world: World, since: datetime) -> bool:
    """Whether every cluster's latest status was stored after `since`, and says it plays nothing."""
    devices = [world.store.devices.get(device_id) for device_id in world.fleet.devices]
    return all(d.last_seen is not None and d.last_seen > since and not d.playing for d in devices)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_leader_killed_before_an_occurrence_another_airs_it_once(world: World) -> None:
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=20_000)
    schedule_id = add_schedule(world, bulletin_id, in_s=15, zone=PROVINCE)
    world.controllers.kill(leader)
    successor = await find_leader(world, other_than=leader)
    await wait_until(lambda: aired(world, schedule_id) is not None, "the occurrence aired", 60)
    broadcast_id = aired(world, schedule_id)
    assert broadcast_id is not None
    (run,) = ScheduleBook(world.store).runs(schedule_id)
    assert run.state is RunState.AIRED, run  # on time: the successor led before the air time
    assert world.store.broadcasts.get(broadcast_id).owner == successor
    assert_final_once(world, broadcast_id, sha)
    await restart(world, leader)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_owner_then_a_node_killed_mid_broadcast_another_takes_it_over_nothing_twice_nothing_lost(
    world: World, nats: NatsCluster
) -> None:
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=400_000)  # 20 s of sound at the fleet's pace
    schedule_id = add_schedule(world, bulletin_id, in_s=8, zone=PROVINCE)
    await wait_until(lambda: sounding(world, schedule_id) is not None, "clusters playing", 60)
    broadcast_id = sounding(world, schedule_id)
    assert broadcast_id is not None
    owner = world.store.broadcasts.get(broadcast_id).owner
    assert owner == leader
    killed_at = time.monotonic()
    world.controllers.kill(owner)
    # The node a surviving controller and a third of the fleet start from.
    node = nats.nodes[(NAMES.index(owner) + 1) % len(nats.nodes)]
    node.kill()
    node_killed = datetime.now(UTC)
    taken = lambda: world.store.broadcasts.get(broadcast_id).owner != owner  # noqa: E731
    await wait_until(taken, "another controller owning the broadcast", RECOVERY_S)
    print(f"broadcast_takeover_s: {time.monotonic() - killed_at:.2f}")
    await wait_until(lambda: aired(world, schedule_id) is not None, "the broadcast closed", RECOVERY_S)
    assert world.store.broadcasts.get(broadcast_id).owner not in ("", owner)
    assert "takes over broadcast " + broadcast_id in "".join(
        world.controllers.log(n) for n in NAMES if n != owner
    )
    assert_final_once(world, broadcast_id, sha)
    # No controller subscribes to statuses over MQTT: they came, and still come, through NATS.
    await wait_until(lambda: _heard_since(world, node_killed), "statuses after the node died", RECOVERY_S)
    node.start().wait_serving()
    await nats.wait_ready()
    await restart(world, owner)
