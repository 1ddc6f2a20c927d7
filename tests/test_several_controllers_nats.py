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

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from several import (
    ENV,
    NAMES,
    World,
    leader_killed_before_an_occurrence,
    owner_killed_mid_broadcast,
    restart,
    rotated,
    running_world,
    shared_settings,
)
from waiting import wait_until

from speakerctl.broker.nats import NatsCluster, NatsNode, find_nats_server

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(find_nats_server() is None, reason="nats-server is not installed"),
]
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
    settings = shared_settings(root, nats.broker, postgres_module_url)
    own = _own(nats)
    async with running_world(settings, root, ENV, own=lambda name: own[name]) as world:
        yield world


def _heard_since(world: World, since: datetime) -> bool:
    """Whether every cluster's latest status was stored after `since`, and says it plays nothing."""
    devices = [world.store.devices.get(device_id) for device_id in world.fleet.devices]
    return all(d.last_seen is not None and d.last_seen > since and not d.playing for d in devices)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_leader_killed_before_an_occurrence_another_airs_it_once(world: World) -> None:
    await leader_killed_before_an_occurrence(world)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_owner_then_a_node_killed_mid_broadcast_another_takes_it_over_nothing_twice_nothing_lost(
    world: World, nats: NatsCluster
) -> None:
    killed: list[tuple[NatsNode, datetime]] = []

    def kill_a_node(owner: str) -> None:
        # The node a surviving controller and a third of the fleet start from.
        node = nats.nodes[(NAMES.index(owner) + 1) % len(nats.nodes)]
        node.kill()
        killed.append((node, datetime.now(UTC)))

    # 20 s of sound at the fleet's pace: the node dies while a successor takes the broadcast over.
    owner = await owner_killed_mid_broadcast(world, 400_000, then=kill_a_node, recovery_s=RECOVERY_S)
    ((node, node_killed),) = killed
    # No controller subscribes to statuses over MQTT: they came, and still come, through NATS.
    await wait_until(lambda: _heard_since(world, node_killed), "statuses after the node died", RECOVERY_S)
    node.start().wait_serving()
    await nats.wait_ready()
    await restart(world, owner)
