"""Several `serve` processes on one PostgreSQL: who leads the schedule, who follows which broadcast.

Every controller renews its own lease (`controller:<id>`, its heartbeat) and tries the scheduler lease
every `lease_renew_s`. The one holding the scheduler lease runs APScheduler (which does not support
several schedulers on one store) and takes over the running broadcasts of controllers whose own lease
lapsed: it becomes their owner (a fenced write) and resumes them, repairs included (controller/resume.py).
A write refused for a stale token (FencedOut) makes the leader step down; it may lead again later under
a new token. On SQLite there is one controller: it leads, under no lease, as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from speakerctl.controller.resume import resume_all
from speakerctl.controller.service import Controller
from speakerctl.errors import FencedOut, SpeakerctlError, StoreError
from speakerctl.scheduler.runner import ScheduleRunner
from speakerctl.store import LEADER, BroadcastState, Fence, member_lease

log = logging.getLogger(__name__)
Scheduled = Callable[[Fence], AbstractAsyncContextManager[ScheduleRunner]]
"""Builds the schedule runner that runs under a scheduler lease (the composition root knows how)."""


class Coordinator:
    """One controller's leases, and the schedule runner and takeovers it runs while it leads."""

    def __init__(self, running: Controller, scheduled: Scheduled) -> None:
        self.running, self.scheduled = running, scheduled
        self.me = running.session.client_id
        self.leases = running.store.leases
        self.ttl_s, self.renew_s = running.settings.lease_ttl_s, running.settings.lease_renew_s
        self.leader: Fence | None = None
        self._lead_task: asyncio.Task[None] | None = None
        self._taken: set[str] = set()
        self._stopping = False
        self.tasks: set[asyncio.Task[None]] = set()
        """Broadcasts taken over and being resumed, cancelled when the coordinator stops."""

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Renew the leases every `renew_s` until cancelled; lead while the scheduler lease is ours."""
        try:
            while True:
                await self.renew(tg)
                await asyncio.sleep(self.renew_s)
        finally:
            self._stopping = True
            await self._step_down("shutting down")
            await asyncio.shield(asyncio.to_thread(self._release))

    async def renew(self, tg: asyncio.TaskGroup) -> None:
        """One round: own lease, scheduler lease; start or stop leading as the tokens say."""
        try:
            token = await asyncio.to_thread(self._acquire)
        except StoreError as exc:
            # The fence is kept: the database refuses it by itself once the lease has lapsed.
            log.warning("cannot renew the leases (%s): not leading until the database answers", exc)
            await self._step_down("the database did not answer")
            return
        if self.leader is not None and (token != self.leader.token or self._lead_finished()):
            await self._step_down(f"the scheduler lease is {'lost' if token is None else 'renewed'}")
        if token is not None and self.leader is None:
            self.leader = Fence(LEADER, self.me, token)
            self._lead_task = tg.create_task(self._lead(self.leader, tg), name="coordination:lead")

    def _acquire(self) -> int | None:
        """Renew this controller's own lease, then try the scheduler's: its token, or None."""
        own = member_lease(self.me)
        member = self.leases.acquire(own, self.me, self.ttl_s)
        if member is None:
            log.error("another live process holds controller id %s: give each controller its own", self.me)
            return None
        self.running.fence = Fence(own, self.me, member)
        return self.leases.acquire(LEADER, self.me, self.ttl_s)

    def _lead_finished(self) -> bool:
        return self._lead_task is not None and self._lead_task.done()

    async def _lead(self, fence: Fence, tg: asyncio.TaskGroup) -> None:
        log.warning("%s leads the schedule (lease token %d)", self.me, fence.token)
        cut_short: set[str] = set()
        try:
            async with self.scheduled(fence) as runner:
                cut_short = runner.following
                await self._take_over_loop(fence, tg)
        except* FencedOut as group:
            log.warning("%s is fenced out, stepping down: %s", self.me, group.exceptions[0])
        except* SpeakerctlError as group:  # the next round may lead again
            log.warning("%s stops leading after an error: %s", self.me, group.exceptions[0])
        finally:
            if not self._stopping:
                self._follow_again(set(cut_short), tg)

    def _follow_again(self, broadcast_ids: set[str], tg: asyncio.TaskGroup) -> None:
        # Broadcasts the runner sent are still ours (our own lease lives on): nobody else takes them
        # over, so we follow them to their end, as `serve` does at start-up with what it left running.
        for broadcast_id in broadcast_ids - self._taken:
            self._taken.add(broadcast_id)
            self._track(tg.create_task(self._resume(broadcast_id), name=f"follow:{broadcast_id}"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _take_over_loop(self, fence: Fence, tg: asyncio.TaskGroup) -> None:
        while True:
            try:
                await self.take_over(fence, tg)
            except FencedOut:
                raise
            except StoreError as exc:
                log.warning("looking for broadcasts to take over failed, will retry: %s", exc)
            await asyncio.sleep(self.renew_s)

    async def take_over(self, fence: Fence, tg: asyncio.TaskGroup) -> list[str]:
        """Become the owner of the running broadcasts of lapsed controllers and resume them."""
        store = self.running.store
        lapsed = await asyncio.to_thread(self.leases.lapsed_members) - {self.me}
        orphans = [b for b in await asyncio.to_thread(store.broadcasts.running) if b.owner in lapsed]
        taken = []
        for info in orphans:
            if info.id in self._taken:
                continue
            if await asyncio.to_thread(store.broadcasts.take_over, info.id, info.owner, self.me, fence):
                log.warning("%s takes over broadcast %s from %s", self.me, info.id, info.owner)
                self._taken.add(info.id)
                taken.append(info.id)
                self._track(tg.create_task(self._resume(info.id), name=f"resume:{info.id}"))
        return taken

    async def _resume(self, broadcast_id: str) -> None:
        # Followed as this controller's own from now on, whoever leads: not cancelled on stepping down.
        try:
            info = await asyncio.to_thread(self.running.store.broadcasts.get, broadcast_id)
            if info.state is not BroadcastState.RUNNING:
                return
            if info.owner != self.me:
                log.warning("broadcast %s was taken over by %s: leaving it to them", broadcast_id, info.owner)
                return
            await resume_all(self.running, [info])
        except Exception:
            log.exception("resuming broadcast %s taken over failed", broadcast_id)

    async def _step_down(self, why: str) -> None:
        task, self._lead_task, self.leader = self._lead_task, None, None
        if task is None:
            return
        if not task.done():
            log.warning("%s stops leading the schedule: %s", self.me, why)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _release(self) -> None:
        # A clean shutdown hands over at once instead of a TTL later.
        with contextlib.suppress(StoreError):
            self.leases.release(LEADER, self.me)
            self.leases.release(member_lease(self.me), self.me)


@contextlib.asynccontextmanager
async def coordinated(coordinator: Coordinator) -> AsyncIterator[Coordinator]:
    """The coordinator's rounds for the block; the first round is done before it is entered."""
    async with asyncio.TaskGroup() as tg:
        await coordinator.renew(tg)
        task = tg.create_task(coordinator.run(tg), name="coordination:leases")
        try:
            yield coordinator
        finally:
            task.cancel()
            for resuming in list(coordinator.tasks):
                resuming.cancel()
