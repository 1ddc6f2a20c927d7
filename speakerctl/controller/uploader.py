"""Uploads a content variant once to its content topic, then repairs exactly what devices ask for."""

from __future__ import annotations

import asyncio
from functools import partial

from speakerctl.broker.link import Link
from speakerctl.controller.pause import pause_at
from speakerctl.controller.tracker import Tracker
from speakerctl.protocol import ContentRef, chunks, topics
from speakerctl.retry import Backoff, through_outages

_REPAIR_COALESCE_S = 0.1
_POLL_S = 0.02
_WINDOW = 32


class Upload:
    """One variant of one broadcast on its way to the devices that need it."""

    def __init__(
        self, link: Link, ref: ContentRef, data: bytes, accept_window_s: float, outage_deadline_s: float
    ) -> None:
        self.link = link
        self.backoff = Backoff(outage_deadline_s)
        self.ref = ref
        self.data = data
        self.accept_window_s = accept_window_s
        self.topic = topics.content(ref.sha256)
        self.bytes_sent = 0
        self.repairs = 0
        self._requested: set[int] = set()
        self._request_arrived = asyncio.Event()

    def request(self, missing: set[int]) -> None:
        """A device asks again for these chunks."""
        self._requested |= {i for i in missing if i < self.ref.chunks}
        self._request_arrived.set()

    async def run(self, tracker: Tracker) -> None:
        """Wait until someone needs the content, upload it once, then serve repairs until cancelled."""
        # Polling (20 ms) keeps the tracker free of per-waiter wake-ups; it only runs while a broadcast does.
        # A request for chunks counts as a need: a restarted controller may have missed the accept.
        while not tracker.needs(self.ref.sha256) and not self._requested:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)
        await self._accept_window(tracker)
        await pause_at("after-accept")
        self._requested.clear()  # the full upload below answers anything asked so far
        first = min(_WINDOW, self.ref.chunks)
        await self._send(range(first))
        await pause_at("mid-upload")
        await self._send(range(first, self.ref.chunks))
        while True:
            await self._request_arrived.wait()
            await asyncio.sleep(_REPAIR_COALESCE_S)
            wanted, self._requested = self._requested, set()
            self._request_arrived.clear()
            self.repairs += 1
            await self._send(sorted(wanted))

    @property
    def _what(self) -> str:
        return f"upload of {self.ref.sha256[:12]}"

    async def _publish(self, batch: list[bytes]) -> None:
        await asyncio.gather(*(self.link.publish(self.topic, f, qos=1) for f in batch))

    async def _accept_window(self, tracker: Tracker) -> None:
        # Late subscribers would miss the one upload and need repairs; waiting briefly for
        # the online devices to accept lets one upload serve them all.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.accept_window_s
        while tracker.awaiting_accept() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(_POLL_S)

    async def _send(self, indices: range | list[int]) -> None:
        frames = list(chunks.frames(self.data, indices))
        # A window of QoS 1 publishes in flight: one ack round trip per window, not per chunk.
        for i in range(0, len(frames), _WINDOW):
            batch = frames[i : i + _WINDOW]
            # After a broker restart the whole window is sent again once it is back.
            await through_outages(partial(self._publish, batch), self._what, self.backoff)
            self.bytes_sent += sum(map(len, batch))
