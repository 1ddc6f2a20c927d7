"""Live streams on the cluster (protocol §18): verify frames, buffer them by seq, play them in step."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from devices.hardware import Clock, LiveOutput
from devices.player import LiveJob, Player
from devices.schedule import OffsetEstimator
from speakerctl.errors import ProtocolError, SignatureError
from speakerctl.protocol import Command
from speakerctl.protocol.live import (
    LIVE_CODEC,
    LiveEnd,
    LiveEvent,
    LiveFrame,
    LiveStart,
    LiveState,
    parse_public_key,
    unpack_frame,
)

log = logging.getLogger(__name__)
MAX_BUFFERED = 256
"""Frames held ahead of play-out at most; more means a sender running far ahead, and the oldest go."""
LOSS_REPORT_MS = 2_000
"""At most one frames_lost event per this interval."""


EmitLive = Callable[[LiveEvent], None]
Leave = Callable[[str], None]
"""Leave a stream's frame topic (the agent unsubscribes without blocking the caller)."""


@dataclass(slots=True)
class Stream:
    """One live stream on this cluster: its parameters, jitter buffer and counters."""

    start: LiveStart
    command: Command
    key: Ed25519PublicKey
    buffer: dict[int, LiveFrame] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    last_arrival_ms: int = 0
    next_seq: int | None = None
    first_seq: int | None = None
    played: int = 0
    underruns: int = 0
    forged: int = 0
    reported_lost: int = 0
    reported_at_ms: int = 0
    started: bool = False
    stopping: bool = False
    stop_after: int | None = None
    """The last frame to play once stopping (from live_stop)."""

    @property
    def finished(self) -> bool:
        """Stopped, and every frame up to the last has played or passed."""
        last = self.stop_after
        return self.stopping and (last is None or (self.next_seq is not None and self.next_seq > last))

    @property
    def lost(self) -> int:
        """Frames skipped or concealed between the first played and the last due."""
        if self.first_seq is None or self.next_seq is None:
            return 0
        return max(0, self.next_seq - self.first_seq - self.played)


