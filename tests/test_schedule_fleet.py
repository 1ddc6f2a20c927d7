"""Schedules against the simulated fleet: airs on time and together, survives a restart, plays offline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from waiting import SAFETY_NET_S, wait_until

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import generate_tone
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.link import Backoff
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.clocks import ClockKeeper
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState, Schedule
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.scheduler.runner import ScheduleRunner
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BulletinInfo, Store

COMMUNE = "st-ke-sach"  # a district: 32 clusters, mixed models
MAX_SKEW_MS = 400
LATE_MS = 2_000
"""How late a start may be against the wall clock: with the machine's other core busy the one event loop of
the simulated fleet can lag by a second, which all its clusters share, so their skew stays within
MAX_SKEW_MS. Exact start timing is measured in bench/fanout.py, not here."""


@dataclass
class Rig:
    """A fleet with clock offsets on a fresh broker, and what a controller needs."""

    settings: Settings
    fleet: Fleet
    store: Store
    routine: BulletinInfo
    alert: BulletinInfo

    @asynccontextmanager
    async def controller(self, horizon_h: float = 24.0) -> AsyncIterator[tuple[Controller, ScheduleRunner]]:
        """A controller and its schedule runner (pushing `horizon_h` ahead), running."""
        controller = Controller(replace(self.settings, schedule_horizon_h=horizon_h), self.store)
        book = ScheduleBook(self.store)
        async with controller.running(), runtime.scheduled(controller, book, sync_every_s=0.5) as runner:
            yield controller, runner


@pytest.fixture
def broker_url() -> Iterator[str]:
    """A fresh embedded broker: clusters keep persistent sessions, which must not leak between tests."""
    with EmbeddedBroker() as broker:
        yield broker.url


def _rig_settings(tmp_path: Path, broker_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "controller",
        broker=broker_url,
        accept_window_s=1.0,
        broadcast_timeout_s=20,
        schedule_lead_s=5.0,
        emergency_volume=95,
    )


async def _rig(tmp_path: Path, broker_url: str) -> tuple[Rig, Fleet]:
    settings = _rig_settings(tmp_path, broker_url)
    inventory = load_inventory()
    ids = {d.id for d in inventory.devices_under(COMMUNE)}
    load_or_create_signer(settings.keys_dir)  # provisioning: the clusters trust the controller's key
    options = FleetOptions(
        root=tmp_path / "fleet",
        time_scale=1.0,
        max_clock_offset_ms=3000,
        seed=7,
        trust_file=trusted_path(settings.keys_dir),
    )
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    fleet.devices = {k: v for k, v in fleet.devices.items() if k in ids}
    store = open_store(settings)
    routine, _ = import_bulletin(
        store, settings, SystemClock(), generate_tone(3.0, path=tmp_path / "r.wav"), "Bản tin sáng"
    )
    alert, _ = import_bulletin(
        store,
        settings,
        SystemClock(),
        generate_tone(1.0, freq_hz=880.0, path=tmp_path / "a.wav"),
        "Cảnh báo bão",
    )
    return Rig(settings, fleet, store, routine, alert), fleet


@pytest.fixture
async def rig(broker_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    """The fleet of one district, running."""
    the_rig, fleet = await _rig(tmp_path, broker_url)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        yield the_rig
        task.cancel()


def _soon(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def _daily_at(at: datetime) -> Rule:
    local = at.astimezone(Rule(Kind.DAILY, times=(at.time(),)).zone)
    return Rule(Kind.DAILY, times=(local.time(),))


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """The store and the players have no event to wait on: poll, with a generous safety net."""
    await wait_until(check, what, timeout=max(timeout, SAFETY_NET_S))


def _finished(store: Store, broadcast_id: str) -> int:
    try:
        return store.deliveries.counts(broadcast_id).get("finished", 0)
    except NotFound:  # the run is recorded a moment before the controller records its broadcast
        return 0


def _starts(rig: Rig) -> list[int]:
    return [d.output.started_ms[-1] for d in rig.fleet.devices.values() if d.output.started_ms]


async def test_a_daily_schedule_airs_on_time_and_the_commune_starts_together(rig: Rig) -> None:
    at = _soon(10)
    book = ScheduleBook.open(rig.settings.db_url)
    book.add(Schedule("sch-morning", rig.routine.id, (COMMUNE,), _daily_at(at)))
    n = len(rig.fleet.devices)
    async with rig.controller() as (controller, _):
        await _until(lambda: bool(book.runs("sch-morning")), 5, "the push")
        bid = book.runs("sch-morning")[0].broadcast_id
        await _until(lambda: _finished(controller.store, bid) == n, 20, "every cluster to play")
        await _until(
            lambda: book.runs("sch-morning")[0].state is RunState.AIRED, 5, "the run to be marked aired"
        )
    starts = _starts(rig)
    at_ms = int(at.timestamp() * 1000)
    assert len(starts) == n >= 3
    assert max(starts) - min(starts) < MAX_SKEW_MS, starts
    assert all(-MAX_SKEW_MS < s - at_ms < LATE_MS for s in starts), [s - at_ms for s in starts]
    assert {d.clock.offset_ms for d in rig.fleet.devices.values()} != {0}  # the clocks really disagree


async def test_the_controller_restarts_in_between_and_the_schedule_still_fires(rig: Rig) -> None:
    book = ScheduleBook.open(rig.settings.db_url)
    async with rig.controller(horizon_h=0) as (_, runner):
        at = _soon(10)
        book.add(Schedule("sch-noon", rig.routine.id, (COMMUNE,), Rule(Kind.AT, at=at)))
        await _until(
            lambda: runner.next_fire("sch-noon") is not None, 5, "the job in the SQLAlchemy job store"
        )
    assert book.runs("sch-noon") == []
    async with rig.controller(horizon_h=0) as (controller, _):
        await _until(lambda: bool(book.runs("sch-noon")), 15, "the job to fire")
        run = book.runs("sch-noon")[0]
        # On time, or (if this slow start-up ran past its firing time) late but inside its window.
        assert run.state in (RunState.AIRED, RunState.LATE), run
        n = len(rig.fleet.devices)
        await _until(lambda: _finished(controller.store, run.broadcast_id) == n, 20, "every cluster to play")
    if run.state is RunState.AIRED:
        # Together only when sent ahead of its time: a late run's start is already past, so each cluster
        # starts as soon as it holds the audio, and a loaded machine spreads those uploads over seconds.
        assert max(_starts(rig)) - min(_starts(rig)) < MAX_SKEW_MS


async def test_a_cluster_that_loses_its_link_before_air_time_plays_from_its_cache_then_reports(
    rig: Rig,
) -> None:
    at = _soon(12)
    book = ScheduleBook.open(rig.settings.db_url)
    book.add(Schedule("sch-evening", rig.routine.id, (COMMUNE,), Rule(Kind.AT, at=at)))
    victim = next(iter(rig.fleet.devices.values()))
    dev = victim.agent.config.device_id
    async with rig.controller() as (controller, _):
        await _until(lambda: bool(book.runs("sch-evening")), 5, "the push")
        bid = book.runs("sch-evening")[0].broadcast_id

        def ready() -> bool:
            try:
                deliveries = controller.store.deliveries.of(bid)
            except NotFound:  # as in _finished: the run is recorded a moment before its broadcast
                return False
            return any(d.device_id == dev and d.state == "content_ready" for d in deliveries)

        await _until(ready, 5, "the content to reach the victim")
        link = victim.agent.link
        address, link.address = link.address, BrokerAddress.parse("mqtt://127.0.0.1:9")
        link._backoff = Backoff(0.2, 0.5)
        link.drop()
        await asyncio.wait_for(link.disconnected.wait(), SAFETY_NET_S)
        await _until(lambda: bool(victim.output.played), 20, "the victim to play offline")
        late_ms = victim.output.started_ms[0] - at.timestamp() * 1000
        assert -MAX_SKEW_MS < late_ms < LATE_MS  # on time, offline
        assert not link.connected.is_set()
        assert _finished(controller.store, bid) < len(rig.fleet.devices)
        link.address = address
        await _until(
            lambda: _finished(controller.store, bid) == len(rig.fleet.devices), 15, "the late report"
        )


async def test_an_emergency_preempts_a_routine_bulletin_which_then_resumes(rig: Rig) -> None:
    # Long enough that the alert's upload lands while the routine still plays, however loaded the machine:
    # a 3 s routine could end on some clusters first, and then nothing was preempted there.
    long_routine, _ = import_bulletin(
        rig.store,
        rig.settings,
        SystemClock(),
        generate_tone(12.0, path=rig.settings.data_dir / "long.wav"),
        "Bản tin dài",
    )
    async with rig.controller() as (controller, _):
        routine = BroadcastRequest(long_routine.id, (COMMUNE,), on_preempt=PreemptPolicy.RESUME)
        alert = BroadcastRequest(
            rig.alert.id, (COMMUNE,), Priority.EMERGENCY, volume=rig.settings.emergency_volume
        )

        async def once_everyone_plays() -> object:
            n = len(rig.fleet.devices)
            await _until(
                lambda: sum(len(d.output.started_ms) == 1 for d in rig.fleet.devices.values()) == n,
                10,
                "the routine to play",
            )
            return await controller.broadcast(alert)

        first, second = await asyncio.gather(controller.broadcast(routine), once_everyone_plays())
    assert first.complete and second.complete  # type: ignore[attr-defined]
    for device in rig.fleet.devices.values():
        out = device.output
        assert len(out.played) == 2 and out.volumes[1] == 95  # the alert at the emergency volume
        assert out.played[0] != out.played[1]
        assert len(out.started_ms) == 3  # routine, alert, routine resumed


async def test_a_round_of_clock_pings_reaches_every_online_cluster_and_each_samples_it(rig: Rig) -> None:
    """serve's ClockKeeper: one signed ping per online cluster, each a sample of its offset estimate
    (how close the estimate gets is measured by bench/scale.py, not here)."""
    async with rig.controller() as (controller, _):
        await _until(lambda: len(rig.store.devices.all(online=True)) == len(rig.fleet.devices), 30, "online")
        samples = {k: d.agent.offset.samples for k, d in rig.fleet.devices.items()}
        keeper = ClockKeeper(controller.link, controller.signer, rig.store, controller.clock, pings_per_s=500)
        acks = controller.ingestor.counters.acks
        assert await keeper.round() == len(rig.fleet.devices)
        await wait_until(
            lambda: controller.ingestor.counters.acks - acks == len(rig.fleet.devices), "every ping acked"
        )
    assert all(d.agent.offset.samples == samples[k] + 1 for k, d in rig.fleet.devices.items())
    assert sum(d.agent.counters.rejected for d in rig.fleet.devices.values()) == 0
