"""A live stream from the controller's side: announce it, publish its frames once, follow every cluster.

The session paces frames on the clock it is given: frame k carries capture_ts = epoch + its position in
the stream, and goes out when the clock reaches it. A source that falls behind (a relay whose station
lags) moves the epoch forward instead of sending stale frames, so clusters see a gap they conceal.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from speakerctl.broker.link import Link
from speakerctl.clock import Clock, to_ms
from speakerctl.controller.ingest import Ingestor
from speakerctl.errors import LinkError, LiveSourceError
from speakerctl.protocol import Command, Priority, codec
from speakerctl.protocol.limits import LIVE_ANNOUNCE_MS
from speakerctl.protocol.live import (
    LIVE_FEATURE,
    LiveEnd,
    LiveEvent,
    LiveFrame,
    LiveStart,
    LiveState,
    LiveStop,
    live_topic,
    pack_frame,
    public_key_text,
)
from speakerctl.protocol.signing import Signer

MQTT_OVERHEAD = 4
"""Bytes an MQTT 3.1.1 QoS 0 publish adds besides its topic: fixed header (2) and topic length (2)."""
SOURCE_FAILED = "source_failed"
"""A stream's end reason when its source failed (unreachable, not audio, stalled)."""
NO_LIVE = "no live support (firmware before protocol v1.2)"
OFFLINE = "offline"
LAG_REBASE_S = 0.5
"""A source this far behind real time moves the stream's epoch forward (clusters conceal the gap)."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """How a live stream is sent."""

    priority: Priority = Priority.NORMAL
    packet_ms: int = 20
    frame_ms: int = 400
    """400 ms frames keep the signature and topic overhead under 10 % (bench/live.py)."""
    delay_ms: int = 1500
    stall_ms: int = 10_000
    duration_s: float | None = None
    """Stop after this long; None: until the source ends or the session is cancelled."""
    title: str = ""
    source: str = ""
    announce_ms: int = LIVE_ANNOUNCE_MS // 2
    preroll_ms: int = 500
    """Between live_start and the first frame, so clusters can subscribe to the frame topic first."""
    stop_grace_s: float = 3.0
    """After live_stop, how long to wait (beyond delay_ms) for every cluster's `ended`."""


@dataclass(slots=True)
class ClusterLive:
    """What one targeted cluster did with the stream."""

    device_id: str
    skipped: str = ""
    started_ms: int | None = None
    ended_ms: int | None = None
    reason: str = ""
    played: int = 0
    lost: int = 0
    underruns: int = 0
    forged: int = 0

    @property
    def listening(self) -> bool:
        """Playing now."""
        return self.started_ms is not None and self.ended_ms is None

    def take(self, event: LiveEvent) -> None:
        """Fold a live event in (counters are cumulative on the cluster)."""
        self.played, self.lost = max(self.played, event.played), max(self.lost, event.lost)
        self.underruns, self.forged = max(self.underruns, event.underruns), max(self.forged, event.forged)
        if event.state is LiveState.STARTED:
            self.started_ms, self.ended_ms, self.reason = event.ts_ms, None, ""
        elif event.state is LiveState.ENDED:
            self.ended_ms, self.reason = event.ts_ms, event.reason.value if event.reason else ""


@dataclass(slots=True)
class LiveReport:
    """A stream's outcome: frames sent, bytes out, and every cluster's part."""

    stream_id: str
    clusters: dict[str, ClusterLive]
    frames: int = 0
    audio_ms: int = 0
    payload_bytes: int = 0
    egress_bytes: int = 0
    end_reason: str = ""
    source_outages: int = 0
    """Times a relay's source went away and silence was sent while it was reopened."""

    @property
    def listening(self) -> int:
        """Clusters playing now."""
        return sum(c.listening for c in self.clusters.values())

    @property
    def underrunning(self) -> int:
        """Clusters that reported at least one underrun."""
        return sum(c.underruns > 0 for c in self.clusters.values())

    @property
    def skipped(self) -> dict[str, str]:
        """Clusters not sent the stream, and why."""
        return {d: c.skipped for d, c in self.clusters.items() if c.skipped}


Progress = Callable[[LiveReport, float], None]
Listener = Callable[[LiveEvent], None]


