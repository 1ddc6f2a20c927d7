"""The CAP feed at the edge: poll an Atom/RSS index over HTTP (aiohttp) and hand each new document to
the desk; in `serve`, also tick the desk so emergencies repeat until they expire.

Nothing here crashes `serve`: an unreachable feed, a slow one, an oversized or hostile document is
logged (throttled) and the next poll tries again. A document is fetched once per run: what the index
lists is remembered by URL, and the desk deduplicates by sender/identifier/sent across runs anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import aiohttp

from speakerctl.app.cap import Desk
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.cap import MAX_BYTES, feed_links
from speakerctl.cap.feed import MAX_INDEX_BYTES
from speakerctl.controller.service import Controller
from speakerctl.errors import AlertRejected, ConfigError, SpeakerctlError
from speakerctl.i18n import _
from speakerctl.logs import Throttled

log = logging.getLogger(__name__)
FETCH_TIMEOUT_S = 30.0
TICK_S = 30.0
"""How often `serve` looks for emergencies whose repeat is due."""


@dataclass(frozen=True, slots=True)
class Polled:
    """What one poll did: documents fetched, acted on (new), rejected, failed to fetch."""

    fetched: int = 0
    new: int = 0
    rejected: int = 0
    failed: int = 0


class FeedPoller:
    """Polls one CAP feed index for a desk."""

    def __init__(self, desk: Desk, url: str, session: aiohttp.ClientSession) -> None:
        self.desk, self.url, self.session = desk, url, session
        self.seen: set[str] = set()
        self._warn = Throttled(log, desk.ctx.clock.monotonic)

    async def poll(self) -> Polled:
        """Read the index once and act on every document not seen before."""
        try:
            links = feed_links(await self._get(self.url, MAX_INDEX_BYTES), self.url)
        except (aiohttp.ClientError, TimeoutError, AlertRejected) as exc:
            self._warn.log("feed", self.url, "CAP feed %s unreadable: %s", self.url, exc)
            return Polled(failed=1)
        counts = Polled()
        for link in (k for k in links if k not in self.seen):
            counts = _add(counts, await self._one(link))
        return counts

    async def _one(self, link: str) -> Polled:
        try:
            data = await self._get(link, MAX_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._warn.log("document", link, "CAP document %s unreadable: %s", link, exc)
            return Polled(failed=1)  # not remembered: the next poll tries again
        except AlertRejected as exc:
            self.seen.add(link)  # too large: it will not shrink
            log.warning("CAP alert from %s rejected: %s", link, exc)
            return Polled(fetched=1, rejected=1)
        self.seen.add(link)
        try:
            view = await self.desk.receive(data, link)
        except AlertRejected:
            return Polled(fetched=1, rejected=1)  # the desk logged why
        except SpeakerctlError as exc:  # the store busy, a race with a POST of the same alert…
            self.seen.discard(link)  # …the next poll tries again; the store deduplicates
            self._warn.log("act", link, "CAP document %s not acted on: %s", link, exc)
            return Polled(fetched=1, failed=1)
        return Polled(fetched=1, new=0 if view.duplicate else 1)

    async def _get(self, url: str, limit: int) -> bytes:
        """The body, refused past `limit` bytes without reading the rest."""
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with self.session.get(url, timeout=timeout) as response:
            response.raise_for_status()
            data = await response.content.read(limit + 1)
        if len(data) > limit:
            raise AlertRejected(_("{url}: more than {limit} bytes").format(url=url, limit=limit))
        return data


def _add(a: Polled, b: Polled) -> Polled:
    return Polled(a.fetched + b.fetched, a.new + b.new, a.rejected + b.rejected, a.failed + b.failed)


@contextlib.asynccontextmanager
async def watching(controller: Controller) -> AsyncIterator[Desk]:
    """For `serve`: the desk, its repeats ticking, and the configured feed polled, for the block."""
    ctx = AppContext(controller.settings, controller.clock)
    async with Desk(ctx, controller).running() as desk, aiohttp.ClientSession() as session:
        poller = FeedPoller(desk, ctx.settings.cap_feed_url, session) if ctx.settings.cap_feed_url else None
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(_loop(desk, poller))
            try:
                yield desk
            finally:
                task.cancel()


async def _loop(desk: Desk, poller: FeedPoller | None) -> None:
    settings = desk.ctx.settings
    since_poll = settings.cap_poll_s  # poll at once
    while True:
        if poller is not None and since_poll >= settings.cap_poll_s:
            since_poll = 0.0
            await _guarded(_poll(poller), "polling the CAP feed")
        await _guarded(desk.tick(), "checking the CAP repeats")
        wait = min(TICK_S, settings.cap_poll_s)
        await asyncio.sleep(wait)
        since_poll += wait


async def _poll(poller: FeedPoller) -> None:
    polled = await poller.poll()
    if polled.new or polled.rejected:
        log.warning("CAP feed: %d new, %d rejected", polled.new, polled.rejected)


async def _guarded(step: Awaitable[object], what: str) -> None:
    """Run one step of the loop; a failure is logged and the next round tries again."""
    try:
        await step
    except Exception:
        # One bad round (the store away, a bug on one document) must not take `serve` down with it.
        log.exception("%s failed", what)


async def poll_once(ctx: AppContext, url: str = "") -> Polled:
    """One poll of the feed (`url`, else the cap_feed_url setting), airing what it brings, followed to
    its end; ConfigError when no feed is named."""
    feed = url or ctx.settings.cap_feed_url
    if not feed:
        raise ConfigError(_("no CAP feed to poll"), hint=_("set cap_feed_url, or give --url"))
    async with (
        running_controller(ctx) as controller,
        Desk(ctx, controller).running() as desk,
        aiohttp.ClientSession() as session,
    ):
        polled = await FeedPoller(desk, feed, session).poll()
        await desk.idle()
    return polled
