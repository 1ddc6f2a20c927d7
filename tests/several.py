"""Several `speakerctl serve` processes on one PostgreSQL, for the tests that kill them.

Shared by tests/test_several_controllers.py (one Mosquitto) and tests/test_several_controllers_nats.py
(a three-node NATS cluster): the processes, the bulletins and schedules they air, and the checks on
what the store and the simulated clusters say. Waits poll the database, never sleep.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from fleet_small import PROVINCE, inventory
from waiting import SAFETY_NET_S, wait_until

from devices.identity import Installed
from devices.trust import read_trusted_keys
from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import open_store
from speakerctl.broker.address import BrokerAddress
from speakerctl.config import Settings
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol.lifecycle import FINISHED, PLAYING
from speakerctl.protocol.provisioning import Provisioning
from speakerctl.protocol.signing import TrustedKeys
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState, Schedule, new_schedule_id
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import LEADER, BroadcastState, Store, VariantInfo, member_lease

T = TypeVar("T")
NAMES = ("ctl-a", "ctl-b", "ctl-c")
TTL_S, RENEW_S = 5.0, 1.5
TIME_SCALE = 20
"""The clusters play 20× faster than real time: 200 s of audio sound for 10 s."""
START_S = 120.0
"""Safety net for a `serve` process to start: Python, imports, a broker session, its first lease."""
ENV = {
    "SPEAKERCTL_LEASE_TTL_S": str(TTL_S),
    "SPEAKERCTL_LEASE_RENEW_S": str(RENEW_S),
    "SPEAKERCTL_SCHEDULE_HORIZON_H": "0",
    "SPEAKERCTL_SCHEDULE_LEAD_S": "1",
    "SPEAKERCTL_ACCEPT_WINDOW_S": "1",
    "SPEAKERCTL_BROADCAST_TIMEOUT_S": "40",
    "SPEAKERCTL_LANG": "en",
    "PYTHONUNBUFFERED": "1",
}
"""What every controller of these tests is told, besides its id, broker, database and inventory."""


def rotated(items: Sequence[T], k: int) -> tuple[T, ...]:
    """`items` starting from the k-th (mod its length), then the others in turn."""
    return (*items[k % len(items) :], *items[: k % len(items)])


def spread(
    records: Sequence[Provisioning], addresses: Sequence[BrokerAddress], keys: TrustedKeys
) -> list[Installed]:
    """Cluster k prefers broker node k mod n, then the others in turn: the fleet spread over the nodes."""
    return [Installed(record, rotated(addresses, k), keys) for k, record in enumerate(records)]


@dataclass
class Controllers:
    """The `serve` processes, by controller id; each logs to its own file."""

    settings: Settings
    root: Path
    env: Mapping[str, str]
    """The settings every controller is given in its environment."""
    own: Callable[[str], Mapping[str, str]] = lambda _name: {}
    """Settings of one controller (its broker list, say), on top of `env`."""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str) -> None:
        self.logs[name] = self.root / f"{name}-{len(self.logs)}.log"
        given = {
            "SPEAKERCTL_CONTROLLER_ID": name,
            "SPEAKERCTL_INVENTORY": self.settings.inventory,
            "SPEAKERCTL_BROKER": self.settings.broker,
            "SPEAKERCTL_DATABASE_URL": self.settings.database_url,
        }
        env = {**os.environ, **self.env, **given, **self.own(name)}
        cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(self.settings.data_dir), "serve"]
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


@contextmanager
def controllers(
    settings: Settings, root: Path, env: Mapping[str, str], **kw: object
) -> Iterator[Controllers]:
    """The NAMES controllers started, and stopped by PID whatever happens."""
    running = Controllers(settings, root, env, **kw)  # type: ignore[arg-type]
    try:
        for name in NAMES:
            running.start(name)
        yield running
    finally:
        running.stop_all()


@dataclass
class World:
    """The database, the fleet, and the controllers."""

    store: Store
    fleet: Fleet
    controllers: Controllers
    settings: Settings


def shared_settings(root: Path, broker: str, database_url: str) -> Settings:
    """One data directory for every controller: the signing keys and the content, as a shared directory."""
    settings = Settings(
        data_dir=root / "shared",
        broker=broker,
        database_url=database_url,
        inventory=str(inventory(root / "fleet.json")),
    )
    load_or_create_signer(settings.keys_dir)
    return settings


def small_fleet(settings: Settings, root: Path) -> Fleet:
    """The small inventory's clusters, spread over the brokers given (cluster k starts from the k-th)."""
    records = provisioning_records(load_inventory(settings.inventory))
    trust = trusted_path(settings.keys_dir)
    installed = spread(records, settings.broker_addresses, read_trusted_keys(trust))
    options = FleetOptions(root=root / "fleet", time_scale=TIME_SCALE, trust_file=trust)
    return Fleet(installed, settings.broker_address, options)


