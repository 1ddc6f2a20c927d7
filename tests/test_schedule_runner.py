"""The runner over a real book, SQLite and PostgreSQL: misfires, pushes ahead, jobs surviving a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from speakerctl.clock import FixedClock, SystemClock
from speakerctl.config import Settings
from speakerctl.protocol import Priority
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.broadcasts import ScheduledBroadcast, ScheduledRelay
from speakerctl.scheduler.model import Relay, Run, RunState, Schedule
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.scheduler.runner import ScheduleRunner


class Sent:
    """Records the broadcast requests and stops a runner sends."""

    def __init__(self) -> None:
        self.requests: list[ScheduledBroadcast] = []
        self.relays: list[ScheduledRelay] = []
        self.stops: list[str] = []
        self.stopped: dict[str, str] = {}
        """Broadcasts an operator stopped, and by whom."""

    async def broadcast(self, request: ScheduledBroadcast) -> None:
        self.requests.append(request)

    async def relay(self, request: ScheduledRelay) -> None:
        self.relays.append(request)

    async def stop(self, broadcast_id: str) -> None:
        self.stops.append(broadcast_id)

    async def stopped_by(self, broadcast_id: str) -> str | None:
        return self.stopped.get(broadcast_id)


def _settings(tmp_path: Path, db_url: str, **kw: object) -> Settings:
    options = {"schedule_lead_s": 10, "database_url": db_url} | kw
    return Settings(data_dir=tmp_path, **options)  # type: ignore[arg-type]


def _runner(
    tmp_path: Path, db_url: str, clock: FixedClock | SystemClock, sent: Sent, **kw: object
) -> ScheduleRunner:
    settings = _settings(tmp_path, db_url, **kw)
    return ScheduleRunner(ScheduleBook.open(settings.db_url), settings, clock, sent)


DAILY_5AM = Rule(Kind.DAILY, times=(time(5),))
FIVE_AM = datetime(2027, 1, 3, 22, 0, tzinfo=UTC)  # 05:00 on 4 January in Vietnam


async def test_on_time_firing_sends_with_the_air_time_as_start(tmp_path: Path, db_url: str) -> None:
    sent, clock = Sent(), FixedClock(FIVE_AM - timedelta(seconds=10))
    runner = _runner(tmp_path, db_url, clock, sent, schedule_horizon_h=0)
    runner.book.add(Schedule("sch-a", 1, ("st-ke-sach",), DAILY_5AM, window_s=600))
    run = await runner.fire("sch-a")  # not running: the broadcast is sent before fire returns
    assert run is not None and run.state is RunState.AIRED
    assert sent.requests[0].start_at == FIVE_AM
    assert sent.requests[0].expires_at == FIVE_AM + timedelta(seconds=600)
    assert await runner.fire("sch-a") is None  # a duplicate firing sends nothing more
    assert len(sent.requests) == 1


async def test_late_within_the_window_airs_late_and_misses_are_coalesced(tmp_path: Path, db_url: str) -> None:
    sent, clock = Sent(), FixedClock(FIVE_AM + timedelta(minutes=5))
    runner = _runner(tmp_path, db_url, clock, sent)
    created = FIVE_AM - timedelta(days=10)
    runner.book.add(Schedule("sch-a", 1, ("st-ke-sach",), DAILY_5AM, window_s=900, created_at=created))
    runner.book.record(Run("sch-a", FIVE_AM - timedelta(days=3), RunState.AIRED, "bc-x", "", created))
    run = await runner.fire("sch-a")
    assert run is not None and run.state is RunState.LATE and "aired 310 s late" in run.detail
    assert sent.requests[0].start_at == clock.now() + timedelta(seconds=10)
    states = [(r.fire_at, r.state) for r in runner.book.runs("sch-a")]
    # Two days down: one coalesced 'missed' record for both, then the late one.
    assert states[1:] == [(FIVE_AM - timedelta(days=1), RunState.MISSED), (FIVE_AM, RunState.LATE)]
    assert "2 missed" in runner.book.runs("sch-a")[1].detail


async def test_occurrences_pushed_ahead_that_passed_while_down_are_aired_not_missed(
    tmp_path: Path, db_url: str
) -> None:
    """They played from the clusters' caches: a restart must not overwrite their runs as missed."""
    sent, clock = Sent(), FixedClock(FIVE_AM + timedelta(minutes=5))
    runner = _runner(tmp_path, db_url, clock, sent)
    created = FIVE_AM - timedelta(days=10)
    runner.book.add(Schedule("sch-a", 1, ("st-ke-sach",), DAILY_5AM, window_s=900, created_at=created))
    runner.book.record(Run("sch-a", FIVE_AM - timedelta(days=3), RunState.AIRED, "bc-x", "", created))
    for days, bid in ((2, "bc-2"), (1, "bc-1")):
        runner.book.record(Run("sch-a", FIVE_AM - timedelta(days=days), RunState.PUSHED, bid, "", created))
    sent.stopped["bc-2"] = "lan.ke-sach"
    await runner.fire("sch-a")
    runs = {r.fire_at: r for r in runner.book.runs("sch-a")}
    assert runs[FIVE_AM - timedelta(days=2)].state is RunState.CANCELLED
    yesterday = runs[FIVE_AM - timedelta(days=1)]
    assert (yesterday.state, yesterday.broadcast_id) == (RunState.AIRED, "bc-1")
    assert runs[FIVE_AM].state is RunState.LATE
    assert [r.state for r in runs.values()].count(RunState.MISSED) == 0


