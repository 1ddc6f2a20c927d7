"""The cluster's player: one sound at a time, the highest priority first, preempting lower ones."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.hardware import Amplifier, AudioOutput, Clock
from speakerctl.protocol import Command, ContentRef, DeliveryState, Play, PreemptPolicy, Priority, Reason

log = logging.getLogger(__name__)
_seq = itertools.count()


@dataclass(slots=True)
class Job:
    """A broadcast this device has content for and will play."""

    command: Command
    play: Play
    ref: ContentRef
    path: Path
    seq: int = field(default_factory=lambda: next(_seq))
    start_ms: int | None = None
    """When to start by this device's clock (start_at corrected for the clock offset); None: start_at."""
    position_ms: int = 0
    """Where playback starts in the content: past 0 once a preempted job resumes."""
    compact: bool = False
    """Taken without `accepted`/`content_ready` (v1.3, content cached): `playing` names the variant."""
    began_ms: int | None = None
    """When its sound began by this device's clock: as its start timer fired, for a timed start."""

    @property
    def rank(self) -> tuple[int, int]:
        """Higher plays first: priority, then first come (or, for emergencies, newest)."""
        return _rank(self.command, self.seq)

    @property
    def broadcast_id(self) -> str:
        """The broadcast this job plays."""
        return self.play.broadcast_id


@dataclass(slots=True)
class LiveJob:
    """A live stream in the queue: `run` plays it until it ends and says why; `ended` hears the end."""

    command: Command
    broadcast_id: str
    run: Callable[[], Coroutine[Any, Any, str]]
    ended: Callable[[str], None]
    seq: int = field(default_factory=lambda: next(_seq))
    start_ms: int | None = None

    @property
    def rank(self) -> tuple[int, int]:
        """Ranked exactly as a bulletin of the same priority."""
        return _rank(self.command, self.seq)


def _rank(command: Command, seq: int) -> tuple[int, int]:
    newer = seq if command.priority is Priority.EMERGENCY else -seq
    return (int(command.priority), newer)


Emit = Callable[[Job, DeliveryState, Reason | None, str], None]
PREEMPTED, STOPPED = "preempted", "stopped"
"""Why a live job ended, when the player ended it (the wire reasons of protocol §18.5)."""


