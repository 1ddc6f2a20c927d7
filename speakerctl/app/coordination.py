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
from speakerctl.errors import FencedOut, StoreError
from speakerctl.store import LEADER, Fence, member_lease

log = logging.getLogger(__name__)
Scheduled = Callable[[Fence], AbstractAsyncContextManager[object]]
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
        self.tasks: set[asyncio.Task[None]] = set()
        """Broadcasts taken over and being resumed, cancelled when the coordinator stops."""

    async def run(self, tg: asyncio.TaskGroup) -> None:
        """Renew the leases every `renew_s` until cancelled; lead while the scheduler lease is ours."""
        try:
            while True:
                await self.renew(tg)
                await asyncio.sleep(self.renew_s)
        finally:
            await self._step_down("shutting down")
            await asyncio.shield(asyncio.to_thread(self._release))

    async def renew(self, tg: asyncio.TaskGroup) -> None:
        """One round: own lease, scheduler lease; start or stop leading as the tokens say."""
        try:
            member = await asyncio.to_thread(self.leases.acquire, member_lease(self.me), self.me, self.ttl_s)
            token = await asyncio.to_thread(self.leases.acquire, LEADER, self.me, self.ttl_s)
        except StoreError as exc:
            log.warning("cannot renew the leases (%s): not leading until the database answers", exc)
            self.running.fence = None
            await self._step_down("the database did not answer")
            return
        self.running.fence = Fence(member_lease(self.me), self.me, member) if member else None
        if self.leader is not None and (token != self.leader.token or self._lead_finished()):
            await self._step_down(f"the scheduler lease is {'lost' if token is None else 'renewed'}")
        if token is not None and self.leader is None:
            self.leader = Fence(LEADER, self.me, token)
            self._lead_task = tg.create_task(self._lead(self.leader, tg), name="coordination:lead")

    def _lead_finished(self) -> bool:
        return self._lead_task is not None and self._lead_task.done()

    async def _lead(self, fence: Fence, tg: asyncio.TaskGroup) -> None:
        log.warning("%s leads the schedule (lease token %d)", self.me, fence.token)
        try:
            async with self.scheduled(fence):
                await self._take_over_loop(fence, tg)
        except* FencedOut as group:
            log.warning("%s is fenced out, stepping down: %s", self.me, group.exceptions[0])

    async def _take_over_loop(self, fence: Fence, tg: asyncio.TaskGroup) -> None:
        while True:
            await self.take_over(fence, tg)
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
                task = tg.create_task(self._resume(info.id), name=f"coordination:resume:{info.id}")
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        return taken

    async def _resume(self, broadcast_id: str) -> None:
        # Followed as this controller's own from now on, whoever leads: not cancelled on stepping down.
        info = await asyncio.to_thread(self.running.store.broadcasts.get, broadcast_id)
        try:
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
