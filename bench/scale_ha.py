"""bench/scale.py's several-controller parts: shared ingestion, leader failover, a run with crashes.

- ingest_scaling: statuses stored per second by one `serve` process, then by three sharing a
  Mosquitto shared subscription (`shared_group`), each on a fresh PostgreSQL database and broker;
  bench/ingest.py's load generator publishes the statuses of `clusters` simulated cluster ids.
- failover_and_crashes: three `serve` processes on PostgreSQL and a three-node NATS cluster, a fleet
  of simulated clusters spread over the nodes (in this process, so its plays can be counted). The
  leader is killed (SIGKILL) before a scheduled occurrence: seconds until another holds the lease, and
  whether the occurrence airs. Then a long broadcast: its owner is killed once clusters play it, and
  the NATS node every controller prefers once another controller took it over; clusters that played
  it twice, and clusters whose play is missing (not played, or played but not final in the store).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from ingest import postgres_database, prepare, statuses
from serves import NAMES, Serves, serves, wait_for, write_inventory

from devices.identity import Installed
from devices.trust import read_trusted_keys
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import load_fleet
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.nats import NatsCluster
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.errors import NotFound
from speakerctl.fleet import Inventory, load_inventory, provisioning_records, scaled_inventory
from speakerctl.protocol import codec, topics
from speakerctl.protocol.lifecycle import FINISHED, PLAYING
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState, Schedule, new_schedule_id
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import LEADER, BroadcastState, Store, VariantInfo

HERE = Path(__file__).parent
TTL_S, RENEW_S = 5.0, 1.5
TIME_SCALE = 20
"""The simulated clusters play 20× faster than real time."""
LEASES = {"SPEAKERCTL_LEASE_TTL_S": str(TTL_S), "SPEAKERCTL_LEASE_RENEW_S": str(RENEW_S)}
HA_ENV = LEASES | {
    "SPEAKERCTL_SCHEDULE_HORIZON_H": "0",
    "SPEAKERCTL_SCHEDULE_LEAD_S": "1",
    "SPEAKERCTL_ACCEPT_WINDOW_S": "1",
    "SPEAKERCTL_BROADCAST_TIMEOUT_S": "60",
    "SPEAKERCTL_LANG": "en",
    "PYTHONUNBUFFERED": "1",
}
Content = frozenset[str]
"""The hashes of a bulletin's encodings (a simulated cluster records the hash of what it played)."""
STALL_S = 10.0
"""Ingestion is over when no status has been stored for this long (some may be skipped as stale)."""


# --- ingestion shared between controllers


async def ingest_scaling(root: Path, clusters: int, rounds: int, publishers: int) -> dict[str, float]:
    """Stored statuses per second with one controller and with three; their ratio."""
    ids = [d.id for d in scaled_inventory(load_inventory(), clusters).devices]
    data = [(topics.device_status(s.device_id), codec.encode(s)) for s in statuses(ids, rounds)]
    wire = root / "wire.pickle"
    wire.parent.mkdir(parents=True, exist_ok=True)
    wire.write_bytes(pickle.dumps(data))
    one, stored_1 = await _stored_rate(root / "one", clusters, wire, len(data), NAMES[:1], publishers)
    three, stored_3 = await _stored_rate(root / "three", clusters, wire, len(data), NAMES, publishers)
    found = {"ingest_rate_1_per_s": one, "ingest_rate_3_per_s": three, "ingest_scaling_3": three / one}
    # Fewer rows than statuses: some were not stored (or skipped as older than one already stored).
    unstored = {"ingest_unstored_1": len(data) - stored_1, "ingest_unstored_3": len(data) - stored_3}
    return found | {k: float(v) for k, v in unstored.items() if v}


async def _stored_rate(
    root: Path, clusters: int, wire: Path, count: int, names: tuple[str, ...], publishers: int
) -> tuple[float, int]:
    """Statuses per second into status_history by `names` controllers on a fresh broker and database;
    how many rows were stored."""
    config = MosquittoConfig(port=free_port())
    with postgres_database() as url, MosquittoProcess(config, root / "mqtt") as mqtt:
        prepare(url, clusters)
        settings = Settings(data_dir=root, broker=mqtt.url, database_url=url)
        store = Store.open(url)
        # Leases that outlast the pause: nobody takes anything over while the controllers are stopped.
        env = {
            "SPEAKERCTL_LEASE_TTL_S": "120",
            "SPEAKERCTL_LEASE_RENEW_S": "30",
            "SPEAKERCTL_SHARED_GROUP": "speakerctl",
            "PYTHONUNBUFFERED": "1",
        }
        try:
            with serves(settings, root / "logs", names, env) as group:
                await group.wait_alive(store)
                return await _publish_and_count(group, url, mqtt.port, wire, count, publishers)
        finally:
            store.close()


