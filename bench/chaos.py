"""Chaos bench: one province broadcast per fault scenario (simulator/scenarios/*.toml), and what survived.

    .venv/bin/python bench/chaos.py [--only NAME] [--scenarios DIR] [--runs N] [--deadline S]

Each scenario gets a fresh broker (a private Mosquitto with persistence if installed, else the
embedded one, which cannot run `broker-restart`), a fresh controller store and a simulated fleet with
the scenario's faults. It prints a table (scenario, clusters, delivered, played, lost records, time to
complete) and then `scenario.metric: value` lines for scripts.

- delivered: clusters holding the bulletin's content at the end (sha256 verified)
- played: clusters that played it to the end (counted on the simulated amplifier, not from reports)
- lost records: targeted clusters whose delivery record is not final, or says finished when the
  cluster did not play (or the reverse); must be 0
- twice: clusters that played it more than once; must be 0

A scenario that has not ended within `--deadline` seconds is stopped and reported as failed (its
clusters all counted as lost records), with where its tasks were waiting; should even that not stop
it (a blocked event loop), the process dumps every thread's stack and exits 3. `--runs N` runs every
scenario N times in a row; the exit status is 1 if any run lost a record or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import hashlib
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions, SimDevice
from simulator.scenarios import Scenario, load_scenarios
from speakerctl.app import runtime
from speakerctl.app.context import load_fleet
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess, find_mosquitto
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.controller.session import serve_session
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.protocol.lifecycle import FINAL, FINISHED
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import Store, VariantInfo


@dataclass(frozen=True, slots=True)
class Row:
    """The outcome of one scenario."""

    scenario: str
    clusters: int
    delivered: int
    played: int
    lost_records: int
    twice: int
    seconds: float
    counts: dict[str, int]
    failed: str = ""
    """Why the scenario did not end (empty if it did)."""


class Broker:
    """A restartable broker for one scenario."""

    def __init__(self, root: Path) -> None:
        binary = find_mosquitto()
        self.mosquitto = (
            MosquittoProcess(
                MosquittoConfig(port=free_port(), persistence=True), root / "broker", binary=binary
            )
            if binary
            else None
        )
        self.embedded = None if self.mosquitto else EmbeddedBroker()

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        if self.mosquitto is not None:
            with self.mosquitto as broker:
                yield broker.url
        else:
            assert self.embedded is not None
            with self.embedded as broker:
                yield broker.url

    def restart(self) -> None:
        if self.mosquitto is None:
            raise RuntimeError("restarting needs Mosquitto")
        self.mosquitto.stop()
        time.sleep(0.3)
        self.mosquitto.start()


def _bulletin(store: Store, content_dir: Path, size: int) -> int:
    variants = []
    for codec, container in (("opus", "ogg"), ("mp3", "mp3")):
        data = os.urandom(size)
        sha = hashlib.sha256(data).hexdigest()
        (content_dir / sha[:2]).mkdir(parents=True, exist_ok=True)
        (content_dir / sha[:2] / f"{sha}.{container}").write_bytes(data)
        variants.append(VariantInfo(codec, container, 24, sha, size, 2000))
    first = variants[0]
    args = (first.sha256, "opus", "ogg", 24, 2000, size, "chaos", "chaos", datetime.now(UTC))
    return store.bulletins.add("chaos", *args, variants=variants).id


async def run(scenario: Scenario, root: Path) -> Row:
    """Run one scenario end to end."""
    broker = Broker(root)
    if scenario.broker_restart_at_s and broker.mosquitto is None:
        raise RuntimeError(f"{scenario.name} needs Mosquitto")
    with broker.running() as url:
        settings = Settings(data_dir=root / "ctl", broker=url, broadcast_timeout_s=20, accept_window_s=2)
        inventory = scaled_inventory(load_inventory(), scenario.clusters)
        store = Store.open(settings.db_url)
        load_fleet(store, inventory)
        bulletin = _bulletin(store, settings.content_dir, scenario.bulletin_kb * 1024)
        load_or_create_signer(settings.keys_dir)
        fleet = Fleet(
            provisioning_records(inventory), settings.broker_address, _options(scenario, root, settings)
        )
        played: dict[str, list[SimDevice]] = {k: [v] for k, v in fleet.devices.items()}
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(120)
            async with _controller(settings, store) as controller:
                result, seconds = await _broadcast(
                    scenario, controller, fleet, runner, broker, bulletin, played
                )
                await asyncio.sleep(0.5)
                await controller.ingestor.flush()
        return _row(scenario, store, result.broadcast_id, result.counts, fleet, played, seconds)


def _options(scenario: Scenario, root: Path, settings: Settings) -> FleetOptions:
    return FleetOptions(
        root=root / "fleet",
        time_scale=20,
        max_clock_offset_ms=scenario.clock_skew_ms,
        trust_file=trusted_path(settings.keys_dir),
        faults=scenario.faults,
        repair_after_s=0.5,
        heartbeat_s=30,
    )


@contextlib.asynccontextmanager
async def _controller(settings: Settings, store: Store) -> AsyncIterator[Controller]:
    # The bench's controller stands in for `serve`: its persistent session keeps what clusters
    # report while the broker restarts (a clean one lost 123-279 records per run).
    session = serve_session(settings.data_dir, settings.client_id)
    controller = runtime.controller(runtime.context(settings), store, session=session)
    async with controller.running():
        yield controller


async def _broadcast(
    scenario: Scenario,
    controller: Controller,
    fleet: Fleet,
    runner: FleetRunner,
    broker: Broker,
    bulletin: int,
    played: dict[str, list[SimDevice]],
) -> tuple[object, float]:
    offline = list(fleet.devices)[-scenario.offline :] if scenario.offline else []
    await runner.power_cut(offline)
    await asyncio.sleep(0.5)
    await controller.ingestor.flush()
    root = load_inventory().root.id
    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        job = tg.create_task(controller.broadcast(BroadcastRequest(bulletin, (root,))))
        chaos = tg.create_task(_chaos(scenario, fleet, runner, broker, offline, played))
        result = await job
        chaos.cancel()
    return result, time.perf_counter() - start


async def _chaos(
    scenario: Scenario,
    fleet: Fleet,
    runner: FleetRunner,
    broker: Broker,
    offline: list[str],
    played: dict[str, list[SimDevice]],
) -> None:
    async with asyncio.TaskGroup() as tg:
        if offline:
            tg.create_task(_return(fleet, runner, offline, scenario.return_after_s, played))
        if scenario.broker_restart_at_s:
            await asyncio.sleep(scenario.broker_restart_at_s)
            await asyncio.to_thread(broker.restart)
        if scenario.power_cut_playing:
            victims = await _playing(fleet, scenario.power_cut_playing)
            await runner.power_cut(victims)
            tg.create_task(_return(fleet, runner, victims, 1.0, played))


async def _playing(fleet: Fleet, count: int) -> list[str]:
    while True:
        now = [k for k, d in fleet.devices.items() if d.agent.player.current is not None]
        if len(now) >= count:
            return now[:count]
        await asyncio.sleep(0.01)


async def _return(
    fleet: Fleet, runner: FleetRunner, ids: list[str], after_s: float, played: dict[str, list[SimDevice]]
) -> None:
    await asyncio.sleep(after_s)
    for device_id in ids:
        device = fleet.rebuild(device_id)
        played[device_id].append(device)
        runner.start(device.agent)


def _row(
    scenario: Scenario,
    store: Store,
    broadcast_id: str,
    counts: dict[str, int],
    fleet: Fleet,
    played: dict[str, list[SimDevice]],
    seconds: float,
) -> Row:
    records = {d.device_id: d for d in store.deliveries.of(broadcast_id)}
    plays = {k: sum(len(d.output.played) for d in v) for k, v in played.items()}
    delivered = sum(bool(fleet.devices[k].agent.cache.hashes) for k in fleet.devices)
    lost = sum(
        1
        for k in fleet.devices
        if k not in records
        or records[k].state not in FINAL
        or (records[k].state is FINISHED) != (plays[k] > 0)
    )
    return Row(
        scenario.name,
        scenario.clusters,
        delivered,
        sum(1 for n in plays.values() if n > 0),
        lost,
        sum(1 for n in plays.values() if n > 1),
        seconds,
        counts,
    )


def print_report(rows: list[Row]) -> None:
    """The table, then one `scenario.metric: value` line per number."""
    columns = ("clusters", "delivered", "played", "lost records", "time to complete")
    head = f"{'scenario':<22} " + " ".join(f"{c:>{max(len(c), 6)}}" for c in columns)
    print(head)
    print("-" * len(head))
    for r in rows:
        numbers = (r.clusters, r.delivered, r.played, r.lost_records)
        cells = " ".join(f"{n:>{max(len(c), 6)}}" for n, c in zip(numbers, columns, strict=False))
        print(f"{r.scenario:<22} {cells} {r.seconds:>15.1f}s {r.failed}")
    print()
    for r in rows:
        for metric, value in (
            ("clusters", r.clusters),
            ("delivered", r.delivered),
            ("played", r.played),
            ("lost_records", r.lost_records),
            ("played_twice", r.twice),
            ("seconds", round(r.seconds, 2)),
            ("failed", r.failed or "no"),
            ("states", " ".join(f"{k}={v}" for k, v in sorted(r.counts.items()))),
        ):
            print(f"{r.scenario}.{metric}: {value}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="run only the scenario with this name")
    parser.add_argument("--scenarios", type=Path, help="directory of scenario files")
    parser.add_argument("--runs", type=int, default=1, help="run every scenario N times in a row")
    parser.add_argument(
        "--deadline", type=float, default=180.0, help="seconds a scenario may take before it fails"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    scenarios = [s for s in load_scenarios(args.scenarios) if args.only in (None, s.name)]
    rows = []
    for n in range(1, args.runs + 1):
        for scenario in scenarios:
            rows.append(await _bounded(scenario, args.deadline, f"run {n}/{args.runs}"))
    print_report(rows)
    if any(r.lost_records or r.twice or r.failed for r in rows):
        sys.exit(1)


async def _bounded(scenario: Scenario, deadline_s: float, label: str) -> Row:
    """Run one scenario within `deadline_s`; past it, a failed row (and where it was stuck)."""
    print(f"running {scenario.name} ({label}) ...", file=sys.stderr, flush=True)
    # The last resort, should the event loop itself be blocked: every thread's stack, then exit 3.
    faulthandler.dump_traceback_later(deadline_s + 60, exit=True)
    loop = asyncio.get_running_loop()
    stuck = loop.call_later(max(deadline_s - 1, 0), _report_stuck)
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="speakerctl-chaos-") as tmp:
            async with asyncio.timeout(deadline_s):
                return await run(scenario, Path(tmp))
    except TimeoutError:
        seconds = time.perf_counter() - start
        print(f"{scenario.name}: no end within {deadline_s:.0f} s", file=sys.stderr, flush=True)
        return Row(scenario.name, scenario.clusters, 0, 0, scenario.clusters, 0, seconds, {}, "timeout")
    finally:
        stuck.cancel()
        faulthandler.cancel_dump_traceback_later()


def _report_stuck() -> None:
    """Where the running tasks wait, most common first (a scenario about to miss its deadline)."""
    waits: Counter[str] = Counter()
    for task in asyncio.all_tasks():
        frames = task.get_stack()
        if frames:
            frame = frames[-1]
            waits[f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"] += 1
    print("tasks waiting at (count, where):", file=sys.stderr)
    for where, count in waits.most_common(25):
        print(f"  {count:5} {where}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
