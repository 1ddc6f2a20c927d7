"""A controller process killed with SIGKILL at each phase of a broadcast; `resume` in a new process ends it.

Phases up to the upload are reached through the test hook (`controller/pause.py`); `mid-play` by
watching the store the killed process writes. After the resume: every cluster played once and has a
`finished` record, the broadcast is closed, and no `failed_to_sound` alert comes of it. One broker and
one fleet serve every phase (each phase broadcasts a bulletin of its own).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from test_faults import ZONE, random_bulletin, trusted_fleet
from waiting import SAFETY_NET_S, wait_until

from simulator.faults import FleetRunner
from simulator.fleet import Fleet
from speakerctl.app.context import open_store
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.health import failed_to_sound
from speakerctl.controller.pause import PAUSE_AT
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory
from speakerctl.protocol.lifecycle import FINISHED, PLAYING
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState, Schedule, new_schedule_id
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.store import BroadcastState, Store

HOOKED = ("before-publish", "mid-publish", "after-accept", "mid-upload")
PROCESS_S = 120.0
"""Safety net for a controller process to end: it starts Python, connects and follows a broadcast."""
ENV = {
    "SPEAKERCTL_ACCEPT_WINDOW_S": "1",
    "SPEAKERCTL_BROADCAST_TIMEOUT_S": "40",
    "SPEAKERCTL_SCHEDULE_LEAD_S": "1",
}


@dataclass
class World:
    """The broker, the controller's settings and store, and the running fleet every phase shares."""

    settings: Settings
    store: Store
    fleet: Fleet
    communes: tuple[str, ...]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, mosquitto_binary: str) -> AsyncIterator[World]:
    """Mosquitto with persistence, and the district's 32 clusters online."""
    root = tmp_path_factory.mktemp("kill")
    config = MosquittoConfig(port=free_port(), persistence=True)
    with MosquittoProcess(config, root / "mosquitto", binary=mosquitto_binary) as broker:
        settings = Settings(data_dir=root / "ctl", broker=broker.url, accept_window_s=1)
        fleet = trusted_fleet(settings, root / "fleet", ZONE, time_scale=20, repair_after_s=0.5)
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(SAFETY_NET_S)
            communes = tuple(z.id for z in load_inventory().children(ZONE))
            yield World(settings, open_store(settings), fleet, communes)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("phase", [*HOOKED, "mid-play"])
async def test_a_broadcast_killed_at_each_phase_is_finished_by_resume(world: World, phase: str) -> None:
    store, fleet = world.store, world.fleet
    # 40 chunks: more than one upload window, so `mid-upload` has chunks sent and chunks to come;
    # 20 s of play (1 s at the fleet's time scale), so `mid-play` has clusters playing.
    bulletin = random_bulletin(store, world.settings.content_dir, 40 * 16384, duration_ms=20_000)
    shas = {v.sha256 for v in store.bulletins.variants(bulletin)}
    targets = [a for c in world.communes for a in ("--to", c)]  # one command topic per commune
    killed = _speakerctl(world.settings, "broadcast", str(bulletin), *targets, pause=phase)
    try:
        await _reach(phase, killed, store, bulletin)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(SAFETY_NET_S)
        if killed.stdout is not None:
            killed.stdout.close()
    resumed = _speakerctl(world.settings, "resume", "--json")
    assert await asyncio.to_thread(resumed.wait, PROCESS_S) == 0
    (broadcast,) = [b for b in store.broadcasts.latest(100) if b.bulletin_id == bulletin]
    deliveries = store.deliveries.of(broadcast.id)
    assert {d.device_id for d in deliveries} == set(fleet.devices)
    assert all(d.state is FINISHED for d in deliveries), {d.device_id: d.state for d in deliveries}
    assert store.broadcasts.get(broadcast.id).state is BroadcastState.COMPLETE
    assert failed_to_sound(deliveries) == []
    played = {k: sum(s in shas for s in d.output.played) for k, d in fleet.devices.items()}
    assert played == dict.fromkeys(fleet.devices, 1)


