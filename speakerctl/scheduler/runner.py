"""Runs the schedule book: APScheduler jobs (persisted, stable ids), pushes ahead, misfires, cancellations.

Two ways an occurrence reaches the clusters:

- **pushed**: every few minutes the runner sends each occurrence of the next `schedule_horizon_h`
  hours as a play command with an absolute `start_at`; clusters fetch the content at once and air it
  from their caches at that time, link or no link, and report when they can.
- **fired**: an occurrence not pushed (horizon 0, or added at short notice) is sent by its APScheduler
  job `schedule_lead_s` before air time, with `start_at` = the air time. If the controller was down,
  APScheduler runs the job once on restart (coalesced): the occurrence airs late (start = now + lead)
  while still inside the schedule's window, otherwise it is recorded as missed, with earlier misses
  coalesced into one record.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.errors import FencedOut, NotFound, SpeakerctlError
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.broadcasts import Broadcasts, ScheduledBroadcast, ScheduledRelay
from speakerctl.scheduler.model import Run, RunState, Schedule
from speakerctl.scheduler.rules import zone_info
from speakerctl.scheduler.trigger import RuleTrigger
from speakerctl.scheduler.volume import VolumePlan, parse_quiet_hours
from speakerctl.store import Claim, Fence

log = logging.getLogger(__name__)
FIRE_FUNC = "speakerctl.scheduler.runner:fire_job"
ON_TIME = timedelta(seconds=1)
MAX_CATCH_UP = timedelta(days=7)

_active: ScheduleRunner | None = None
"""The runner of this process, which APScheduler's persisted jobs call back (they store a name only)."""


async def fire_job(schedule_id: str, revision: int = 0) -> None:
    """APScheduler's job function: hand the firing to the running runner."""
    if _active is not None:
        _active.on_fire(schedule_id)


