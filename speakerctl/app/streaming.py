"""Streaming a live source through a running controller: the one path every live source takes.

A relay, a file played as if live, a microphone (`live mic`) and a browser's recording (the console's
"speak now") all end in `stream_live`, which records the stream and every cluster's part in the store.
The schedule runner's relays come here too (through `runtime.ControllerBroadcasts`), which is why this
module does not import the runtime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from speakerctl.app import alerts
from speakerctl.audio.live import LiveEncoding, browser_packets, filler_packets, is_url, resilient_packets
from speakerctl.clock import Clock, from_ms
from speakerctl.controller.live import ClusterLive, LiveOptions, LiveReport, LiveSession, Progress
from speakerctl.controller.planning import resolve_targets
from speakerctl.controller.service import Controller
from speakerctl.errors import LiveSourceError, UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.protocol.limits import MAX_LIVE_STALL_MS
from speakerctl.store import LiveClusterRecord, LiveRecord, Store

MAX_DURATION_S = 24 * 3600
CLUSTER_STALL_MARGIN_MS = 10_000
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveRequest:
    """What an operator asks for: a source, the zones, and how."""

    source: str
    targets: tuple[str, ...]
    actor: str
    priority: Priority = Priority.NORMAL
    duration_s: float | None = None
    delay_ms: int = 1500
    frame_ms: int = 400
    """400 ms frames keep the signature and topic overhead under 10 % (bench/live.py)."""
    stall_s: float = 10.0
    fallback_s: float = 0.0
    """A relay whose station stalls (no audio for `stall_s`) or drops sends filler and retries for this
    long before it ends."""
    filler: str = ""
    """An audio file (a cached bulletin's) looped while the station is away; silence if none."""

    def __post_init__(self) -> None:
        if self.duration_s is not None and not 0 < self.duration_s <= MAX_DURATION_S:
            raise UsageError(_("--for must be between 1 s and 24 h"), hint=_("e.g. --for 30m"))

    def options(self) -> LiveOptions:
        """The session's options for this request."""
        title = _("Relay") if is_url(self.source) else _("Live")
        return LiveOptions(
            priority=self.priority,
            frame_ms=self.frame_ms,
            delay_ms=self.delay_ms,
            # Clusters wait longer than the source's own stall timeout, so a relay can fall back first.
            stall_ms=min(MAX_LIVE_STALL_MS, int(self.stall_s * 1000) + CLUSTER_STALL_MARGIN_MS),
            duration_s=self.duration_s,
            title=title,
            source=self.source[:200],
        )


@dataclass(slots=True)
class Outages:
    """A relay's source outages: counted for the report, logged, and an alert on each cluster while the
    source is away (opened when it goes, closed when it is back or the stream ends)."""

    source: str
    store: Store
    clock: Clock
    count: int = 0
    devices: tuple[str, ...] = ()
    """The clusters the stream was sent to (set once it airs)."""
    away: bool = False
    writes: list[asyncio.Task[None]] = field(default_factory=list)

    def note(self, error: LiveSourceError | None) -> None:
        """The source went away (with why), or came back (None)."""
        self.away = error is not None
        if error is None:
            log.warning("live source %s is back", self.source)
        else:
            self.count += 1
            log.warning(
                "live source %s is away (%s): sending filler while it is reopened", self.source, error
            )
        detail = "" if error is None else f"{self.source}: {error}"[:500]
        self._alert(detail)

    def _alert(self, detail: str) -> None:
        write = asyncio.to_thread(
            alerts.relay_source_alerts, self.store, self.devices, detail, self.clock.now()
        )
        self.writes.append(asyncio.get_running_loop().create_task(write))

    async def settle(self) -> None:
        """Close the stream's alerts if it ended while its source was away; wait for every write."""
        if self.away:
            self.away = False
            self._alert("")
        await asyncio.gather(*self.writes, return_exceptions=True)


async def first_then_rest(packets: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The source's packets, the first one read before returning: a bad source fails before anything airs."""
    first = await anext(packets, None)
    if first is None:
        raise LiveSourceError(_("the live source ended before any audio"))

    async def chained() -> AsyncIterator[bytes]:
        yield first
        async for packet in packets:
            yield packet

    return chained()


async def stream_live(
    controller: Controller,
    request: LiveRequest,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    packets: AsyncGenerator[bytes] | None = None,
) -> LiveReport:
    """Send a live source to the request's zones through a running controller, until it ends or `stop`;
    the source's packets are opened from `request.source` unless given (a browser's recording)."""
    cmd_topics, devices = await asyncio.to_thread(resolve_targets, controller.store, request.targets)
    encoding = LiveEncoding(stall_s=request.stall_s, fallback_s=request.fallback_s)
    outages = Outages(request.source, controller.store, controller.clock)
    if packets is None:
        filler = await filler_packets(request.filler, encoding) if request.filler else []
        packets = resilient_packets(request.source, encoding=encoding, on_outage=outages.note, filler=filler)
    try:
        ready = await first_then_rest(packets)
        options = request.options()
        session = LiveSession(
            controller.link,
            controller.signer,
            controller.ingestor,
            controller.clock,
            cmd_topics,
            devices,
            options,
        )
        if stop is not None:
            session.stop_requested = stop
        outages.devices = tuple(d for d, c in session.report.clusters.items() if not c.skipped)
        await asyncio.to_thread(_record_start, controller.store, request, session)
        try:
            report = await session.run(ready, progress)
        finally:
            session.report.source_outages = outages.count
            await asyncio.shield(outages.settle())
            await asyncio.shield(asyncio.to_thread(_record_end, controller.store, controller, session))
        return report
    finally:
        await packets.aclose()


def _record_start(store: Store, request: LiveRequest, session: LiveSession) -> None:
    record = LiveRecord(
        session.stream_id,
        request.source[:200],
        request.actor,
        request.targets,
        int(request.priority),
        session.clock.now(),
    )
    store.live.begin(record, [_cluster(c) for c in session.report.clusters.values()])


def _record_end(store: Store, controller: Controller, session: LiveSession) -> None:
    report = session.report
    for cluster in report.clusters.values():
        if not cluster.skipped:
            store.live.update_cluster(report.stream_id, _cluster(cluster))
    reason = report.end_reason or "stopped"
    store.live.end(report.stream_id, controller.clock.now(), reason, report.frames)


def _cluster(c: ClusterLive) -> LiveClusterRecord:
    started = from_ms(c.started_ms) if c.started_ms is not None else None
    ended = from_ms(c.ended_ms) if c.ended_ms is not None else None
    return LiveClusterRecord(
        c.device_id, c.skipped, started, ended, c.reason, c.played, c.lost, c.underruns, c.forged
    )


async def from_browser(
    controller: Controller,
    request: LiveRequest,
    recording: AsyncIterator[bytes],
    stop: asyncio.Event,
    progress: Progress | None = None,
) -> LiveReport:
    """Send a browser's recording (MediaRecorder chunks, decoded by ffmpeg) through a running controller,
    the same path as `live mic`; it ends when the recording does or at `stop`. Authorize first."""
    encoding = LiveEncoding(stall_s=request.stall_s)
    packets = browser_packets(request.source, recording, encoding=encoding)
    return await stream_live(controller, request, progress, stop, packets=packets)
