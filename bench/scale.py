"""Scale benchmark: fan-out against the broker's floor, the simulator's memory, ingestion, clocks.

One run, `name: value` lines (ratios against baselines measured in the same run):
  floor_N_s, e2e_N_s, fanout_ratio_N  per fleet size N (--sizes; 279,1000 by default, add 10000):
      floor: one QoS 1 publish to N bare MQTT clients until every one answered (bench/fanout.py);
      e2e: a cached bulletin, command until every cluster plays, the fleet spread over --processes
      simulator processes (`speakerctl simulate --processes`), the controller in this process; the
      bulletin is a minute of sound (1.2 s at the simulators' time scale of 50): with one second
      (20 ms), the clusters' `finished` replies and statuses came back inside the fan-out being
      measured, which a bulletin of real length never does (279 clusters: 1.90–1.96 → 1.49–1.60);
      median of the broadcasts that reached every cluster (timeout 120 s, 0.06 s per cluster above
      2,000: 600 s at 10,000), NaN if none did; each once the reports of the one before have
      stopped coming (`settled`). Nine floors and nine broadcasts up to 1,000 clusters, three above:
      on this shared virtual machine the floor at 279 clusters varied 34–69 ms from one run to the
      next. e2e counts from the play's stamp (`issued_at`, as the store's reach latency does), set
      right before its publish.
  unreached_N          only when some of those broadcasts timed out: the clusters they missed, summed
  sim_kb_per_cluster   what one more simulated cluster costs in resident memory (largest N):
                       (RSS of the simulator processes with N clusters − RSS of the same processes with
                       one cluster each) / (N − processes). The processes' own interpreters and imports
                       are a fixed cost, not a per-cluster one: at 279 clusters they outweigh the
                       clusters themselves, so they are reported apart, as
  sim_mb_fixed         resident memory of the simulator processes holding one cluster each, in MB
                       (the whole footprint of N clusters is about sim_mb_fixed + N × sim_kb_per_cluster)
  start_skew_p99_ms    p99 over clusters of |start as the cluster reports it − start_at| (largest N;
                       start_at twice the slowest e2e ahead; simulated clocks without offset, so the
                       cluster's time stamp is the host's), after one round of the clock pings that
                       `serve` sends every clock_ping_s (controller/clocks.py), the first a minute
                       after it starts
  start_skew_fanout_p99_ms  the same, before that round: each cluster's offset estimate rests on the
                       five plays fanned out to the whole fleet in this run (its place in the broker's
                       fan-out, and in its simulator process's read loop, count)
  offset_error_p99_ms  p99 over 279 in-process clusters with clock offsets of ±2 s of
                       |true offset − the agent's estimate| after one ping each
  ingest_ratio_sqlite, ingest_ratio_postgres  bench/ingest.py's ratios (statuses through the
                       controller, draining the queue the broker kept for it while it was away, /
                       plain batched inserts), with --ingest-clusters clusters
  ingest_rate_1_per_s, ingest_rate_3_per_s, ingest_scaling_3  statuses stored per second (rows of
                       status_history) by one `speakerctl serve` process, then by three in a Mosquitto
                       shared subscription (shared_group), each on a fresh PostgreSQL database and broker:
                       bench/ingest.py's publishers send one status from each of --scaling-clusters
                       cluster ids while the controllers are stopped (SIGSTOP; the broker queues their
                       shares), timed from SIGCONT until the queues are drained into the database.
                       On a 2-CPU machine the three controllers, the broker and PostgreSQL share two
                       cores: the ratio says what sharing costs there, not what three machines give.
  ingest_unstored_1, ingest_unstored_3  only when some statuses did not become history rows
  failover_s           three `serve` processes on PostgreSQL and a three-node NATS cluster, --ha-clusters
                       simulated clusters spread over the nodes: the leader killed with SIGKILL 15 s before
                       a scheduled occurrence, seconds until another controller holds the scheduler lease
  failover_aired       1 if that occurrence then aired on time, on every cluster, once
  broadcast_takeover_s, double_plays, lost_records  the same world, a broadcast of 20 s of sound: its
                       owner killed once clusters play it, then (once another controller owns it) the NATS
                       node every controller prefers; seconds until the takeover, clusters that played it
                       more than once, clusters whose play is missing (not played, or no final delivery
                       with its start time in the store)

Usage: .venv/bin/python bench/scale.py [--sizes 279,1000[,10000]] [--processes 2] [--ingest-clusters 10000]
       [--scaling-clusters 20000] [--publishers 4] [--ha-clusters 279] [--no-postgres]
       [--skip-fanout] [--skip-ingest] [--skip-scaling] [--skip-failover] [--skip-crashes] [--keep DIR]
--no-postgres skips every several-controller part (they need PostgreSQL, 127.0.0.1:5432). The open-file
limit is raised to its hard limit (10,000 clusters are 10,000 sockets here and in the broker).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from fanout import _bulletin, broker_floor
from scale_ha import failover_and_crashes, ingest_scaling

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.context import load_fleet
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.clocks import ClockKeeper
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.protocol import Ping
from speakerctl.protocol.lifecycle import FINISHED
from speakerctl.security.keys import trusted_path
from speakerctl.store import Store

HERE = Path(__file__).parent


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@contextmanager
def simulators(url: str, n: int, processes: int, root: Path, trust: Path) -> Iterator[list[int]]:
    """`speakerctl simulate --processes` for N clusters; yields the PIDs of every simulator process."""
    cmd = [sys.executable, "-m", "speakerctl", "--broker", url, "--data-dir", str(root / "sim-data"),
           "simulate", "--count", str(n), "--processes", str(processes), "--time-scale", "50",
           "--cache-dir", str(root / f"sim-{n}"), "--trust", str(trust), "--heartbeat", "600"]  # fmt: skip
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(runtime.READY):
                    break
            else:
                raise RuntimeError(f"simulate exited with {proc.wait()}")
            yield [proc.pid, *_children(proc.pid)]
        finally:
            proc.terminate()
            proc.wait(60)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def rss_kb(pids: list[int]) -> int:
    """Resident memory of these processes, in KB."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