async def _publish_and_count(
    group: Serves, url: str, port: int, wire: Path, count: int, publishers: int
) -> tuple[float, int]:
    """Publish while the controllers are stopped, then time them draining the broker's queues.

    Stopped (SIGSTOP, well within their keepalive), they keep their sessions: Mosquitto queues their
    share of the statuses. Timing from SIGCONT leaves the load generator, which shares the same two
    cores, out of the figure.
    """
    cmd = [sys.executable, str(HERE / "ingest.py"), "--publish-to", str(port), "--wire", str(wire)]
    child = await asyncio.create_subprocess_exec(
        *cmd, "--publishers", str(publishers), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    engine = sa.create_engine(url)
    try:
        await child.stdout.readline()  # "ready": every publisher connected
        base = _history_rows(engine)
        group.pause()
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        await child.wait()  # every status acknowledged by the broker
        group.resume()
        began = time.perf_counter()
        stored, last = base, began
        while stored - base < count and time.perf_counter() - last < STALL_S:
            await asyncio.sleep(0.25)
            now = await asyncio.to_thread(_history_rows, engine)
            if now > stored:
                stored, last = now, time.perf_counter()
        return (stored - base) / (last - began), stored - base
    finally:
        group.resume()
        engine.dispose()


def _history_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM status_history").scalar_one())


# --- leader failover and a broadcast through crashes


@dataclass
class World:
    """The NATS cluster, the database, the fleet and the three controllers."""

    nats: NatsCluster
    store: Store
    fleet: Fleet
    controllers: Serves
    settings: Settings
    target: str


async def failover_and_crashes(root: Path, clusters: int, crashes: bool) -> dict[str, float]:
    """failover_s (and whether the occurrence aired), then double_plays and lost_records."""
    async with ha_world(root, clusters) as world:
        found = await failover(world)
        if crashes:
            found |= await through_crashes(world)
    return found


@asynccontextmanager
async def ha_world(root: Path, clusters: int) -> AsyncIterator[World]:
    """A NATS cluster, a database, the fleet online and three controllers serving, for the block."""
    with NatsCluster(root / "nats") as nats, postgres_database() as url:
        await nats.wait_ready(120)
        settings = Settings(data_dir=root / "shared", broker=nats.broker, database_url=url)
        load_or_create_signer(settings.keys_dir)
        inventory = scaled_inventory(load_inventory(), clusters)
        env = HA_ENV | {"SPEAKERCTL_INVENTORY": str(write_inventory(inventory, root / "inv.json"))}
        with Store.open(url) as store:
            load_fleet(store, inventory)
            fleet = _fleet(settings, inventory, root / "fleet")
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(fleet.run())
                await fleet.wait_online(120)
                with serves(settings, root / "logs", NAMES, env) as group:
                    await group.wait_alive(store)
                    yield World(nats, store, fleet, group, settings, inventory.root.id)
                task.cancel()


def _fleet(settings: Settings, inventory: Inventory, root: Path) -> Fleet:
    """Cluster k prefers node k mod 3, then the others in turn: the fleet spread over the cluster."""
    addresses = settings.broker_addresses
    keys = read_trusted_keys(trusted_path(settings.keys_dir))
    installed = [
        Installed(record, addresses[k % 3 :] + addresses[: k % 3], keys)
        for k, record in enumerate(provisioning_records(inventory))
    ]
    return Fleet(installed, settings.broker_address, FleetOptions(root=root, time_scale=TIME_SCALE))


async def failover(world: World) -> dict[str, float]:
    """Kill the leader 15 s before an occurrence: seconds until another leads; 1 if it aired, once."""
    leader = await _leader(world)
    bulletin, content = _bulletin(world, duration_ms=20_000)
    schedule_id = _schedule(world, bulletin, in_s=15)
    killed_at = time.monotonic()
    world.controllers.kill(leader)
    await _leader(world, other_than=leader)
    takeover_s = time.monotonic() - killed_at
    await wait_for(lambda: _closed(world, schedule_id) is not None, "the occurrence aired", 120)
    (run,) = ScheduleBook(world.store).runs(schedule_id)
    broadcast_id = _closed(world, schedule_id)
    assert broadcast_id is not None
    missing, twice = _missing(world, broadcast_id, content), _twice(world, content)
    aired = run.state is RunState.AIRED and not missing and not twice
    if not aired:
        _explain("failover", world, broadcast_id, content, f"run {run.state}")
    world.controllers.start(leader)  # three again for the next part
    await world.controllers.wait_alive(world.store)
    return {"failover_s": takeover_s, "failover_aired": float(aired)}


async def through_crashes(world: World) -> dict[str, float]:
    """A broadcast of 20 s of sound: its owner killed, then the preferred NATS node; what went wrong."""
    await _leader(world)
    bulletin, content = _bulletin(world, duration_ms=400_000)
    schedule_id = _schedule(world, bulletin, in_s=8)
    await wait_for(lambda: _sounding(world, schedule_id) is not None, "clusters playing", 120)
    broadcast_id = _sounding(world, schedule_id)
    assert broadcast_id is not None
    owner = world.store.broadcasts.get(broadcast_id).owner
    world.controllers.kill(owner)
    taken = lambda: world.store.broadcasts.get(broadcast_id).owner not in ("", owner)  # noqa: E731
    takeover_s = await wait_for(taken, "another controller owning the broadcast", 120)
    world.nats.nodes[0].kill()  # the node every controller prefers
    await wait_for(lambda: _closed(world, schedule_id) is not None, "the broadcast closed", 300)
    missing, twice = _missing(world, broadcast_id, content), _twice(world, content)
    if missing or twice:
        _explain("crashes", world, broadcast_id, content, f"owner {owner} killed")
    return {
        "broadcast_takeover_s": takeover_s,
        "double_plays": float(len(twice)),
        "lost_records": float(len(missing)),
    }


def _explain(part: str, world: World, broadcast_id: str, content: Content, what: str) -> None:
    """On stderr: what each cluster that went wrong played, and its delivery in the store."""
    deliveries = {d.device_id: d for d in world.store.deliveries.of(broadcast_id)}
    state = world.store.broadcasts.get(broadcast_id).state
    print(f"{part}: broadcast {broadcast_id} {state}, {what}", file=sys.stderr)
    for device_id in sorted({*_missing(world, broadcast_id, content), *_twice(world, content)}):
        d = deliveries.get(device_id)
        record = f"{d.state} playing_at={d.playing_at} {d.reason} {d.detail!r}" if d else "no delivery"
        print(f"  {device_id}: played {_plays(world, device_id, content)}×, {record}", file=sys.stderr)


def _plays(world: World, device_id: str, content: Content) -> int:
    """How often the cluster played the bulletin to its end, in any of its encodings."""
    played = world.fleet.devices[device_id].output.played
    return sum(played.count(sha) for sha in content)


def _twice(world: World, content: Content) -> list[str]:
    """Clusters that played the bulletin more than once."""
    return [k for k in world.fleet.devices if _plays(world, k, content) > 1]


def _missing(world: World, broadcast_id: str, content: Content) -> list[str]:
    """Clusters whose play is lost: not played, or played without a final delivery in the store."""
    final = {
        d.device_id for d in world.store.deliveries.of(broadcast_id) if d.state is FINISHED and d.playing_at
    }
    return [k for k in world.fleet.devices if not _plays(world, k, content) or k not in final]


def _bulletin(world: World, duration_ms: int) -> tuple[int, Content]:
    """A bulletin of random bytes in the shared content directory, in Opus and in MP3 (older clusters
    play only MP3): its id and the hashes of its encodings."""
    variants = [_variant(world, "opus", "ogg", duration_ms), _variant(world, "mp3", "mp3", duration_ms)]
    first = variants[0]
    args = (first.sha256, "opus", "ogg", 24, duration_ms, first.size, "x", "x", datetime.now(UTC))
    bulletin = world.store.bulletins.add("scale", *args, variants=variants)
    return bulletin.id, frozenset(v.sha256 for v in variants)


def _variant(world: World, codec_name: str, container: str, duration_ms: int) -> VariantInfo:
    data = os.urandom(8 * 16384)
    sha = hashlib.sha256(data).hexdigest()
    folder = world.settings.content_dir / sha[:2]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{sha}.{container}").write_bytes(data)
    return VariantInfo(codec_name, container, 24, sha, len(data), duration_ms)


def _schedule(world: World, bulletin: int, in_s: float) -> str:
    now = datetime.now(UTC)
    rule = Rule(Kind.AT, at=now + timedelta(seconds=in_s))
    schedule = Schedule(new_schedule_id(), bulletin, (world.target,), rule, created_at=now)
    return ScheduleBook(world.store).add(schedule).id


async def _leader(world: World, other_than: str = "") -> str:
    """The controller holding the scheduler lease, once there is one (and it is not `other_than`)."""
    found: list[str] = []

    def led() -> bool:
        current = world.store.leases.current(LEADER)
        found[:] = [current[0]] if current and current[0] != other_than else []
        return bool(found)

    await wait_for(led, "leader other than " + (other_than or "nobody"), 120)
    return found[0]


def _closed(world: World, schedule_id: str) -> str | None:
    """The broadcast of the schedule's one run, once it is no longer running."""
    runs = ScheduleBook(world.store).runs(schedule_id)
    if len(runs) != 1 or not runs[0].broadcast_id:
        return None
    try:
        info = world.store.broadcasts.get(runs[0].broadcast_id)
    except NotFound:
        return None
    return info.id if info.state is not BroadcastState.RUNNING else None


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