async def send_stop(
    link: Link, signer: Signer, clock: Clock, cmd_topics: Sequence[str], stream: str, priority: Priority
) -> None:
    """Publish a signed live_stop for a stream another process runs (`speakerctl live stop`)."""
    now = to_ms(clock.now())
    command = Command(secrets.token_hex(8), now, now + LIVE_ANNOUNCE_MS, priority, LiveStop(stream))
    for topic in cmd_topics:
        await link.publish(topic, codec.encode(signer.sign_for(command, topic)), qos=1)


def _end_reason(exc: BaseException, so_far: str) -> str:
    """Why a stream that raised ended: its source failed, or it was stopped."""
    if isinstance(exc, LiveSourceError):
        return SOURCE_FAILED
    if isinstance(exc, BaseExceptionGroup) and exc.subgroup(LiveSourceError) is not None:
        return SOURCE_FAILED
    return so_far or LiveEnd.STOPPED.value


def stream_id(now: datetime) -> str:
    """A fresh stream id: `live-<UTC time>-<random>`."""
    return f"live-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def cluster_states(devices: Sequence[str], features: Mapping[str, frozenset[str]]) -> dict[str, ClusterLive]:
    """Every targeted cluster, the ones that cannot play live marked skipped with the reason."""
    states = {}
    for device in devices:
        seen = features.get(device)
        skipped = OFFLINE if seen is None else ("" if LIVE_FEATURE in seen else NO_LIVE)
        states[device] = ClusterLive(device, skipped)
    return states


