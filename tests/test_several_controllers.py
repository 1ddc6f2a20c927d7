"""Three `speakerctl serve` processes on one PostgreSQL and one Mosquitto, six simulated clusters.

The leader killed with SIGKILL before a scheduled occurrence: another leads within the lease TTL and
airs it, once. The controller following a broadcast killed while the clusters play it: the leader takes
it over, every delivery ends final, no cluster plays it twice. A leader frozen past its lease (SIGSTOP)
comes back fenced out and steps down. Waits poll the database and the processes' logs, never sleep.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from fleet_small import PROVINCE, inventory
from several import (
    ENV,
    NAMES,
    RENEW_S,
    START_S,
    TTL_S,
    World,
    add_bulletin,
    add_schedule,
    aired,
    alive,
    all_started,
    assert_final_once,
    controllers,
    find_leader,
    restart,
    sounding,
)
from waiting import SAFETY_NET_S, wait_until

from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import open_store
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import LEADER

pytestmark = pytest.mark.postgres
TIME_SCALE = 20
"""The clusters play 20× faster than real time: 200 s of audio sound for 10 s."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    tmp_path_factory: pytest.TempPathFactory, mosquitto_binary: str, postgres_module_url: str
) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("several")
    config = MosquittoConfig(port=free_port(), persistence=True)
    with MosquittoProcess(config, root / "mosquitto", binary=mosquitto_binary) as broker:
        # One data directory for the three: the signing keys and the content, as a shared directory.
        settings = Settings(
            data_dir=root / "shared",
            broker=broker.url,
            database_url=postgres_module_url,
            inventory=str(inventory(root / "fleet.json")),
        )
        load_or_create_signer(settings.keys_dir)
        store = open_store(settings)  # the inventory loaded once, before the controllers start
        fleet = _fleet(settings, root / "fleet")
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(SAFETY_NET_S)
            with controllers(settings, root, ENV | {"SPEAKERCTL_SHARED_GROUP": "speakerctl"}) as running:
                world = World(store, fleet, running, settings)
                await all_started(world)
                yield world
        store.close()


def _fleet(settings: Settings, root: Path) -> Fleet:
    clusters = provisioning_records(load_inventory(settings.inventory))
    options = FleetOptions(root=root, time_scale=TIME_SCALE, trust_file=trusted_path(settings.keys_dir))
    return Fleet(clusters, settings.broker_address, options)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_leader_killed_before_an_occurrence_another_airs_it_once(world: World) -> None:
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=20_000)
    schedule_id = add_schedule(world, bulletin_id, in_s=15, zone=PROVINCE)
    killed_at = time.monotonic()
    world.controllers.kill(leader)
    successor = await find_leader(world, other_than=leader)
    takeover_s = time.monotonic() - killed_at
    print(f"failover_s: {takeover_s:.2f}")
    assert takeover_s <= TTL_S + 2 * RENEW_S + 1
    await wait_until(lambda: aired(world, schedule_id) is not None, "the occurrence aired", 60)
    broadcast_id = aired(world, schedule_id)
    assert broadcast_id is not None
    (run,) = ScheduleBook(world.store).runs(schedule_id)
    assert run.state is RunState.AIRED, run  # on time: the successor led before the air time
    assert world.store.broadcasts.get(broadcast_id).owner == successor
    assert_final_once(world, broadcast_id, sha)
    await restart(world, leader)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_owner_killed_mid_broadcast_another_takes_it_over_and_nothing_plays_twice(
    world: World,
) -> None:
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=200_000)  # 10 s of sound at the fleet's pace
    schedule_id = add_schedule(world, bulletin_id, in_s=8, zone=PROVINCE)
    await wait_until(lambda: sounding(world, schedule_id) is not None, "clusters playing", 60)
    broadcast_id = sounding(world, schedule_id)
    assert broadcast_id is not None
    owner = world.store.broadcasts.get(broadcast_id).owner
    assert owner == leader
    killed_at = time.monotonic()
    world.controllers.kill(owner)
    taken = lambda: world.store.broadcasts.get(broadcast_id).owner != owner  # noqa: E731
    await wait_until(taken, "another controller owning the broadcast", 60)
    print(f"broadcast_takeover_s: {time.monotonic() - killed_at:.2f}")
    await wait_until(lambda: aired(world, schedule_id) is not None, "the broadcast closed", 90)
    assert world.store.broadcasts.get(broadcast_id).owner not in ("", owner)
    assert "takes over broadcast " + broadcast_id in "".join(
        world.controllers.log(n) for n in NAMES if n != owner
    )
    assert_final_once(world, broadcast_id, sha)
    await restart(world, owner)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_leader_frozen_past_its_lease_comes_back_fenced_out_and_steps_down(world: World) -> None:
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=300_000)  # 15 s of sound at the fleet's pace
    schedule_id = add_schedule(world, bulletin_id, in_s=8, zone=PROVINCE)
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
