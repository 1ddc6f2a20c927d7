"""Delivering the outbox of one channel: each due item sent, then marked delivered or given its next try.

The wait between tries is `retry.delay_after` (capped exponential backoff with jitter, the project's one
retry policy) counted from the clock passed in, so tests move time instead of sleeping. While the far end
is unreachable the whole channel waits (one probe per wait, not one per item); an item it refuses waits on
its own and does not hold up the rest. Nothing is dropped: an item leaves only once delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from speakerctl.clock import Clock
from speakerctl.errors import LoginRefused, RemoteError, RemoteUnavailable
from speakerctl.retry import Backoff, delay_after
from speakerctl.store import OutboxItem, Store

log = logging.getLogger(__name__)
Send = Callable[[OutboxItem], Awaitable[None]]
"""Deliver one item; RemoteUnavailable or RemoteRefused if the far end did not take it."""
BATCH = 100
KEEP_DELIVERED = timedelta(days=30)
"""Delivered items are kept this long (as history, and so a re-read event is recognised), then pruned."""


@dataclass(frozen=True, slots=True)
class Pass:
    """What one delivery pass did."""

    delivered: int = 0
    failed: int = 0
    held_until: datetime | None = None
    """Set while the far end is unreachable: the channel's next try."""


class Dispatcher:
    """Sends the due items of one channel through `send`; keeps the channel's outage wait in memory."""

    def __init__(self, store: Store, channel: str, send: Send, clock: Clock, backoff: Backoff) -> None:
        self.store, self.channel, self.send = store, channel, send
        self.clock, self.backoff = clock, backoff
        self.held_until: datetime | None = None
        self._outages = 0

    async def deliver_due(self) -> Pass:
        """One pass: every due item in order until the far end proves unreachable."""
        now = self.clock.now()
        if self.held_until is not None and now < self.held_until:
            return Pass(held_until=self.held_until)
        delivered = failed = 0
        for item in await asyncio.to_thread(self.store.outbox.due, self.channel, now, BATCH):
            try:
                await self.send(item)
            except (RemoteUnavailable, LoginRefused) as exc:  # every other item would fail the same way
                held = self._hold(item, exc)
                await self._failed(item, exc, held)
                return Pass(delivered, failed + 1, held)
            except RemoteError as exc:
                wait = timedelta(seconds=delay_after(item.attempts + 1, self.backoff))
                await self._failed(item, exc, self.clock.now() + wait)
                failed += 1
                continue
            await asyncio.to_thread(self.store.outbox.delivered, item.id, self.clock.now())
            delivered += 1
        self.held_until, self._outages = None, 0
        return Pass(delivered, failed)

    async def prune(self) -> int:
        """Forget what was delivered more than `KEEP_DELIVERED` ago."""
        before = self.clock.now() - KEEP_DELIVERED
        return await asyncio.to_thread(self.store.outbox.prune, self.channel, before)

    async def _failed(self, item: OutboxItem, exc: RemoteError, next_at: datetime) -> None:
        await asyncio.to_thread(self.store.outbox.failed, item.id, next_at, str(exc))
        log.warning("%s: %s %s not delivered (attempt %d): %s", self.channel, item.kind, item.idempotency_key,
                    item.attempts + 1, exc)  # fmt: skip

    def _hold(self, item: OutboxItem, exc: RemoteError) -> datetime:
        """The channel waits, as long as its longest outage so far or the item's own attempts say."""
        self._outages += 1
        wait = delay_after(max(self._outages, item.attempts + 1), self.backoff)
        self.held_until = self.clock.now() + timedelta(seconds=wait)
        log.warning("%s unreachable, next try at %s: %s", self.channel, self.held_until.isoformat(), exc)
        return self.held_until