class Player:
    """Arbitrates ready jobs and drives the audio output."""

    def __init__(
        self,
        output: AudioOutput,
        amplifier: Amplifier,
        clock: Clock,
        emit: Emit,
        *,
        shared_loop: bool = False,
    ) -> None:
        self._output = output
        self._shared_loop = shared_loop
        """Simulated, on a loop shared with hundreds of units: a late start timer counts from its due time."""
        self._amplifier = amplifier
        self._clock = clock
        self._emit = emit
        self._ready: list[Job | LiveJob] = []
        self._current: Job | LiveJob | None = None
        self._task: asyncio.Task[Any] | None = None
        self._preempted_by: Job | LiveJob | None = None
        self._wake = asyncio.Event()
        self._rang_ms: int | None = None
        """When the start timer last fired: the start of a timed job, however busy the device is after."""
        self.volume = 70

    @property
    def current(self) -> Job | LiveJob | None:
        """What is playing now."""
        return self._current

    def submit(self, job: Job | LiveJob) -> None:
        """Queue a job; it preempts the current one if it outranks it."""
        self._ready.append(job)
        if self._task is not None and _due(job, self._clock.now_ms()) and self._outranks_current(job):
            self._preempted_by = job
            self._task.cancel()
        self._wake.set()

    def _outranks_current(self, job: Job | LiveJob) -> bool:
        current = self._current
        if current is None or job.rank <= current.rank:
            return False
        return job.command.priority > current.command.priority or job.command.priority is Priority.EMERGENCY

    def stop(self, broadcast_id: str) -> bool:
        """Drop a queued job or stop a playing one; True if there was one."""
        for job in [j for j in self._ready if j.broadcast_id == broadcast_id]:
            self._ready.remove(job)
            if isinstance(job, LiveJob):
                job.ended(STOPPED)
            else:
                self._emit(job, DeliveryState.FAILED, Reason.STOPPED, "stopped by the controller")
            return True
        if self._current is not None and self._current.broadcast_id == broadcast_id:
            self._preempted_by = None
            if self._task is not None:
                self._task.cancel()
            return True
        return False

    async def run(self) -> None:
        """Play jobs forever, best first, each at its start time."""
        while True:
            job = await self._next()
            if job is not None:
                await self._play(job)

    async def _next(self) -> Job | LiveJob | None:
        while not self._ready:
            self._wake.clear()
            await self._wake.wait()
        now = self._clock.now_ms()
        # A queued live stream does not expire: its stall timeout ends it (`stop`).
        for stale in [j for j in self._ready if isinstance(j, Job) and j.command.expired(now)]:
            self._ready.remove(stale)
            self._emit(stale, DeliveryState.EXPIRED, Reason.EXPIRED, "expired before it could play")
        due = [j for j in self._ready if _due(j, now)]
        rang, self._rang_ms = self._rang_ms, None
        if due:
            job = max(due, key=lambda j: j.rank)
            self._ready.remove(job)
            start = _start(job)
            if isinstance(job, Job) and rang is not None and start is not None and start <= rang:
                job.began_ms = rang
            return job
        if self._ready:
            # Nothing is due yet: sleep until the earliest start, or until something new arrives.
            first = min(_start(j) or now for j in self._ready)
            await self._sleep_until(first, now)
        return None

    async def _sleep_until(self, start_ms: int, now_ms: int) -> None:
        """Wait for the start timer or something new. The timer notes the time itself: the work of
        starting follows, and in a simulator hundreds of clusters share the loop as their start comes.
        Not asyncio.wait_for: on Python 3.11 it swallows a cancel that comes as the event is set, and
        the player then outlives its cluster (a power cut that never ends)."""
        self._wake.clear()
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0, start_ms - now_ms) / 1000
        timer = loop.call_at(due, self._ring, due, start_ms)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _ring(self, due: float, start_ms: int) -> None:
        now = self._clock.now_ms()
        if self._shared_loop:  # the others' work held the loop past the due time, not this unit's
            late_ms = round((asyncio.get_running_loop().time() - due) * 1000)
            # Never before the start it was set for: asyncio does not fire a timer early, and a
            # rounding below it made the player drop the stamp and note the late `now` instead (up to
            # 200 ms late in a loop of 1,000 clusters).
            now = max(start_ms, now - max(0, late_ms))
        self._rang_ms = now
        self._wake.set()

    async def _play(self, job: Job | LiveJob) -> None:
        if isinstance(job, LiveJob):
            await self._play_live(job)
            return
        if self._amplifier.state == "fault":
            self._emit(job, DeliveryState.FAILED, Reason.AMPLIFIER_FAULT, "amplifier reports a fault")
            return
        self._current, self._preempted_by = job, None
        volume = job.play.volume if job.play.volume is not None else self.volume
        content = job.ref
        started_ms = self._clock.now_ms()
        if job.began_ms is None:
            job.began_ms = started_ms
        self._task = asyncio.create_task(
            self._output.play(job.path, content.codec, content.duration_ms, volume, offset_ms=job.position_ms)
        )
        self._emit(job, DeliveryState.PLAYING, None, "")
        try:
            await asyncio.shield(self._task)
            self._emit(job, DeliveryState.FINISHED, None, "")
        except asyncio.CancelledError:
            if not self._task.cancelled() or _being_cancelled():
                # The player itself is stopped (a power cut), maybe just as it stopped the job.
                self._task.cancel()
                raise
            self._report_interrupted(job, self._clock.now_ms() - started_ms)
        except Exception as exc:  # the output is hardware: any failure is reported, not fatal
            log.warning("playback of %s failed: %s", job.play.broadcast_id, exc)
            self._emit(job, DeliveryState.FAILED, Reason.PLAYBACK_ERROR, str(exc)[:200])
        finally:
            self._current, self._task = None, None

    async def _play_live(self, job: LiveJob) -> None:
        self._current, self._preempted_by = job, None
        self._task = task = asyncio.create_task(job.run())
        try:
            job.ended(str(await asyncio.shield(task)))
        except asyncio.CancelledError:
            if not task.cancelled():
                task.cancel()
                raise
            job.ended(PREEMPTED if self._preempted_by is not None else STOPPED)
        except Exception as exc:  # the output is hardware: any failure ends the stream, not the player
            log.warning("live stream %s failed: %s", job.broadcast_id, exc)
            job.ended(STOPPED)
        finally:
            self._current, self._task = None, None

    def _report_interrupted(self, job: Job, played_ms: int) -> None:
        by = self._preempted_by
        policy = job.play.on_preempt
        if by is not None and policy is not PreemptPolicy.DROP:
            # Back in the queue, keeping its place among equals; no report: it is not final.
            resumed = job.position_ms + max(0, played_ms) if policy is PreemptPolicy.RESUME else 0
            job.position_ms, job.start_ms = min(resumed, job.ref.duration_ms), None
            job.began_ms = None
            job.play = Play(
                job.play.broadcast_id, job.play.variants, None, job.play.volume, job.play.title, policy
            )
            self._ready.append(job)
            self._wake.set()
        elif by is not None:
            detail = f"preempted by {by.command.priority.wire} broadcast {by.broadcast_id}"
            self._emit(job, DeliveryState.FAILED, Reason.PREEMPTED, detail)
        else:
            self._emit(job, DeliveryState.FAILED, Reason.STOPPED, "stopped by the controller")


def _being_cancelled() -> bool:
    """Whether the running task has a cancel request of its own pending (not only its job's)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _start(job: Job | LiveJob) -> int | None:
    if job.start_ms is not None or isinstance(job, LiveJob):
        return job.start_ms
    return job.play.start_at_ms


def _due(job: Job | LiveJob, now_ms: int) -> bool:
    start = _start(job)
    return start is None or start <= now_ms