async def fanout(url: str, n: int, processes: int, root: Path) -> dict[str, float]:
    """e2e, start skew and simulator memory for N clusters in `processes` simulator processes.

    e2e is the median of the broadcasts that reached every cluster (NaN if none did); `unreached`
    counts the clusters the others missed.
    """
    inventory = scaled_inventory(load_inventory(), n)
    settings = Settings(data_dir=root / f"ctl-{n}", broker=url, broadcast_timeout_s=timeout_s(n))
    store = Store.open(settings.db_url)
    load_fleet(store, inventory)
    controller = runtime.controller(runtime.context(settings), store)
    with simulators(url, processes, processes, root, trusted_path(settings.keys_dir)) as pids:
        fixed = rss_kb(pids)
    with simulators(url, n, processes, root, trusted_path(settings.keys_dir)) as pids:
        memory = (rss_kb(pids) - fixed) / max(1, n - processes)
        async with controller.running():
            small = _bulletin(store, settings.content_dir, {"opus": 20_000, "mp3": 20_000}, 60_000)
            root_zone = (inventory.root.id,)
            warm = await controller.broadcast(BroadcastRequest(small, root_zone))  # fills the caches
            times, unreached = [], 0
            for _ in range(repeats(n)):
                await settled(controller)
                result = await controller.broadcast(BroadcastRequest(small, root_zone))
                if result.reach_latency_s is None:
                    unreached += n - result.counts.get(FINISHED, 0)
                else:
                    times.append(result.reach_latency_s)
            e2e = statistics.median(times) if times else math.nan
            lead_s = max(3.0, 2 * max(times, default=10.0))
            skew_fanout = await start_skew(controller, small, root_zone, lead_s=lead_s)
            await ClockKeeper(controller.link, controller.signer, store, controller.clock).round()
            skew = await start_skew(controller, small, root_zone, lead_s=lead_s)
    store.close()
    return {
        "e2e": e2e,
        "sim_kb": memory,
        "sim_mb_fixed": fixed / 1024,
        "skew": skew,
        "skew_fanout": skew_fanout,
        "warm_played": warm.played,
        "unreached": unreached,
    }


async def settled(controller: Controller, quiet_s: float = 0.3, limit_s: float = 30.0) -> None:
    """Wait until the clusters' reports of the last broadcast (`finished`, then a status each) have
    stopped coming and are stored: a broadcast measured while they arrive measures their ingestion
    too, which a broadcast of the day (minutes apart) never meets, and the floor never does."""
    counters = controller.ingestor.counters
    deadline, seen = time.monotonic() + limit_s, (-1, -1)
    while time.monotonic() < deadline and seen != (counters.statuses, counters.events):
        seen = (counters.statuses, counters.events)
        await asyncio.sleep(quiet_s)
    await controller.ingestor.flush()


def repeats(n: int) -> int:
    """Floors and broadcasts measured per size: the median of nine where each takes a second or two."""
    return 9 if n <= 1000 else 3


def timeout_s(n: int) -> float:
    """Broadcast timeout for N clusters: 120 s, more for large fleets (10,000: 600 s)."""
    return max(120.0, 0.06 * n)


async def start_skew(controller: Controller, bulletin: int, targets: tuple[str, ...], lead_s: float) -> float:
    """p99 of |reported start − start_at| in ms, for a broadcast timed `lead_s` ahead (long enough for
    every cluster to hold the command, so what is measured is how well they keep the time)."""
    start_at = SystemClock().now() + timedelta(seconds=lead_s)
    result = await controller.broadcast(BroadcastRequest(bulletin, targets, start_at=start_at))
    deliveries = controller.store.deliveries.of(result.broadcast_id)
    gaps = [abs((d.playing_at - start_at).total_seconds()) * 1000 for d in deliveries if d.playing_at]
    return p99(gaps)