async def test_outside_the_window_it_is_missed_and_never_airs_hours_late(tmp_path: Path, db_url: str) -> None:
    sent, clock = Sent(), FixedClock(FIVE_AM + timedelta(hours=3))
    runner = _runner(tmp_path, db_url, clock, sent)
    created = FIVE_AM - timedelta(hours=1)
    runner.book.add(Schedule("sch-a", 1, ("st-ke-sach",), DAILY_5AM, window_s=900, created_at=created))
    run = await runner.fire("sch-a")
    assert run is not None and run.state is RunState.MISSED and "past its 900 s window" in run.detail
    assert sent.requests == []


async def test_push_sends_the_next_day_once_with_start_times_and_firing_marks_them_aired(
    tmp_path: Path, db_url: str
) -> None:
    sent, clock = Sent(), FixedClock(FIVE_AM - timedelta(hours=1))
    runner = _runner(tmp_path, db_url, clock, sent, schedule_horizon_h=24, quiet_hours="21:00-05:30=30")
    rule = Rule(Kind.DAILY, times=(time(5), time(17)))
    runner.book.add(Schedule("sch-a", 1, ("st-ke-sach",), rule, priority=Priority.PRIORITY))
    pushed = await runner.push()  # not running: each broadcast is sent before push returns
    assert [r.fire_at for r in pushed] == [FIVE_AM, FIVE_AM + timedelta(hours=12)]
    assert [r.start_at for r in sent.requests] == [FIVE_AM, FIVE_AM + timedelta(hours=12)]
    assert [r.volume for r in sent.requests] == [30, None]  # 05:00 is in the quiet hours, 17:00 is not
    assert await runner.push() == []
    clock.advance(timedelta(minutes=59, seconds=55))
    run = await runner.fire("sch-a")
    assert run is not None and run.state is RunState.AIRED and run.broadcast_id == pushed[0].broadcast_id
    assert len(sent.requests) == 2
    sent.stopped[pushed[1].broadcast_id] = "lan"  # `broadcast stop` before its air time
    clock.advance(timedelta(hours=12))
    run = await runner.fire("sch-a")
    assert run is not None and (run.state, run.detail) == (RunState.CANCELLED, "stopped by lan")


async def test_apscheduler_job_survives_a_restart_and_fires(tmp_path: Path, db_url: str) -> None:
    """The job lives in the SQLAlchemy job store: a second runner on the same database fires it."""
    sent = Sent()
    # Far enough ahead that the first runner starts and stops before the job fires, however slowly a busy
    # machine starts it (3 s was not: it fired, or was missed, inside the first runner).
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    first = _runner(tmp_path, db_url, SystemClock(), sent, schedule_horizon_h=0, schedule_lead_s=1)
    first.book.add(Schedule("sch-a", 1, ("st-ke-sach",), Rule(Kind.AT, at=at), window_s=60))
    async with first.running():
        assert first.next_fire("sch-a") == at - timedelta(seconds=1)
    assert sent.requests == []
    second = _runner(tmp_path, db_url, SystemClock(), sent, schedule_horizon_h=0, schedule_lead_s=1)
    async with second.running(), asyncio.timeout(60):
        runs = await second.wait_for_runs("sch-a")
    assert [r.start_at for r in sent.requests] == [at]
    assert [r.state for r in runs] == [RunState.AIRED]


async def test_pause_and_remove_cancel_broadcasts_already_pushed(tmp_path: Path, db_url: str) -> None:
    sent = Sent()
    runner = _runner(tmp_path, db_url, SystemClock(), sent, schedule_horizon_h=24)
    soon = datetime.now(UTC) + timedelta(hours=1)
    schedule = runner.book.add(Schedule("sch-a", 1, ("st-ke-sach",), Rule(Kind.AT, at=soon)))
    async with runner.running():
        await runner.push()
        runner.book.save(schedule.bumped(paused=True))
        await runner.sync()
        assert runner.next_fire("sch-a") is None
    assert sent.stops == [sent.requests[0].broadcast_id]
    assert [r.state for r in runner.book.runs("sch-a")] == [RunState.CANCELLED]


async def test_a_late_relay_starts_now_and_still_ends_with_its_programme(tmp_path: Path, db_url: str) -> None:
    sent, clock = Sent(), FixedClock(FIVE_AM + timedelta(minutes=10))
    runner = _runner(tmp_path, db_url, clock, sent, schedule_horizon_h=24)
    relay = Relay("http://127.0.0.1:9/vov1.ogg", 1800)
    runner.book.add(Schedule("sch-r", 0, ("st-ke-sach",), DAILY_5AM, window_s=900, relay=relay))
    assert await runner.push() == []  # live: nothing is sent ahead
    run = await runner.fire("sch-r")
    assert run is not None and run.state is RunState.LATE and sent.requests == []
    (request,) = sent.relays
    assert (request.url, request.start_at, request.duration_s) == (relay.url, clock.now(), 1200.0)
    assert runner.book.get("sch-r").relay == relay
