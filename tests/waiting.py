"""How tests wait: on events they are told about, never on sleeps; a poll only across processes.

`Observed` collects what a callback reports (player events, messages a link receives) and wakes
whoever waits for a condition on it. `wait_until` / `wait_until_sync` poll a condition that lives in
another process (a store another process writes, a server another process runs), where no event can
reach the test. Every timeout here is a safety net, generous so that a busy machine never trips it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from devices.agent import DeviceAgent
from speakerctl.broker.link import Link

T = TypeVar("T")

SAFETY_NET_S = 30.0
"""How long a test waits for something that should happen well within a second."""
POLL_S = 0.1


class Observed(Generic[T]):
    """What a callback reported, in order; `wait_for` returns once a condition on it holds."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._changed = asyncio.Event()

    def add(self, item: T) -> None:
        """Record one report and wake the waiters."""
        self.items.append(item)
        self._changed.set()

    async def wait_for(
        self, check: Callable[[Sequence[T]], bool], what: str, timeout: float = SAFETY_NET_S
    ) -> None:
        """Return once `check(items)` holds; fail the test after `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                while not check(self.items):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


async def wait_until(check: Callable[[], bool], what: str, timeout: float = SAFETY_NET_S) -> None:
    """Poll a condition that another process makes true; fail the test after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_S)


def wait_until_sync(check: Callable[[], bool], what: str, timeout: float = SAFETY_NET_S) -> None:
    """`wait_until` for a test without an event loop (a CLI test driving processes)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)


@asynccontextmanager
async def connected(*items: Link | DeviceAgent) -> AsyncIterator[None]:
    """Run links and agents for the block, entered once every one holds a broker session."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(x.run()) for x in items]
        for x in items:
            await (x.link if isinstance(x, DeviceAgent) else x).wait_connected(10)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