@dataclass(slots=True)
class LiveSession:
    """One stream: announced to `cmd_topics`, frames on its own topic, followed through the ingestor."""

    link: Link
    signer: Signer
    ingestor: Ingestor
    clock: Clock
    cmd_topics: Sequence[str]
    devices: Sequence[str]
    options: LiveOptions = field(default_factory=LiveOptions)
    listener: Listener | None = None
    """Told every live event (the application layer records them)."""
    stream_id: str = ""
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    """Set it to end the stream cleanly at the next frame (Ctrl-C: cancelling works too, but Python
    3.11's wait_for can swallow a cancellation that races a completed publish)."""
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    report: LiveReport = field(init=False)
    _epoch_ms: int = 0
    _mono0: float = 0.0
    _stopping: bool = False
    _all_ended: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.stream_id = self.stream_id or stream_id(self.clock.now())
        self.report = LiveReport(self.stream_id, cluster_states(self.devices, self.ingestor.features))

    @property
    def start(self) -> LiveStart:
        """The body of this stream's live_start."""
        o = self.options
        key = public_key_text(self.key.public_key())
        return LiveStart(
            self.stream_id,
            key,
            o.packet_ms,
            o.frame_ms,
            o.delay_ms,
            o.stall_ms,
            title=o.title,
            source=o.source,
        )

    async def run(self, packets: AsyncIterator[bytes], progress: Progress | None = None) -> LiveReport:
        """Send the stream until the source ends, the duration is up, or cancellation; always stop it."""
        self.ingestor.track_live(self.stream_id, self._on_event)
        try:
            await self._announce()
            await asyncio.sleep(self.options.preroll_ms / 1000)
            # A task of our own rather than a TaskGroup, so a source error reaches the caller as itself.
            announcer = asyncio.create_task(self._reannounce())
            try:
                self.report.end_reason = await self._send(packets, progress)
            finally:
                announcer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await announcer
        except BaseException as exc:
            self.report.end_reason = _end_reason(exc, self.report.end_reason)
            await asyncio.shield(self._stop())
            raise
        else:
            await self._stop()
        finally:
            self.ingestor.untrack_live(self.stream_id)
        return self.report

    # -- commands -------------------------------------------------------------------------

    def _command(self, body: LiveStart | LiveStop) -> Command:
        now = to_ms(self.clock.now())
        ttl = 3 * self.options.announce_ms
        return Command(secrets.token_hex(8), now, now + ttl, self.options.priority, body)

    async def _publish_command(self, body: LiveStart | LiveStop) -> None:
        command = self._command(body)
        for topic in self.cmd_topics:
            payload = codec.encode(self.signer.sign_for(command, topic))
            await self.link.publish(topic, payload, qos=1)
            self.report.egress_bytes += len(payload) + len(topic) + MQTT_OVERHEAD + 2

    async def _announce(self) -> None:
        await self._publish_command(self.start)

    async def _reannounce(self) -> None:
        while True:
            await asyncio.sleep(self.options.announce_ms / 1000)
            if self._stopped_elsewhere(all_of=False):
                continue  # announcing now would start again what `live stop` just ended
            with contextlib.suppress(LinkError):
                await self._announce()

    async def _stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(LinkError):
            last = self.report.frames - 1 if self.report.frames else None
            await self._publish_command(LiveStop(self.stream_id, last))
        if not self._settled():
            with contextlib.suppress(TimeoutError):
                wait_s = self.options.delay_ms / 1000 + self.options.stop_grace_s
                await asyncio.wait_for(self._all_ended.wait(), wait_s)

    # -- frames ---------------------------------------------------------------------------

    async def _send(self, packets: AsyncIterator[bytes], progress: Progress | None) -> str:
        o = self.options
        per_frame, topic = o.frame_ms // o.packet_ms, live_topic(self.stream_id)
        self._epoch_ms, self._mono0 = to_ms(self.clock.now()), self.clock.monotonic()
        batch: list[bytes] = []
        async for packet in packets:
            batch.append(packet)
            if len(batch) == per_frame:
                await self._send_frame(topic, batch)
                batch = []
                if progress is not None:
                    progress(self.report, self.clock.monotonic() - self._mono0)
            if self._over():
                timed = o.duration_s is not None and not self.stop_requested.is_set()
                return LiveEnd.FINISHED.value if timed else LiveEnd.STOPPED.value
        if batch:
            await self._send_frame(topic, batch)
        return LiveEnd.FINISHED.value

    def _over(self) -> bool:
        o, report = self.options, self.report
        if self.stop_requested.is_set():
            return True
        if o.duration_s is not None and report.audio_ms >= o.duration_s * 1000:
            return True
        return self._stopped_elsewhere(all_of=True)

    def _stopped_elsewhere(self, *, all_of: bool) -> bool:
        """Clusters that played the stream ended it on a live_stop we did not send (`live stop`)."""
        if self._stopping:
            return False
        played = [c for c in self.report.clusters.values() if c.started_ms is not None or c.ended_ms]
        stopped = [c.ended_ms is not None and c.reason == LiveEnd.STOPPED.value for c in played]
        return bool(played) and (all(stopped) if all_of else any(stopped))

    async def _send_frame(self, topic: str, packets: list[bytes]) -> None:
        position_ms = self.report.audio_ms
        # A frame leaves once its last sample has been captured, as from a microphone or a station:
        # a file played as if live is held to the same timing.
        await self._pace(position_ms + len(packets) * self.options.packet_ms)
        frame = LiveFrame(self.report.frames, self._epoch_ms + position_ms, tuple(packets))
        payload = pack_frame(frame, self.stream_id, self.key)
        await self.link.publish(topic, payload, qos=0)
        report = self.report
        report.frames += 1
        report.audio_ms += len(packets) * self.options.packet_ms
        report.payload_bytes += len(payload)
        report.egress_bytes += len(payload) + len(topic) + MQTT_OVERHEAD

    async def _pace(self, position_ms: int) -> None:
        lag_s = self.clock.monotonic() - (self._mono0 + position_ms / 1000)
        if lag_s > LAG_REBASE_S:
            # The source fell behind real time: stamp from now on, leaving a gap the clusters conceal.
            self._mono0 += lag_s
            self._epoch_ms += int(lag_s * 1000)
        elif lag_s < 0:
            await asyncio.sleep(-lag_s)

    # -- events ---------------------------------------------------------------------------

    def _on_event(self, event: LiveEvent) -> None:
        cluster = self.report.clusters.get(event.device_id)
        if cluster is None:
            return  # a cluster outside the targets (a zone changed under us): not ours to count
        cluster.take(event)
        if self.listener is not None:
            self.listener(event)
        if self._stopping and self._settled():
            self._all_ended.set()

    def _settled(self) -> bool:
        """Every cluster sent the stream has reported its end."""
        return all(c.ended_ms is not None for c in self.report.clusters.values() if not c.skipped)