async def offset_error(url: str, root: Path, n: int = 279) -> float:
    """p99 |true − estimated clock offset| in ms over N in-process clusters after one ping each."""
    inventory = scaled_inventory(load_inventory(), n)
    settings = Settings(data_dir=root / "ctl-offset", broker=url)
    store = Store.open(settings.db_url)
    load_fleet(store, inventory)
    controller = runtime.controller(runtime.context(settings), store)
    options = FleetOptions(
        root=root / "fleet-offset", max_clock_offset_ms=2000, trust_file=trusted_path(settings.keys_dir)
    )
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(fleet.run())
        await fleet.wait_online(300)
        async with controller.running():
            for device_id in fleet.devices:
                await controller.manage(device_id, Ping(), timeout=30)
        task.cancel()
    store.close()
    errors = [abs(d.clock.offset_ms - d.agent.offset.offset_ms) for d in fleet.devices.values()]
    return p99([float(e) for e in errors])


def ingest_ratios(clusters: int, postgres: bool) -> dict[str, float]:
    """bench/ingest.py in its own process; its `<db>_ratio` lines."""
    cmd = [sys.executable, str(HERE / "ingest.py"), "--clusters", str(clusters)]
    out = subprocess.run(
        [*cmd, *([] if postgres else ["--no-postgres"])], capture_output=True, text=True, check=True
    ).stdout
    found = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return {
        f"ingest_ratio_{db}": float(found[f"{db}_ratio"])
        for db in ("sqlite", "postgres")
        if f"{db}_ratio" in found
    }


async def fanouts(args: argparse.Namespace, root: Path) -> AsyncIterator[tuple[str, float]]:
    """floor, e2e and their ratio per size; memory and start skew at the largest; the offset error."""
    sizes = [int(s) for s in args.sizes.split(",")]
    config = MosquittoConfig(port=free_port())  # max_connections: unlimited by default
    with MosquittoProcess(config, root / "mosquitto") as broker:
        last: dict[str, float] = {}
        for n in sizes:
            floor = await broker_floor(broker.port, n, repeats(n))
            yield f"floor_{n}_s", floor
            last = await fanout(broker.url, n, args.processes, root)
            yield f"e2e_{n}_s", last["e2e"]
            yield f"fanout_ratio_{n}", last["e2e"] / floor
            if last["unreached"]:
                yield f"unreached_{n}", last["unreached"]
        yield "sim_kb_per_cluster", last["sim_kb"]
        yield "sim_mb_fixed", last["sim_mb_fixed"]
        yield "start_skew_fanout_p99_ms", last["skew_fanout"]
        yield "start_skew_p99_ms", last["skew"]
        yield "offset_error_p99_ms", await offset_error(broker.url, root)


async def run(args: argparse.Namespace, root: Path) -> AsyncIterator[tuple[str, float]]:
    """Every part not skipped, its lines as each part ends."""
    if not args.skip_fanout:
        async for line in fanouts(args, root):
            yield line
    if not args.skip_ingest:
        for line in sorted(ingest_ratios(args.ingest_clusters, not args.no_postgres).items()):
            yield line
    if not args.no_postgres and not args.skip_scaling:
        scaling = await ingest_scaling(root / "scaling", args.scaling_clusters, 1, args.publishers)
        for line in scaling.items():
            yield line
    if not args.no_postgres and not (args.skip_failover and args.skip_crashes):
        ha = await failover_and_crashes(root / "ha", args.ha_clusters, not args.skip_crashes)
        for line in ha.items():
            if args.skip_failover and line[0].startswith("failover"):
                continue
            yield line


def raise_fd_limit() -> None:
    """Open-file limit up to the hard limit: 10,000 clusters are 10,000 sockets (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Run the benchmark and print `name: value` lines."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="279,1000")
    parser.add_argument("--processes", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--ingest-clusters", type=int, default=10_000)
    parser.add_argument("--scaling-clusters", type=int, default=20_000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--ha-clusters", type=int, default=279)
    parser.add_argument("--no-postgres", action="store_true", help="also skips every several-controller part")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    for part in ("fanout", "ingest", "scaling", "failover", "crashes"):
        parser.add_argument(f"--skip-{part}", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    # SIGTERM as Ctrl-C: the context managers then stop the brokers and controllers and drop the databases.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(_print(args))


async def _print(args: argparse.Namespace) -> None:
    if args.keep:  # the controllers' logs, the brokers' directories, kept for a look afterwards
        args.keep.mkdir(parents=True, exist_ok=True)
        await _lines(args, args.keep)
        return
    with tempfile.TemporaryDirectory(prefix="speakerctl-scale-") as tmp:
        await _lines(args, Path(tmp))


async def _lines(args: argparse.Namespace, root: Path) -> None:
    async for name, value in run(args, root):
        print(f"{name}: {value:.4g}", flush=True)


if __name__ == "__main__":
    main()
