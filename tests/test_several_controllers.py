"""Three `speakerctl serve` processes on one PostgreSQL and one Mosquitto, six simulated clusters.

The leader killed with SIGKILL before a scheduled occurrence: another leads within the lease TTL and
airs it, once. The controller following a broadcast killed while the clusters play it: the leader takes
it over, every delivery ends final, no cluster plays it twice. A leader frozen past its lease (SIGSTOP)
comes back fenced out and steps down. Waits poll the database and the processes' logs, never sleep.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from fleet_small import inventory
from waiting import SAFETY_NET_S, wait_until

from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import open_store
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol.lifecycle import FINISHED, PLAYING
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState, Schedule, new_schedule_id
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import LEADER, BroadcastState, Store, VariantInfo, member_lease

pytestmark = pytest.mark.postgres
NAMES = ("ctl-a", "ctl-b", "ctl-c")
TTL_S, RENEW_S = 5.0, 1.5
START_S = 120.0
"""Safety net for a `serve` process to start: Python, imports, a broker session, its first lease."""
TIME_SCALE = 20
"""The clusters play 20× faster than real time: 200 s of audio sound for 10 s."""
ENV = {
    "SPEAKERCTL_LEASE_TTL_S": str(TTL_S),
    "SPEAKERCTL_LEASE_RENEW_S": str(RENEW_S),
    "SPEAKERCTL_SHARED_GROUP": "speakerctl",
    "SPEAKERCTL_SCHEDULE_HORIZON_H": "0",
    "SPEAKERCTL_SCHEDULE_LEAD_S": "1",
    "SPEAKERCTL_ACCEPT_WINDOW_S": "1",
    "SPEAKERCTL_BROADCAST_TIMEOUT_S": "40",
    "SPEAKERCTL_LANG": "en",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class Controllers:
    """The `serve` processes, by controller id; each logs to its own file."""

    settings: Settings
    root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str) -> None:
        self.logs[name] = self.root / f"{name}-{len(self.logs)}.log"
        env = (
            os.environ
            | ENV
            | {"SPEAKERCTL_CONTROLLER_ID": name, "SPEAKERCTL_INVENTORY": self.settings.inventory}
        )
        cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(self.settings.data_dir)]
        cmd += ["--broker", self.settings.broker, "--database", self.settings.database_url, "serve"]
        with self.logs[name].open("wb") as log:
            self.processes[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(SAFETY_NET_S)

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(SAFETY_NET_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class World:
    """The database, the fleet, and the three controllers."""

    store: Store
    fleet: Fleet
    controllers: Controllers
    settings: Settings


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
            with _controllers(settings, root) as controllers:
                world = World(store, fleet, controllers, settings)
                for name in NAMES:
                    await wait_until(lambda n=name: _alive(world, n), f"{name} started", START_S)  # type: ignore[misc]
                yield world
        store.close()


def _fleet(settings: Settings, root: Path) -> Fleet:
    clusters = provisioning_records(load_inventory(settings.inventory))
    options = FleetOptions(root=root, time_scale=TIME_SCALE, trust_file=trusted_path(settings.keys_dir))
    return Fleet(clusters, settings.broker_address, options)


@contextmanager
def _controllers(settings: Settings, root: Path) -> Iterator[Controllers]:
    controllers = Controllers(settings, root)
    try:
        for name in NAMES:
            controllers.start(name)
        yield controllers
    finally:
        controllers.stop_all()


def _bulletin(world: World, duration_ms: int) -> tuple[int, str]:
    """A bulletin of random bytes in the shared content directory: its id and its content's hash."""
    data = os.urandom(8 * 16384)
    sha = hashlib.sha256(data).hexdigest()
    folder = world.settings.content_dir / sha[:2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sha}.ogg").write_bytes(data)
    variant = VariantInfo("opus", "ogg", 24, sha, len(data), duration_ms)
    args = (sha, "opus", "ogg", 24, duration_ms, len(data), "x", "x", datetime.now(UTC))
    return world.store.bulletins.add("several", *args, variants=[variant]).id, sha


def _schedule(world: World, bulletin: int, in_s: float) -> str:
    now = datetime.now(UTC)
    rule = Rule(Kind.AT, at=now + timedelta(seconds=in_s))
    schedule = Schedule(new_schedule_id(), bulletin, ("p",), rule, created_at=now)
    return ScheduleBook(world.store).add(schedule).id


async def _leader(world: World, other_than: str = "") -> str:
    """The controller holding the scheduler lease, once there is one (and it is not `other_than`)."""
    found: list[str] = []

    def led() -> bool:
        current = world.store.leases.current(LEADER)
        found[:] = [current[0]] if current and current[0] != other_than else []
        return bool(found)

    await wait_until(led, "a leader other than " + (other_than or "nobody"), SAFETY_NET_S)
    return found[0]


def _aired(world: World, schedule_id: str) -> str | None:
    """The broadcast of the schedule's one run, once it is closed."""
    runs = ScheduleBook(world.store).runs(schedule_id)
    if len(runs) != 1 or not runs[0].broadcast_id:
        return None
    try:
        info = world.store.broadcasts.get(runs[0].broadcast_id)
    except NotFound:
        return None
    return info.id if info.state is not BroadcastState.RUNNING else None


def _played(world: World, sha: str) -> dict[str, int]:
    return {k: d.output.played.count(sha) for k, d in world.fleet.devices.items()}