class ScheduleRunner:
    """Keeps APScheduler's jobs in step with the book and turns occurrences into broadcasts."""

    def __init__(
        self,
        book: ScheduleBook,
        settings: Settings,
        clock: Clock,
        broadcasts: Broadcasts,
        *,
        sync_every_s: float = 5.0,
        push_every_s: float = 300.0,
        fence: Fence | None = None,
    ) -> None:
        self.book = book
        self.settings = settings
        self.clock = clock
        self.broadcasts = broadcasts
        self.fence = fence
        """The scheduler lease this runner leads under (several controllers); None: the only one."""
        self.sync_every_s, self.push_every_s = sync_every_s, push_every_s
        self.lead = timedelta(seconds=settings.schedule_lead_s)
        self.horizon = timedelta(hours=settings.schedule_horizon_h)
        self.volumes = VolumePlan(
            parse_quiet_hours(settings.quiet_hours), settings.emergency_volume, zone_info(settings.timezone)
        )
        self.scheduler: AsyncIOScheduler | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        """Sync, push and fire one at a time: two of them must never send the same occurrence."""
        self.following: set[str] = set()
        """Broadcasts this runner sent and follows; those still here after it stops were cut short
        (a leader stepping down hands them to whoever follows its own broadcasts)."""
        self.fired = 0
        self.recorded = asyncio.Event()
        """Set each time a run is recorded; `wait_for_runs` waits on it."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ScheduleRunner]:
        """Run APScheduler and the upkeep loop for the duration of the block."""
        global _active
        scheduler = AsyncIOScheduler(
            jobstores={"default": self.book.job_store()},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=zone_info(self.settings.timezone),
            event_loop=asyncio.get_running_loop(),
        )
        async with asyncio.TaskGroup() as tg:
            self._tg, self.scheduler, _active = tg, scheduler, self
            scheduler.start(paused=True)
            try:
                await self.sync()
                scheduler.resume()
                self._track(tg.create_task(self._upkeep(), name="schedule:upkeep"))
                yield self
            finally:
                _active, self._tg = None, None
                scheduler.shutdown(wait=False)
                for task in self._tasks:
                    task.cancel()
        await asyncio.sleep(0)  # let APScheduler's shutdown, queued on the loop, run

    async def _upkeep(self) -> None:
        last_push = -1e9
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.sync()
                if loop.time() - last_push >= self.push_every_s:
                    last_push = loop.time()
                    await self.push()
            except FencedOut:
                raise  # another controller leads now: the runner stops
            except SpeakerctlError as exc:
                log.warning("schedule upkeep failed, will retry: %s", exc)
            await asyncio.sleep(self.sync_every_s)

    # -- keeping APScheduler in step with the book ---------------------------------------

    async def sync(self) -> None:
        """Add, update, pause or remove APScheduler jobs so they match the book (changed by the CLI)."""
        async with self._lock:
            await self._sync()

    async def _sync(self) -> None:
        assert self.scheduler is not None
        schedules = await asyncio.to_thread(self.book.all)
        jobs = {j.id: j for j in self.scheduler.get_jobs()}
        for s in schedules:
            job = jobs.pop(s.job_id, None)
            if job is None:
                self._add_job(s)
            elif job.kwargs.get("revision") != s.revision:
                self.scheduler.remove_job(s.job_id)
                self._add_job(s)
                await self._cancel_pushed(s.id, "the schedule changed")
        for job_id in [j for j in jobs if j.startswith("schedule:")]:
            self.scheduler.remove_job(job_id)
            await self._cancel_pushed(job_id.removeprefix("schedule:"), "the schedule was removed")

    def _add_job(self, s: Schedule) -> None:
        assert self.scheduler is not None
        trigger = RuleTrigger(s.rule, self.lead.total_seconds())
        extra: dict[str, Any] = {"next_run_time": None} if s.paused else {}
        self.scheduler.add_job(
            FIRE_FUNC,
            trigger,
            args=[s.id],
            kwargs={"revision": s.revision},
            id=s.job_id,
            name=s.name or s.id,
            replace_existing=True,
            **extra,
        )

    def next_fire(self, schedule_id: str) -> datetime | None:
        """When the job next fires (a lead before air time), as APScheduler holds it."""
        job = self.scheduler.get_job(f"schedule:{schedule_id}") if self.scheduler else None
        return None if job is None else job.next_run_time

    async def _cancel_pushed(self, schedule_id: str, why: str) -> None:
        # Stopped where each was sent (the broadcaster knows), not at the schedule's current targets.
        now = self.clock.now()
        for run in await asyncio.to_thread(self.book.runs, schedule_id):
            if run.state is RunState.PUSHED and run.fire_at > now:
                await self.broadcasts.stop(run.broadcast_id)
                await self._record(_with(run, RunState.CANCELLED, why, now))
                await asyncio.to_thread(self.book.release, schedule_id, run.fire_at, self.fence)

    async def _record(self, run: Run) -> None:
        await asyncio.to_thread(self.book.record, run)
        self.recorded.set()

    async def wait_for_runs(self, schedule_id: str) -> list[Run]:
        """The schedule's recorded runs, once there is at least one."""
        while True:
            self.recorded.clear()
            runs = await asyncio.to_thread(self.book.runs, schedule_id)
            if runs:
                return runs
            await self.recorded.wait()

    # -- firing ----------------------------------------------------------------------------

    def on_fire(self, schedule_id: str) -> None:
        """APScheduler fired: handle it in a task of ours."""
        if self._tg is not None:
            self._track(
                self._tg.create_task(self._fire_logged(schedule_id), name=f"schedule:fire:{schedule_id}")
            )

    async def _fire_logged(self, schedule_id: str) -> None:
        try:
            await self.fire(schedule_id)
        except FencedOut:
            raise
        except SpeakerctlError as exc:  # a store hiccup must not take the runner down
            log.warning("firing schedule %s failed: %s", schedule_id, exc)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def fire(self, schedule_id: str) -> Run | None:
        """Handle the occurrence now due (or overdue): air it, on time or late, or record it missed."""
        async with self._lock:
            return await self._fire(schedule_id)

    async def _fire(self, schedule_id: str) -> Run | None:
        now = self.clock.now()
        try:
            s = await asyncio.to_thread(self.book.get, schedule_id)
        except NotFound:
            return None
        if s.paused:
            return None
        self.fired += 1
        due = await self._due(s, now)
        if not due:
            return None
        fire_at = due[-1]
        if len(due) > 1:
            await self._settle_passed(s, due[:-1], now)
        return await self._air(s, fire_at, now)

    async def _settle_passed(self, s: Schedule, passed: list[datetime], now: datetime) -> None:
        # Occurrences that came and went while no runner was up. One pushed ahead aired from the clusters'
        # caches all the same: recording it missed would overwrite its run, and lose its broadcast id.
        missed = []
        for at in passed:
            existing = await asyncio.to_thread(self.book.run, s.id, at)
            if existing is not None and existing.state is RunState.PUSHED:
                await self._record(await self._pushed_run(existing, now))
            elif existing is None:
                missed.append(at)
        if missed:
            await self._record_missed(s, missed, now)

    async def _due(self, s: Schedule, now: datetime) -> list[datetime]:
        last = await asyncio.to_thread(self.book.last_handled, s.id, now + self.lead)
        floor = max(now - MAX_CATCH_UP, s.created_at or now - timedelta(seconds=s.window_s))
        since = max(last or floor, floor)
        return s.rule.occurrences(since, now + self.lead)

    async def _record_missed(self, s: Schedule, missed: list[datetime], now: datetime) -> None:
        span = f"{missed[0]:%Y-%m-%d %H:%M} … {missed[-1]:%Y-%m-%d %H:%M} UTC"
        detail = f"{len(missed)} missed while the controller was down, {span}"
        await self._record(Run(s.id, missed[-1], RunState.MISSED, "", detail, now))

    async def _air(self, s: Schedule, fire_at: datetime, now: datetime) -> Run:
        existing = await asyncio.to_thread(self.book.run, s.id, fire_at)
        if existing is not None and existing.state is RunState.PUSHED:
            run = await self._pushed_run(existing, now)
        elif existing is not None:
            return existing
        else:
            run = await self._send_now(s, fire_at, now)
        await self._record(run)
        return run

    async def _pushed_run(self, pushed: Run, now: datetime) -> Run:
        # An operator may have stopped the pushed broadcast before its air time: then it does not air.
        who = await self.broadcasts.stopped_by(pushed.broadcast_id)
        if who is not None:
            return _with(pushed, RunState.CANCELLED, f"stopped by {who or 'an operator'}", now)
        return _with(pushed, RunState.AIRED, "pushed ahead; aired from the clusters' caches", now)

    async def _send_now(self, s: Schedule, fire_at: datetime, now: datetime) -> Run:
        # On time (fired a lead ahead): start at the air time itself. Late: give the lead again.
        start = fire_at if now <= fire_at else now + self.lead
        window_end = fire_at + timedelta(seconds=s.window_s)
        if start >= window_end:
            late = (now - fire_at).total_seconds()
            return Run(
                s.id, fire_at, RunState.MISSED, "", f"{late:.0f} s late, past its {s.window_s} s window", now
            )
        if s.relay is not None:
            return await self._relay_now(s, fire_at, now)
        request = self._request(s, fire_at, start, window_end)
        holder = await self._claim(request)
        if holder != request.broadcast_id:
            return Run(s.id, fire_at, RunState.AIRED, holder, "sent by another controller", now)
        await self._spawn(request, s.id)
        if start - fire_at <= ON_TIME:
            return Run(s.id, fire_at, RunState.AIRED, request.broadcast_id, "sent before air time", now)
        late = (start - fire_at).total_seconds()
        return Run(s.id, fire_at, RunState.LATE, request.broadcast_id, f"aired {late:.0f} s late", now)

    async def _relay_now(self, s: Schedule, fire_at: datetime, now: datetime) -> Run:
        # Live: nothing can be sent ahead. It starts at the air time, or now if late, and ends on time.
        assert s.relay is not None
        start = max(fire_at, now)
        left_s = s.relay.duration_s - (start - fire_at).total_seconds()
        if left_s <= 0:
            return Run(s.id, fire_at, RunState.MISSED, "", "the relay's time was over", now)
        request = ScheduledRelay(s.relay.url, s.targets, s.priority, start, left_s, s.approved_by)
        coro = self._follow_relay(request)
        if self._tg is not None:
            self._track(self._tg.create_task(coro, name=f"schedule:relay:{s.id}"))
        else:
            await coro
        detail = f"relay {s.relay.url} for {left_s:.0f} s"[:200]
        late = (start - fire_at).total_seconds()
        state = RunState.AIRED if late <= ON_TIME.total_seconds() else RunState.LATE
        return Run(s.id, fire_at, state, "", detail, now)

    async def _follow_relay(self, request: ScheduledRelay) -> None:
        wait_s = (request.start_at - self.clock.now()).total_seconds()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        try:
            await self.broadcasts.relay(request)
        except SpeakerctlError as exc:
            log.warning("scheduled relay of %s failed: %s", request.url, exc)

    def _request(
        self, s: Schedule, fire_at: datetime, start: datetime, expires: datetime
    ) -> ScheduledBroadcast:
        return ScheduledBroadcast(
            broadcast_id=f"bc-{fire_at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}",
            bulletin_id=s.bulletin_id,
            targets=s.targets,
            priority=s.priority,
            start_at=start,
            expires_at=expires,
            volume=self.volumes.volume(s.targets, start, s.priority),
            on_preempt=s.on_preempt,
            approved_by=s.approved_by,
            claim=Claim(s.id, fire_at),
            fence=self.fence,
        )

    async def _claim(self, request: ScheduledBroadcast) -> str:
        """The broadcast that holds the occurrence's claim: this one, unless another was sent for it."""
        assert request.claim is not None
        claim = request.claim
        return await asyncio.to_thread(
            self.book.claim, claim.schedule_id, claim.occurrence_at, request.broadcast_id, self.fence
        )

    async def _spawn(self, request: ScheduledBroadcast, schedule_id: str) -> None:
        # Running: the broadcast is followed in a task of ours. Called directly (tests): awaited.
        if self._tg is not None:
            self._track(self._tg.create_task(self._follow(request), name=f"schedule:send:{schedule_id}"))
        else:
            await self._follow(request)

    async def _follow(self, request: ScheduledBroadcast) -> None:
        self.following.add(request.broadcast_id)
        try:
            await self.broadcasts.broadcast(request)
        except FencedOut:
            self.following.discard(request.broadcast_id)  # refused: it was never recorded
            raise
        except SpeakerctlError as exc:
            log.warning("scheduled broadcast %s failed: %s", request.broadcast_id, exc)
        self.following.discard(request.broadcast_id)  # not when cancelled: it is still on air

    # -- pushing ahead ---------------------------------------------------------------------

    async def push(self) -> list[Run]:
        """Send every occurrence of the next horizon that is not sent yet, with its start time."""
        async with self._lock:
            return await self._push()

    async def _push(self) -> list[Run]:
        if self.horizon <= timedelta(0):
            return []
        now = self.clock.now()
        pushed: list[Run] = []
        for s in await asyncio.to_thread(self.book.all):
            if s.paused or s.relay is not None:  # a relay is live: its job starts it at air time
                continue
            for at in s.rule.occurrences(now + self.lead, now + self.horizon):
                if await asyncio.to_thread(self.book.run, s.id, at) is None:
                    pushed.append(await self._push_one(s, at, now))
        return pushed

    async def _push_one(self, s: Schedule, at: datetime, now: datetime) -> Run:
        request = self._request(s, at, at, at + timedelta(seconds=s.window_s))
        holder = await self._claim(request)
        run = Run(s.id, at, RunState.PUSHED, holder, f"to {','.join(s.targets)}", now)
        await self._record(run)
        if holder == request.broadcast_id:
            await self._spawn(request, s.id)
        return run


def _with(run: Run, state: RunState, detail: str, now: datetime) -> Run:
    return Run(run.schedule_id, run.fire_at, state, run.broadcast_id, detail, now)