@asynccontextmanager
async def running_world(
    settings: Settings, root: Path, env: Mapping[str, str], own: Callable[[str], Mapping[str, str]]
) -> AsyncIterator[World]:
    """The store opened (the inventory loaded once), the fleet online, then every controller started."""
    store = open_store(settings)
    fleet = small_fleet(settings, root)
    try:
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(SAFETY_NET_S)
            with controllers(settings, root, env, own=own) as running:
                world = World(store, fleet, running, settings)
                for name in NAMES:
                    await wait_until(lambda n=name: alive(world, n), f"{name} started", START_S)  # type: ignore[misc]
                yield world
    finally:
        store.close()


def add_bulletin(world: World, duration_ms: int) -> tuple[int, str]:
    """A bulletin of random bytes in the shared content directory: its id and its content's hash."""
    data = os.urandom(8 * 16384)
    sha = hashlib.sha256(data).hexdigest()
    folder = world.settings.content_dir / sha[:2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sha}.ogg").write_bytes(data)
    variant = VariantInfo("opus", "ogg", 24, sha, len(data), duration_ms)
    args = (sha, "opus", "ogg", 24, duration_ms, len(data), "x", "x", datetime.now(UTC))
    return world.store.bulletins.add("several", *args, variants=[variant]).id, sha


def add_schedule(world: World, bulletin_id: int, in_s: float) -> str:
    """A one-off schedule of the bulletin to the whole (small) fleet, `in_s` from now."""
    now = datetime.now(UTC)
    rule = Rule(Kind.AT, at=now + timedelta(seconds=in_s))
    entry = Schedule(new_schedule_id(), bulletin_id, (PROVINCE,), rule, created_at=now)
    return ScheduleBook(world.store).add(entry).id


async def find_leader(world: World, other_than: str = "") -> str:
    """The controller holding the scheduler lease, once there is one (and it is not `other_than`)."""
    found: list[str] = []

    def led() -> bool:
        current = world.store.leases.current(LEADER)
        found[:] = [current[0]] if current and current[0] != other_than else []
        return bool(found)

    await wait_until(led, "a leader other than " + (other_than or "nobody"), SAFETY_NET_S)
    return found[0]


def aired(world: World, schedule_id: str) -> str | None:
    """The broadcast of the schedule's one run, once it is closed."""
    runs = ScheduleBook(world.store).runs(schedule_id)
    if len(runs) != 1 or not runs[0].broadcast_id:
        return None
    try:
        info = world.store.broadcasts.get(runs[0].broadcast_id)
    except NotFound:
        return None
    return info.id if info.state is not BroadcastState.RUNNING else None


def sounding(world: World, schedule_id: str) -> str | None:
    """The schedule's broadcast once some cluster is recorded playing it."""
    runs = ScheduleBook(world.store).runs(schedule_id)
    if not runs or not runs[0].broadcast_id:
        return None
    try:
        counts = world.store.deliveries.counts(runs[0].broadcast_id)
    except NotFound:
        return None
    return runs[0].broadcast_id if counts.get(PLAYING) else None


