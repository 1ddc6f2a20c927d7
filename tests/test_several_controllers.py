"""Three `speakerctl serve` processes on one PostgreSQL and one Mosquitto, six simulated clusters.

The leader killed with SIGKILL before a scheduled occurrence: another leads within the lease TTL and
airs it, once. The controller following a broadcast killed while the clusters play it: the leader takes
it over, every delivery ends final, no cluster plays it twice. A leader frozen past its lease (SIGSTOP)
comes back fenced out and steps down. Waits poll the database and the processes' logs, never sleep.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from several import (
    ENV,
    RENEW_S,
    START_S,
    TTL_S,
    World,
    add_bulletin,
    add_schedule,
    aired,
    alive,
    assert_final_once,
    find_leader,
    leader_killed_before_an_occurrence,
    owner_killed_mid_broadcast,
    restart,
    running_world,
    shared_settings,
    sounding,
)
from waiting import wait_until

from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.store import LEADER

pytestmark = pytest.mark.postgres


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, mosquitto_binary: str, postgres_module_url: str
) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("several")
    config = MosquittoConfig(port=free_port(), persistence=True)
    with MosquittoProcess(config, root / "mosquitto", binary=mosquitto_binary) as broker:
        settings = shared_settings(root, broker.url, postgres_module_url)
        env = ENV | {"SPEAKERCTL_SHARED_GROUP": "speakerctl"}
        async with running_world(settings, root, env, own=lambda _: {}) as world:
            yield world


@pytest.mark.asyncio(loop_scope="module")
async def test_the_leader_killed_before_an_occurrence_another_airs_it_once(world: World) -> None:
    takeover_s = await leader_killed_before_an_occurrence(world)
    print(f"failover_s: {takeover_s:.2f}")
    assert takeover_s <= TTL_S + 2 * RENEW_S + 1


@pytest.mark.asyncio(loop_scope="module")
async def test_the_owner_killed_mid_broadcast_another_takes_it_over_and_nothing_plays_twice(
    world: World,
) -> None:
    # 10 s of sound at the fleet's pace
    owner = await owner_killed_mid_broadcast(world, 200_000, then=lambda _: None, recovery_s=90)
    await restart(world, owner)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_leader_frozen_past_its_lease_comes_back_fenced_out_and_steps_down(world: World) -> None:
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=300_000)  # 15 s of sound at the fleet's pace
    schedule_id = add_schedule(world, bulletin_id, in_s=8)
    await wait_until(lambda: sounding(world, schedule_id) is not None, "clusters playing", 60)
    broadcast_id = sounding(world, schedule_id)
    assert broadcast_id is not None and world.store.broadcasts.get(broadcast_id).owner == leader
    frozen = world.controllers.processes[leader]
    frozen.send_signal(signal.SIGSTOP)
    try:
        successor = await find_leader(world, other_than=leader)
        taken = lambda: world.store.broadcasts.get(broadcast_id).owner == successor  # noqa: E731
        await wait_until(taken, f"{successor} owning the broadcast")
    finally:
        frozen.send_signal(signal.SIGCONT)
    log = lambda: world.controllers.log(leader)  # noqa: E731
    await wait_until(
        lambda: "stops leading the schedule" in log() or "is fenced out" in log(), f"{leader} stepping down"
    )
    await wait_until(lambda: aired(world, schedule_id) is not None, "the broadcast closed", 90)
    # Back, the frozen controller stops following it (or, if it followed it to the end, does not close it).
    yielded = f"{broadcast_id} was taken over by {successor}: leaving it to them"
    await wait_until(lambda: yielded in log(), "the old owner yielding")
    current = world.store.leases.current(LEADER)
    assert current is not None and current[0] == successor
    assert_final_once(world, broadcast_id, sha)
    await wait_until(lambda: alive(world, leader), f"{leader} renewing its own lease again", START_S)
