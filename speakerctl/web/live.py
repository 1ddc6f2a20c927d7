"""Live updates for open console pages: server-sent events carrying only the parts that changed.

A page is made of parts (an element with an id: a commune's row, a cluster's marker state, the alert
list...). The page is rendered from the same part templates, and the hub remembers what each open page
holds; every tick in which the store may have changed it re-renders the parts and sends a page only the
ones that differ, a `patch` event each. An idle fleet costs a comment line every HEARTBEAT_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TICK_S = 1.0
"""How often the hub looks for changes (the ingestor writes every 250 ms)."""
HEARTBEAT_S = 20.0
"""A comment line this often keeps proxies and the browser from closing an idle stream."""
REREAD_S = 10.0
"""Read the store at least this often even with no new reports (clusters go offline by silence)."""
REMEMBERED_PAGES = 500

Parts = dict[str, str]


@dataclass(eq=False)
class Subscriber:
    """One open page: who looks at it, which page, and what it holds now (a digest per part)."""

    key: Hashable
    """Pages with the same key (page, language, scope) see the same parts."""
    render: Callable[[Any], Parts]
    held: dict[str, str]
    signed_in: Callable[[], Awaitable[bool]]
    """Whether the page's session still holds (asked at each heartbeat)."""
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)


def digest(html: str) -> str:
    """A short fingerprint of a part."""
    return hashlib.blake2b(html.encode(), digest_size=8).hexdigest()


def digests(parts: Parts) -> dict[str, str]:
    """The fingerprint of every part."""
    return {k: digest(v) for k, v in parts.items()}


def changed(parts: Parts, held: dict[str, str]) -> Parts:
    """The parts that differ from what a page holds."""
    return {k: v for k, v in parts.items() if held.get(k) != digest(v)}


def event(parts: Parts) -> str:
    """A `patch` event per part (one-line elements with their ids): each is parsed alone, so a table
    row is never dropped for following a div in one parse."""
    return "".join(f"event: patch\ndata: {html}\n\n" for html in parts.values())


class LiveHub:
    """Follows the store and pushes changed parts to every open page."""

    def __init__(self, read: Callable[[], Awaitable[Any]], stamp: Callable[[], Hashable]) -> None:
        self._read, self._stamp = read, stamp
        self._pages: OrderedDict[str, dict[str, str]] = OrderedDict()
        self.subscribers: set[Subscriber] = set()
        self._last: Hashable = None
        self._poked = asyncio.Event()
        self.rounds = 0
        """Times the hub looked at the store for its pages."""
        self.after_round: list[Callable[[int], None]] = []
        """Called with `rounds` after each look (the tests wait on it)."""

    def remember(self, parts: Parts) -> str:
        """Note what a page just rendered holds; its event stream presents the returned token."""
        token = secrets.token_urlsafe(12)
        self._pages[token] = digests(parts)
        while len(self._pages) > REMEMBERED_PAGES:
            self._pages.popitem(last=False)
        return token

    def held(self, token: str) -> dict[str, str]:
        """What the page of `token` holds (nothing if unknown: a reconnect gets every part again)."""
        return self._pages.pop(token, {})

    def poke(self) -> None:
        """Something changed here (an action): look at once rather than at the next report."""
        self._poked.set()

    async def run(self) -> None:
        """Look for changes every tick until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), TICK_S)
            poked = self._poked.is_set()
            self._poked.clear()
            stamp = self._stamp()
            if self.subscribers and (poked or stamp != self._last):
                self._last = stamp
                await self.push(await self._read())
                self.rounds += 1
                for call in self.after_round:
                    call(self.rounds)

    async def push(self, snapshot: Any) -> None:
        """Render the parts once per kind of page and queue what each page lacks."""
        rendered: dict[Hashable, Parts] = {}
        for sub in list(self.subscribers):
            if sub.key not in rendered:
                rendered[sub.key] = sub.render(snapshot)
            diff = changed(rendered[sub.key], sub.held)
            if diff:
                sub.held.update(digests(diff))
                sub.queue.put_nowait(event(diff))

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for sub in self.subscribers:
            sub.queue.put_nowait(None)

    async def stream(self, request: web.Request, sub: Subscriber) -> web.StreamResponse:
        """Serve one page's event stream until it goes away."""
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        self.subscribers.add(sub)
        self.poke()
        try:
            await _pump(response, sub)
        except (ConnectionResetError, ConnectionError):
            pass  # the page was closed
        finally:
            self.subscribers.discard(sub)
        return response


SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # a reverse proxy must not hold events back
}


SIGNED_OUT = "event: signed-out\ndata: /login\n\n"
"""Sent instead of a heartbeat once the session has ended: the page goes to the sign-in form."""


async def _pump(response: web.StreamResponse, sub: Subscriber) -> None:
    await response.write(b"retry: 5000\n\n")
    while True:
        try:
            item = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_S)
        except TimeoutError:
            item = ":\n\n" if await sub.signed_in() else SIGNED_OUT
        if item is None:
            return
        await response.write(item.encode())
        if item == SIGNED_OUT:
            return
