"""Scheduling benchmark: planning at scale, fire-time accuracy and start skew across the fleet.

Prints `name: value` lines:
  schedules_in_store              schedules written to the book (SQLite file)
  day_plan_s                      load them and compute the next day's plan after priority resolution
  day_plan_slots                  air-time segments in that plan
  broadcasts / clusters           scheduled broadcasts measured, clusters in the simulated fleet
  fire_error_p50_ms / _p99_ms     |actual start − scheduled start| per cluster and broadcast (true time)
  start_skew_p50_ms / _p99_ms     per broadcast, latest − earliest start across the clusters
  start_skew_max_ms
  uncorrected_skew_ms             the spread of the simulated clock offsets: the skew if clusters trusted
                                  their own clocks (the baseline the offset correction is measured against)
  skew_ratio                      start_skew_p99 / uncorrected_skew
  played / missing                cluster-broadcast pairs that played, and that did not

The fleet (279 agents) runs in this process with the controller, on the embedded broker, so the
event loop they share adds its own jitter: real clusters are separate machines.

Usage: .venv/bin/python bench/schedule.py [--schedules 10000] [--broadcasts 100] [--gap 1] [--offset-ms 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.app.schedules import preview
from speakerctl.audio import generate_tone
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState, Schedule
from speakerctl.scheduler.rules import Kind, Rule, parse_times
from speakerctl.security.keys import load_or_create_signer, trusted_path


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _random_schedule(i: int, rng: random.Random, zones: list[str]) -> Schedule:
    kind = rng.choice([Kind.DAILY, Kind.WEEKLY, Kind.CRON, Kind.AT])
    hh, mm = rng.randrange(4, 22), rng.randrange(0, 60, 5)
    rule = {
        Kind.DAILY: lambda: Rule(Kind.DAILY, times=parse_times(f"{hh:02}:{mm:02}")),
        Kind.WEEKLY: lambda: Rule(
            Kind.WEEKLY,
            times=parse_times(f"{hh:02}:{mm:02},17:00"),
            weekdays=frozenset(rng.sample(range(7), 3)),
        ),
        Kind.CRON: lambda: Rule(Kind.CRON, cron=f"{mm} {hh} * * 1-6"),
        Kind.AT: lambda: Rule(Kind.AT, at=datetime(2027, 1, 4, hh, mm, tzinfo=UTC)),
    }[kind]()
    priority = rng.choices(list(Priority), weights=[90, 9, 1])[0]
    return Schedule(f"sch-{i:05d}", 1, (rng.choice(zones),), rule, priority, rng.choice(list(PreemptPolicy)))


def bench_plan(root: Path, n: int) -> None:
    """Write n schedules, then time loading them and resolving the next day."""
    settings = Settings(data_dir=root / "plan")
    store = open_store(settings)
    tone = generate_tone(1.0, path=root / "plan-tone.wav")
    import_bulletin(store, settings, SystemClock(), tone, "Bản tin")
    zones = [z.id for z in store.zones.all() if z.parent is not None]
    book = ScheduleBook.open(settings.db_url)
    rng = random.Random(4)
    for i in range(n):
        book.add(_random_schedule(i, rng, zones))
    started = time.perf_counter()
    segments = preview(store, book, datetime(2027, 1, 4).date(), settings.timezone)
    print(f"schedules_in_store: {len(book.all())}")
    print(f"day_plan_s: {time.perf_counter() - started:.3f}")
    print(f"day_plan_slots: {len(segments)}")


async def bench_fleet(root: Path, broadcasts: int, gap_s: int, offset_ms: int) -> None:
    """Push `broadcasts` occurrences (one schedule repeated) to 279 clusters and measure their starts."""
    with EmbeddedBroker() as broker:
        settings = Settings(
            data_dir=root / "fleet-controller",
            broker=broker.url,
            accept_window_s=1.0,
            broadcast_timeout_s=60,
            schedule_lead_s=5.0,
            # Fired by APScheduler a lead ahead, one at a time: pushing all 100 to 279 clusters at once
            # is a burst of 56,000 events that the in-process fleet and pure-Python broker choke on.
            schedule_horizon_h=0,
        )
        load_or_create_signer(settings.keys_dir)
        options = FleetOptions(
            root=root / "fleet",
            time_scale=10.0,
            max_clock_offset_ms=offset_ms,
            seed=11,
            trust_file=trusted_path(settings.keys_dir),
        )
        fleet = Fleet(provisioning_records(load_inventory()), settings.broker_address, options)
        store = open_store(settings)
        bulletin, _ = import_bulletin(
            store, settings, SystemClock(), generate_tone(2.0, path=root / "t.wav"), "Tin"
        )
        first = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
        rule = Rule(Kind.AT, at=first, repeat=broadcasts, gap_s=gap_s)
        book = ScheduleBook.open(settings.db_url)
        book.add(Schedule("sch-bench", bulletin.id, ("soc-trang",), rule, created_at=datetime.now(UTC)))
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(fleet.run())
            await fleet.wait_online(60)
            controller = runtime.controller(runtime.context(settings), store)
            async with controller.running(), runtime.scheduled(controller, book, sync_every_s=1.0):
                end = first + timedelta(seconds=gap_s * broadcasts + 5)
                await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
            task.cancel()
        runs = book.runs("sch-bench")
        times = [r.fire_at for r in runs if r.state in (RunState.PUSHED, RunState.AIRED)]
        print(f"runs_not_on_time: {len(runs) - len(times)}")
        _report(fleet, [int(t.timestamp() * 1000) for t in times], offset_ms, gap_s)


def _nearest(starts: list[int], at: int, within_ms: int) -> int | None:
    best = min(starts, key=lambda s: abs(s - at), default=None)
    return best if best is not None and abs(best - at) <= within_ms else None


def _report(fleet: Fleet, scheduled_ms: list[int], offset_ms: int, gap_s: int) -> None:
    errors: list[float] = []
    skews: list[float] = []
    missing = 0
    for at in scheduled_ms:
        found = [_nearest(d.output.started_ms, at, gap_s * 500) for d in fleet.devices.values()]
        starts = [s for s in found if s is not None]
        missing += len(fleet.devices) - len(starts)
        errors += [abs(s - at) for s in starts]
        if starts:
            skews.append(max(starts) - min(starts))
    offsets = [d.clock.offset_ms for d in fleet.devices.values()]
    uncorrected = max(offsets) - min(offsets)
    print(f"broadcasts: {len(scheduled_ms)}")
    print(f"clusters: {len(fleet.devices)}")
    print(f"fire_error_p50_ms: {statistics.median(errors):.0f}")
    print(f"fire_error_p99_ms: {_pct(errors, 0.99):.0f}")
    print(f"start_skew_p50_ms: {statistics.median(skews):.0f}")
    print(f"start_skew_p99_ms: {_pct(skews, 0.99):.0f}")
    print(f"start_skew_max_ms: {max(skews):.0f}")
    print(f"uncorrected_skew_ms: {uncorrected}")
    print(f"skew_ratio: {_pct(skews, 0.99) / max(uncorrected, 1):.3f}")
    print(f"played: {len(errors)}")
    print(f"missing: {missing}")


def main() -> None:
    """Run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--broadcasts", type=int, default=100)
    parser.add_argument("--gap", type=int, default=3, help="seconds between scheduled broadcasts")
    parser.add_argument("--offset-ms", type=int, default=3000, help="simulated clock offsets, ± this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speakerctl-bench-") as tmp:
        root = Path(tmp)
        bench_plan(root, args.schedules)
        asyncio.run(bench_fleet(root, args.broadcasts, args.gap, args.offset_ms))


if __name__ == "__main__":
    main()
