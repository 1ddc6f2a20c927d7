"""The device side without a broker: the content cache and the player's priority rules."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from waiting import Observed

from devices.cache import ContentCache
from devices.player import Job, Player
from devices.replay import LatestEvents, SeenIds
from simulator.hardware import SimAmplifier, SimClock, SimOutput
from speakerctl.errors import ContentError
from speakerctl.protocol import (
    Command,
    ContentRef,
    DeliveryEvent,
    DeliveryState,
    Play,
    Priority,
    Reason,
    chunks,
    codec,
)


def _ref(data: bytes, duration_ms: int = 1000) -> ContentRef:
    return ContentRef(hashlib.sha256(data).hexdigest(), len(data), "opus", duration_ms)


def test_cache_reassembles_out_of_order_chunks_and_verifies(tmp_path: Path) -> None:
    data = bytes(range(256)) * 300  # 76,800 bytes: 5 chunks, the last one short
    cache = ContentCache(tmp_path)
    download = cache.begin(_ref(data))
    frames = list(chunks.split(data))
    for frame in reversed(frames[1:]):
        download.write(chunks.unpack(frame))
    assert download.missing == [0]
    assert download.write(chunks.unpack(frames[1])) is False  # duplicate
    download.write(chunks.unpack(frames[0]))
    path = cache.finish(download)
    assert path.read_bytes() == data
    assert cache.has(_ref(data).sha256)
    assert not list(tmp_path.glob("*.part"))


def test_cache_rejects_content_whose_hash_does_not_match(tmp_path: Path) -> None:
    data = b"x" * 1000
    wrong = ContentRef("0" * 64, len(data), "opus", 100)
    cache = ContentCache(tmp_path)
    download = cache.begin(wrong)
    download.write(chunks.unpack(chunks.pack(0, 1, data)))
    with pytest.raises(ContentError, match="sha256"):
        cache.finish(download)
    assert not cache.has(wrong.sha256)
    assert not list(tmp_path.iterdir())


def test_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, max_bytes=2500)
    items = [bytes([i]) * 1000 for i in range(3)]
    for data in items:
        download = cache.begin(_ref(data))
        download.write(chunks.unpack(chunks.pack(0, 1, data)))
        cache.finish(download)
    assert not cache.has(_ref(items[0]).sha256)
    assert cache.has(_ref(items[2]).sha256)


def _job(tmp_path: Path, name: str, priority: Priority, duration_ms: int = 300) -> Job:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(name.encode())
    ref = _ref(name.encode(), duration_ms)
    now = SimClock().now_ms()
    command = Command(f"m-{name}", now, now + 60_000, priority, Play(name, (ref,)))
    return Job(command, command.body, ref, path)  # type: ignore[arg-type]


class Recorder:
    """Collects (broadcast, state, reason) as the player emits them; tests wait on what it saw."""

    def __init__(self) -> None:
        self.seen: Observed[tuple[str, DeliveryState, Reason | None]] = Observed()

    @property
    def events(self) -> list[tuple[str, DeliveryState, Reason | None]]:
        return self.seen.items

    def __call__(self, job: Job, state: DeliveryState, reason: Reason | None, detail: str) -> None:
        self.seen.add((job.play.broadcast_id, state, reason))

    async def wait_for(self, broadcast_id: str, state: DeliveryState) -> None:
        """Return once the player emitted `state` for the broadcast."""
        await self.seen.wait_for(
            lambda events: any(e[:2] == (broadcast_id, state) for e in events), f"{broadcast_id} {state}"
        )


@contextlib.asynccontextmanager
async def _running(player: Player) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(player.run())
        yield
        task.cancel()


async def test_emergency_preempts_normal(tmp_path: Path) -> None:
    recorder = Recorder()
    output = SimOutput(time_scale=1.0)
    player = Player(output, SimAmplifier(), SimClock(), recorder)
    async with _running(player):
        player.submit(_job(tmp_path, "routine", Priority.NORMAL, 2000))
        await recorder.wait_for("routine", DeliveryState.PLAYING)
        player.submit(_job(tmp_path, "storm", Priority.EMERGENCY, 200))
        await recorder.wait_for("storm", DeliveryState.FINISHED)
    assert ("routine", DeliveryState.FAILED, Reason.PREEMPTED) in recorder.events
    assert ("storm", DeliveryState.FINISHED, None) in recorder.events
    assert output.played == ["storm"]


async def test_same_level_is_first_come_first_served(tmp_path: Path) -> None:
    recorder = Recorder()
    player = Player(SimOutput(), SimAmplifier(), SimClock(), recorder)
    for name in ("first", "second", "third"):
        player.submit(_job(tmp_path, name, Priority.PRIORITY, 50))
    async with _running(player):
        await recorder.seen.wait_for(
            lambda events: sum(s is DeliveryState.FINISHED for _, s, _ in events) == 3, "three finished"
        )
    finished = [b for b, s, _ in recorder.events if s is DeliveryState.FINISHED]
    assert finished == ["first", "second", "third"]


async def test_newest_emergency_wins(tmp_path: Path) -> None:
    recorder = Recorder()
    player = Player(SimOutput(), SimAmplifier(), SimClock(), recorder)
    async with _running(player):
        player.submit(_job(tmp_path, "flood", Priority.EMERGENCY, 1000))
        await recorder.wait_for("flood", DeliveryState.PLAYING)
        player.submit(_job(tmp_path, "update", Priority.EMERGENCY, 100))
        await recorder.wait_for("update", DeliveryState.FINISHED)
    assert ("flood", DeliveryState.FAILED, Reason.PREEMPTED) in recorder.events
    assert ("update", DeliveryState.FINISHED, None) in recorder.events


async def test_amplifier_fault_fails_instead_of_playing_silence(tmp_path: Path) -> None:
    recorder = Recorder()
    output = SimOutput()
    player = Player(output, SimAmplifier("fault"), SimClock(), recorder)
    player.submit(_job(tmp_path, "news", Priority.NORMAL, 50))
    async with _running(player):
        await recorder.wait_for("news", DeliveryState.FAILED)
    assert recorder.events == [("news", DeliveryState.FAILED, Reason.AMPLIFIER_FAULT)]
    assert output.played == []


async def test_a_later_start_does_not_hold_back_an_immediate_broadcast(tmp_path: Path) -> None:
    recorder = Recorder()
    player = Player(SimOutput(), SimAmplifier(), SimClock(), recorder)
    later = _job(tmp_path, "afternoon", Priority.NORMAL, 50)
    start = SimClock().now_ms() + 3_600_000
    later = Job(
        later.command, Play("afternoon", later.play.variants, start_at_ms=start), later.ref, later.path
    )
    player.submit(later)
    player.submit(_job(tmp_path, "now", Priority.NORMAL, 50))
    async with _running(player):
        await recorder.wait_for("now", DeliveryState.FINISHED)
    assert recorder.events == [
        ("now", DeliveryState.PLAYING, None),
        ("now", DeliveryState.FINISHED, None),
    ]


def test_latest_events_survive_a_reboot_bounded_and_a_torn_line_is_not_repeated(tmp_path: Path) -> None:
    path = tmp_path / "latest.txt"
    events = LatestEvents(path, size=3)
    for i in range(10):  # past twice the window: the file is compacted on the way
        state = DeliveryState.FINISHED if i % 2 else DeliveryState.PLAYING
        events.put(f"bc{i % 5}", codec.encode(DeliveryEvent(f"m{i}", "dev", i, f"bc{i % 5}", state)))
    with path.open("a") as file:
        file.write('bc9\t{"v":1,"type":"ev')  # a power cut mid-append
    rebooted = LatestEvents(path, size=3)
    assert [rebooted.get(f"bc{i}") is not None for i in range(5)] == [False, False, True, True, True]
    last = codec.decode_event(rebooted.get("bc4") or b"")
    assert isinstance(last, DeliveryEvent) and (last.msg_id, last.state) == ("m9", DeliveryState.FINISHED)
    assert rebooted.get("bc9") is None
    assert len(path.read_text().splitlines()) <= 2 * 3 + 1


def test_seen_ids_keep_their_file_format(tmp_path: Path) -> None:
    path = tmp_path / "seen.txt"
    path.write_text("a\nb\n")
    seen = SeenIds(path, size=2)
    seen.add("c")
    assert "a" not in seen and "b" in seen and "c" in SeenIds(path, size=2)
    assert path.read_text() == "a\nb\nc\n"


async def _ends_after_one_cancel(task: asyncio.Task[None]) -> bool:
    """Whether `task` ended once cancelled (cancelled again, and awaited, if it did not)."""
    done, _ = await asyncio.wait({task}, timeout=5)
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1)
    return bool(done)


async def test_a_player_stopped_as_its_wake_up_comes_does_not_run_on(tmp_path: Path) -> None:
    # Python 3.11's asyncio.wait_for swallowed this cancel: a power-cut cluster played on for ever
    # and bench/chaos.py's power-loss scenario waited for it (its TaskGroup cancels children once).
    player = Player(SimOutput(), SimAmplifier(), SimClock(), Recorder())
    later = _job(tmp_path, "later", Priority.NORMAL)
    later.start_ms = SimClock().now_ms() + 60_000  # the player waits for it with a timeout
    player.submit(later)
    task = asyncio.create_task(player.run())
    await asyncio.sleep(0)  # one turn of the loop: the player is waiting
    player.submit(_job(tmp_path, "now", Priority.NORMAL))  # wakes it...
    await asyncio.sleep(0)
    task.cancel()  # ...as the power goes
    assert await _ends_after_one_cancel(task)


async def test_a_player_stopped_as_it_stops_a_job_does_not_run_on(tmp_path: Path) -> None:
    recorder = Recorder()
    player = Player(SimOutput(), SimAmplifier(), SimClock(), recorder)
    player.submit(_job(tmp_path, "long", Priority.NORMAL, 60_000))
    task = asyncio.create_task(player.run())
    await recorder.wait_for("long", DeliveryState.PLAYING)
    player.stop("long")  # the controller's stop...
    await asyncio.sleep(0)
    task.cancel()  # ...and a power cut, in the same instant
    assert await _ends_after_one_cancel(task)


class _StoppedClock(SimClock):
    """A device clock that reads `now_ms`: the moment a late timer's callback runs, set by the test."""

    def __init__(self, now_ms: int) -> None:
        super().__init__()
        self.at_ms = now_ms

    def now_ms(self) -> int:
        return self.at_ms


async def test_a_late_start_timer_on_a_shared_loop_counts_from_its_start_never_before() -> None:
    # The timer of a start at `start` ran 80.6 ms late (the device clock, in whole ms, reads
    # start + 80): counted back from its lateness, rounded, that is start - 1, which the player
    # then found too early for the job and dropped, noting the late `now` (up to 200 ms late in
    # a simulator process of 1,000 clusters) instead.
    start = 1_796_000_000_000
    player = Player(SimOutput(), SimAmplifier(), _StoppedClock(start + 80), Recorder(), shared_loop=True)
    player._ring(asyncio.get_running_loop().time() - 0.0806, start)
    assert player._rang_ms == start
    alone = Player(SimOutput(), SimAmplifier(), _StoppedClock(start + 80), Recorder())
    alone._ring(asyncio.get_running_loop().time() - 0.0806, start)
    assert alone._rang_ms == start + 80  # a unit with a loop of its own was late itself