def played(world: World, sha: str) -> dict[str, int]:
    """How many times each simulated cluster played the content."""
    return {k: d.output.played.count(sha) for k, d in world.fleet.devices.items()}


def assert_final_once(world: World, broadcast_id: str, sha: str) -> None:
    """Every delivery finished and in the play log, the broadcast complete, each cluster played it once."""
    deliveries = world.store.deliveries.of(broadcast_id)
    assert {d.device_id for d in deliveries} == set(world.fleet.devices)
    assert all(d.state is FINISHED and d.playing_at for d in deliveries), deliveries
    info = world.store.broadcasts.get(broadcast_id)
    assert info.state is BroadcastState.COMPLETE
    airings = [a for a in world.store.events.airings_since(info.created_at) if a.airing_id == broadcast_id]
    assert sorted(a.device_id for a in airings) == sorted(world.fleet.devices), airings
    assert played(world, sha) == dict.fromkeys(world.fleet.devices, 1)


async def restart(world: World, name: str) -> None:
    """Start a killed controller again and wait until it renews its lease."""
    world.controllers.start(name)
    await wait_until(lambda: alive(world, name), f"{name} back with its lease renewed", START_S)


def alive(world: World, name: str) -> bool:
    """Whether the controller's latest process holds its own lease (it renews it from its start)."""
    current = world.store.leases.current(member_lease(name))
    return current is not None and world.controllers.processes[name].poll() is None


async def leader_killed_before_an_occurrence(world: World) -> float:
    """The leader killed (SIGKILL) before a scheduled occurrence: another airs it on time, once, and
    the killed one is started again. The seconds until another led."""
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms=20_000)
    schedule_id = add_schedule(world, bulletin_id, in_s=15)
    killed_at = time.monotonic()
    world.controllers.kill(leader)
    successor = await find_leader(world, other_than=leader)
    takeover_s = time.monotonic() - killed_at
    await wait_until(lambda: aired(world, schedule_id) is not None, "the occurrence aired", 60)
    broadcast_id = aired(world, schedule_id)
    assert broadcast_id is not None
    (run,) = ScheduleBook(world.store).runs(schedule_id)
    assert run.state is RunState.AIRED, run  # on time: the successor led before the air time
    assert world.store.broadcasts.get(broadcast_id).owner == successor
    assert_final_once(world, broadcast_id, sha)
    await restart(world, leader)
    return takeover_s


async def owner_killed_mid_broadcast(
    world: World, duration_ms: int, then: Callable[[str], None], recovery_s: float
) -> str:
    """A scheduled broadcast's owner killed (SIGKILL) while the clusters play it, then `then(owner)`:
    another controller takes it over and closes it, every delivery final and in the play log, no
    cluster playing it twice. The killed owner, for the caller to start again."""
    leader = await find_leader(world)
    bulletin_id, sha = add_bulletin(world, duration_ms)
    schedule_id = add_schedule(world, bulletin_id, in_s=8)
    await wait_until(lambda: sounding(world, schedule_id) is not None, "clusters playing", 60)
    broadcast_id = sounding(world, schedule_id)
    assert broadcast_id is not None
    owner = world.store.broadcasts.get(broadcast_id).owner
    assert owner == leader
    killed_at = time.monotonic()
    world.controllers.kill(owner)
    then(owner)
    taken = lambda: world.store.broadcasts.get(broadcast_id).owner != owner  # noqa: E731
    await wait_until(taken, "another controller owning the broadcast", recovery_s)
    print(f"broadcast_takeover_s: {time.monotonic() - killed_at:.2f}")
    await wait_until(lambda: aired(world, schedule_id) is not None, "the broadcast closed", recovery_s)
    assert world.store.broadcasts.get(broadcast_id).owner not in ("", owner)
    assert "takes over broadcast " + broadcast_id in "".join(
        world.controllers.log(n) for n in NAMES if n != owner
    )
    assert_final_once(world, broadcast_id, sha)
    return owner