def _assert_final_once(world: World, broadcast_id: str, sha: str) -> None:
    deliveries = world.store.deliveries.of(broadcast_id)
    assert {d.device_id for d in deliveries} == set(world.fleet.devices)
    assert all(d.state is FINISHED and d.playing_at for d in deliveries), deliveries
    assert world.store.broadcasts.get(broadcast_id).state is BroadcastState.COMPLETE
    assert _played(world, sha) == dict.fromkeys(world.fleet.devices, 1)


async def _restart(world: World, name: str) -> None:
    world.controllers.start(name)
    await wait_until(lambda: _alive(world, name), f"{name} back with its lease renewed", START_S)


def _alive(world: World, name: str) -> bool:
    """Whether the controller's latest process holds its own lease (it renews it from its start)."""
    current = world.store.leases.current(member_lease(name))
    return current is not None and world.controllers.processes[name].poll() is None


@pytest.mark.asyncio(loop_scope="module")
async def test_the_leader_killed_before_an_occurrence_another_airs_it_once(world: World) -> None:
    leader = await _leader(world)
    bulletin, sha = _bulletin(world, duration_ms=20_000)
    schedule_id = _schedule(world, bulletin, in_s=15)
    killed_at = time.monotonic()
    world.controllers.kill(leader)
    successor = await _leader(world, other_than=leader)
    takeover_s = time.monotonic() - killed_at
    print(f"failover_s: {takeover_s:.2f}")
    assert takeover_s <= TTL_S + 2 * RENEW_S + 1
    await wait_until(lambda: _aired(world, schedule_id) is not None, "the occurrence aired", 60)
    broadcast_id = _aired(world, schedule_id)
    assert broadcast_id is not None
    (run,) = ScheduleBook(world.store).runs(schedule_id)
    assert run.state is RunState.AIRED, run  # on time: the successor led before the air time
    assert world.store.broadcasts.get(broadcast_id).owner == successor
    _assert_final_once(world, broadcast_id, sha)
    await _restart(world, leader)


def _sounding(world: World, schedule_id: str) -> str | None:
    """The schedule's broadcast once some cluster is recorded playing it."""
    runs = ScheduleBook(world.store).runs(schedule_id)
    if not runs or not runs[0].broadcast_id:
        return None
    try:
        counts = world.store.deliveries.counts(runs[0].broadcast_id)
    except NotFound:
        return None
    return runs[0].broadcast_id if counts.get(PLAYING) else None


@pytest.mark.asyncio(loop_scope="module")
async def test_the_owner_killed_mid_broadcast_another_takes_it_over_and_nothing_plays_twice(
    world: World,
) -> None:
    leader = await _leader(world)
    bulletin, sha = _bulletin(world, duration_ms=200_000)  # 10 s of sound at the fleet's pace
    schedule_id = _schedule(world, bulletin, in_s=8)
    await wait_until(lambda: _sounding(world, schedule_id) is not None, "clusters playing", 60)
    broadcast_id = _sounding(world, schedule_id)
    assert broadcast_id is not None
    owner = world.store.broadcasts.get(broadcast_id).owner
    assert owner == leader
    killed_at = time.monotonic()
    world.controllers.kill(owner)
    taken = lambda: world.store.broadcasts.get(broadcast_id).owner != owner  # noqa: E731
    await wait_until(taken, "another controller owning the broadcast", 60)
    print(f"broadcast_takeover_s: {time.monotonic() - killed_at:.2f}")
    await wait_until(lambda: _aired(world, schedule_id) is not None, "the broadcast closed", 90)
    assert world.store.broadcasts.get(broadcast_id).owner not in ("", owner)
    assert "takes over broadcast " + broadcast_id in "".join(
        world.controllers.log(n) for n in NAMES if n != owner
    )
    _assert_final_once(world, broadcast_id, sha)
    await _restart(world, owner)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_leader_frozen_past_its_lease_comes_back_fenced_out_and_steps_down(world: World) -> None:
    leader = await _leader(world)
    bulletin, sha = _bulletin(world, duration_ms=300_000)  # 15 s of sound at the fleet's pace
    schedule_id = _schedule(world, bulletin, in_s=8)
    await wait_until(lambda: _sounding(world, schedule_id) is not None, "clusters playing", 60)
    broadcast_id = _sounding(world, schedule_id)
    assert broadcast_id is not None and world.store.broadcasts.get(broadcast_id).owner == leader
    frozen = world.controllers.processes[leader]
    frozen.send_signal(signal.SIGSTOP)
    try:
        successor = await _leader(world, other_than=leader)
        taken = lambda: world.store.broadcasts.get(broadcast_id).owner == successor  # noqa: E731
        await wait_until(taken, f"{successor} owning the broadcast")
    finally:
        frozen.send_signal(signal.SIGCONT)
    log = lambda: world.controllers.log(leader)  # noqa: E731
    await wait_until(
        lambda: "stops leading the schedule" in log() or "is fenced out" in log(), f"{leader} stepping down"
    )
    await wait_until(lambda: _aired(world, schedule_id) is not None, "the broadcast closed", 90)
    # Back, the frozen controller stops following it (or, if it followed it to the end, does not close it).
    yielded = f"{broadcast_id} was taken over by {successor}: leaving it to them"
    await wait_until(lambda: yielded in log(), "the old owner yielding")
    current = world.store.leases.current(LEADER)
    assert current is not None and current[0] == successor
    _assert_final_once(world, broadcast_id, sha)
    await wait_until(lambda: _alive(world, leader), f"{leader} renewing its own lease again", START_S)