def _speakerctl(settings: Settings, *args: str, pause: str = "") -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(settings.data_dir)]
    env = os.environ | ENV | {PAUSE_AT: pause}
    out = subprocess.PIPE if pause in HOOKED else subprocess.DEVNULL
    return subprocess.Popen([*cmd, "--broker", settings.broker, *args], stdout=out, text=True, env=env)


async def _reach(phase: str, process: subprocess.Popen[str], store: Store, bulletin: int) -> None:
    """Return once the controller process is at `phase`."""
    if phase in HOOKED:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), PROCESS_S)
        assert line.strip() == f"paused at {phase}"
        return
    await wait_until(lambda: _sounded(store, bulletin), f"the broadcast {phase}", PROCESS_S)


def _sounded(store: Store, bulletin: int) -> bool:
    """Whether some cluster is recorded playing (or done playing) the bulletin."""
    found = [b for b in store.broadcasts.latest(100) if b.bulletin_id == bulletin]
    counts = store.deliveries.counts(found[0].id) if found else {}
    return bool(counts.get(PLAYING) or counts.get(FINISHED))


SERIES = 4
GAP_S = 4


@pytest.mark.asyncio(loop_scope="module")
async def test_serve_killed_during_a_pushed_series_resumes_it_without_sending_again(world: World) -> None:
    store, fleet, settings = world.store, world.fleet, world.settings
    bulletin = random_bulletin(store, settings.content_dir, 4 * 16384, duration_ms=20_000)
    shas = {v.sha256 for v in store.bulletins.variants(bulletin)}
    book = ScheduleBook(store)
    now = datetime.now(UTC)
    rule = Rule(Kind.AT, at=now + timedelta(seconds=15), repeat=SERIES, gap_s=GAP_S)
    schedule = book.add(Schedule(new_schedule_id(), bulletin, (ZONE,), rule, created_at=now))
    first = _speakerctl(settings, "serve")
    try:
        # Killed once the first airing is sounding and the later ones are pushed, still to come.
        await wait_until(lambda: _series_at_first_airing(book, store, schedule.id), "the first airing", 120)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(SAFETY_NET_S)
    duplicates = sum(d.agent.counters.duplicates for d in fleet.devices.values())
    second = _speakerctl(settings, "serve")
    try:
        await wait_until(lambda: _series_closed(book, store, schedule.id), "the series to end", PROCESS_S)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, SAFETY_NET_S)
    runs = book.runs(schedule.id)
    assert [r.state for r in runs] == [RunState.AIRED] * SERIES
    for run in runs:
        deliveries = store.deliveries.of(run.broadcast_id)
        assert {d.device_id for d in deliveries} == set(fleet.devices)
        assert all(d.state is FINISHED for d in deliveries), {d.device_id: d.state for d in deliveries}
        assert store.broadcasts.get(run.broadcast_id).state is BroadcastState.COMPLETE
        assert failed_to_sound(deliveries) == []
    played = {k: sum(s in shas for s in d.output.played) for k, d in fleet.devices.items()}
    assert played == dict.fromkeys(fleet.devices, SERIES)
    # Its own pushed airings are followed through its persistent session: no play is sent again.
    assert sum(d.agent.counters.duplicates for d in fleet.devices.values()) == duplicates


def _series_at_first_airing(book: ScheduleBook, store: Store, schedule_id: str) -> bool:
    runs = book.runs(schedule_id)
    if len(runs) < SERIES or not all(r.broadcast_id for r in runs):
        return False
    counts = [_counts(store, r.broadcast_id) for r in runs]
    sounding = bool(counts[0].get(PLAYING) or counts[0].get(FINISHED))
    return sounding and not any(c.get(PLAYING) or c.get(FINISHED) for c in counts[1:])


def _counts(store: Store, broadcast_id: str) -> dict[str, int]:
    """A broadcast's deliveries per state; none yet if its run is recorded before it is."""
    try:
        return store.deliveries.counts(broadcast_id)
    except NotFound:
        return {}


def _series_closed(book: ScheduleBook, store: Store, schedule_id: str) -> bool:
    runs = book.runs(schedule_id)
    closed = all(store.broadcasts.get(r.broadcast_id).state is not BroadcastState.RUNNING for r in runs)
    return len(runs) == SERIES and all(r.state is RunState.AIRED for r in runs) and closed