class LiveReceiver:
    """The live streams of one cluster, fed by the agent, played through the player's queue."""

    def __init__(
        self,
        device_id: str,
        player: Player,
        output: LiveOutput,
        clock: Clock,
        offset: OffsetEstimator,
        emit: EmitLive,
        leave: Leave,
    ) -> None:
        self.device_id = device_id
        self._player = player
        self._output = output
        self._clock = clock
        self._offset = offset
        self._emit_event = emit
        self._leave = leave
        self.streams: dict[str, Stream] = {}
        self.forged = 0
        """Frames refused for their signature, over every stream (shown in tests and logs)."""
        self.late = 0

    def start(self, command: Command, start: LiveStart) -> bool:
        """Queue a stream announced by a verified live_start; whether it is new (to join its topic)."""
        if start.stream_id in self.streams or command.expired(self._clock.now_ms()):
            return False
        if start.codec != LIVE_CODEC:
            self._report(start.stream_id, LiveState.ENDED, None, LiveEnd.UNSUPPORTED_CODEC, start.codec)
            return False
        stream = Stream(start, command, parse_public_key(start.key), last_arrival_ms=self._clock.now_ms())
        self.streams[start.stream_id] = stream
        job = LiveJob(command, start.stream_id, partial(self._play, stream), self._ender(stream))
        self._player.submit(job)
        return True

    def stop(self, stream_id: str, last_seq: int | None = None) -> None:
        """End a stream on live_stop: once `last_seq` has played if it names one, else (and if queued) now."""
        stream = self.streams.get(stream_id)
        current = self._player.current
        if stream is None:
            return
        if last_seq is not None and current is not None and current.broadcast_id == stream_id:
            # Frames and commands travel on different topics: the last frames may still be on their way.
            stream.stopping, stream.stop_after = True, last_seq
            stream.arrived.set()
        else:
            self._player.stop(stream_id)

    def on_frame(self, stream_id: str, payload: bytes) -> None:
        """A frame from the broker: verified, then buffered by seq; bad ones counted and dropped."""
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # a stream we left (or never joined); the unsubscribe is on its way
        try:
            frame = unpack_frame(payload, stream_id, stream.key)
        except SignatureError:
            stream.forged += 1
            self.forged += 1
            return
        except ProtocolError as exc:
            log.info("%s: malformed live frame on %s: %s", self.device_id, stream_id, exc)
            return
        self._buffer(stream, frame)

    def _buffer(self, stream: Stream, frame: LiveFrame) -> None:
        if stream.next_seq is not None and frame.seq < stream.next_seq:
            self.late += 1
            return
        stream.buffer[frame.seq] = frame
        # Each frame is also a clock sample, like a command's issued_at: the controller sends it when
        # its last sample is captured (protocol §18.3).
        sent_ms = frame.capture_ts_ms + len(frame.packets) * stream.start.packet_ms
        self._offset.sample(sent_ms, self._clock.now_ms())
        if len(stream.buffer) > MAX_BUFFERED:
            del stream.buffer[min(stream.buffer)]
        stream.last_arrival_ms = self._clock.now_ms()
        stream.arrived.set()

    # -- play-out ----------------------------------------------------------------------------

    def _ender(self, stream: Stream) -> Callable[[str], None]:
        def ended(reason: str) -> None:
            self._end(stream, LiveEnd(reason))

        return ended

    async def _play(self, stream: Stream) -> str:
        """Play until the stream is stopped or stalls; preemption cancels it from the player."""
        while True:
            joined = await self._join(stream)
            if isinstance(joined, LiveEnd):
                return joined.value
            await self._play_from(stream, *joined)
            if stream.finished:
                return LiveEnd.STOPPED.value
            if stream.stopping:
                continue  # waiting for the stream's tail, not an underrun
            stream.underruns += 1
            self._report(stream.start.stream_id, LiveState.UNDERRUN, stream)

    def _due_ms(self, stream: Stream, frame: LiveFrame) -> int:
        """When a frame plays, on this cluster's clock."""
        return frame.capture_ts_ms + stream.start.delay_ms + self._offset.offset_ms

    async def _join(self, stream: Stream) -> tuple[int, int] | LiveEnd:
        """The first buffered frame still ahead of its play-out time (the live point), or why none comes."""
        while True:
            now = self._clock.now_ms()
            for seq in sorted(stream.buffer):
                frame = stream.buffer[seq]
                if self._due_ms(stream, frame) >= now:
                    return seq, self._due_ms(stream, frame)
                del stream.buffer[seq]
                self.late += 1
            if stream.finished:
                return LiveEnd.STOPPED
            if not await self._await_frame(stream):
                return LiveEnd.STOPPED if stream.stopping else LiveEnd.STALLED

    async def _await_frame(self, stream: Stream) -> bool:
        """Wait for a frame to arrive; False once nothing came for stall_ms."""
        stream.arrived.clear()
        quiet_ms = self._clock.now_ms() - stream.last_arrival_ms
        limit_ms = stream.start.delay_ms if stream.stopping else stream.start.stall_ms
        left_s = max(0, limit_ms - quiet_ms) / 1000
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.arrived.wait(), left_s)
            return True
        return False

    async def _play_from(self, stream: Stream, seq: int, due_ms: int) -> None:
        """Play frames in seq order, each at its time, until the buffer runs dry."""
        if stream.first_seq is None:
            stream.first_seq = seq
        while True:
            await self._sleep_until(due_ms)
            frame = stream.buffer.pop(seq, None)
            stream.next_seq = seq + 1
            if frame is not None:
                self._output_frame(stream, frame)
            elif not stream.buffer:
                stream.next_seq = seq  # not lost yet: it may still come, late, after an underrun
                return
            else:
                start = stream.start
                self._output.conceal(start.stream_id, seq, start.packets_per_frame, start.packet_ms)
            self._note_loss(stream)
            seq += 1
            nxt = stream.buffer.get(seq)
            due_ms = self._due_ms(stream, nxt) if nxt is not None else due_ms + stream.start.frame_ms

    def _output_frame(self, stream: Stream, frame: LiveFrame) -> None:
        start = stream.start
        self._output.play_frame(start.stream_id, frame.seq, frame.packets, start.packet_ms)
        stream.played += 1
        if not stream.started:
            stream.started = True
            self._report(start.stream_id, LiveState.STARTED, stream)

    def _note_loss(self, stream: Stream) -> None:
        now = self._clock.now_ms()
        if stream.lost > stream.reported_lost and now - stream.reported_at_ms >= LOSS_REPORT_MS:
            stream.reported_lost, stream.reported_at_ms = stream.lost, now
            self._report(stream.start.stream_id, LiveState.FRAMES_LOST, stream)

    async def _sleep_until(self, device_ms: int) -> None:
        delay = device_ms - self._clock.now_ms()
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    # -- reports ------------------------------------------------------------------------------

    def _end(self, stream: Stream, reason: LiveEnd) -> None:
        if self.streams.get(stream.start.stream_id) is not stream:
            return
        del self.streams[stream.start.stream_id]
        self._leave(stream.start.stream_id)
        self._report(stream.start.stream_id, LiveState.ENDED, stream, reason)

    def _report(
        self,
        stream_id: str,
        state: LiveState,
        stream: Stream | None,
        reason: LiveEnd | None = None,
        detail: str = "",
    ) -> None:
        counts = (stream.played, stream.lost, stream.underruns, stream.forged) if stream else (0, 0, 0, 0)
        now = self._clock.now_ms()
        event = LiveEvent(_msg_id(), self.device_id, now, stream_id, state, *counts, reason, detail[:200])
        self._emit_event(event)


def _msg_id() -> str:
    return secrets.token_hex(8)
