"""A cluster's live play-out without a broker: late join, loss concealment, stall, forged frames."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from waiting import Observed

from devices.live import LiveReceiver
from devices.player import Player
from devices.schedule import OffsetEstimator
from simulator.hardware import SimAmplifier, SimClock, SimOutput
from speakerctl.protocol import Command, Priority
from speakerctl.protocol.live import LiveEvent, LiveFrame, LiveStart, LiveState, pack_frame, public_key_text

KEY = Ed25519PrivateKey.generate()
STREAM = "s1"
FRAME_MS = 40  # two 20 ms packets
DELAY_MS = 300


@dataclass
class Cluster:
    """A receiver, its player and output, and the events it reported."""

    receiver: LiveReceiver
    output: SimOutput
    clock: SimClock
    events: Observed[LiveEvent]
    offset: OffsetEstimator

    def start(self, stall_ms: int = 1000) -> None:
        now = self.clock.now_ms()
        self.offset.sample(now, now)  # the agent samples every verified command's issued_at
        body = LiveStart(STREAM, public_key_text(KEY.public_key()), 20, FRAME_MS, DELAY_MS, stall_ms)
        assert self.receiver.start(Command("c1", now, now + 30_000, Priority.NORMAL, body), body)

    def send(self, seq: int, capture_ms: int, key: Ed25519PrivateKey = KEY) -> None:
        frame = LiveFrame(seq, capture_ms, (bytes([seq % 256]) * 60, b"\x01" * 60))
        self.receiver.on_frame(STREAM, pack_frame(frame, STREAM, key))

    async def ended(self) -> LiveEvent:
        await self.events.wait_for(lambda es: any(e.state is LiveState.ENDED for e in es), "the stream's end")
        return next(e for e in self.events.items if e.state is LiveState.ENDED)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    clock, output, events, offset = SimClock(), SimOutput(), Observed[LiveEvent](), OffsetEstimator()
    player = Player(output, SimAmplifier(), clock, lambda *_: None)
    receiver = LiveReceiver("dev-1", player, output, clock, offset, events.add, lambda _: None)
    task = asyncio.create_task(player.run())
    yield Cluster(receiver, output, clock, events, offset)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stream(
    cluster: Cluster, seqs: range, first_capture_ms: int, skip: frozenset[int] = frozenset()
) -> None:
    """Send frames in real time, as the controller would (each once its last sample is captured)."""
    for seq in seqs:
        capture = first_capture_ms + (seq - seqs.start) * FRAME_MS
        await asyncio.sleep(max(0, capture + FRAME_MS - cluster.clock.now_ms()) / 1000)
        if seq not in skip:
            cluster.send(seq, capture)


async def test_a_late_joiner_starts_at_the_live_point(cluster: Cluster) -> None:
    cluster.start()
    now = cluster.clock.now_ms()
    for seq in range(10):  # frames whose play-out time has passed: what a late joiner's broker replays
        cluster.send(seq, now - 2000 + seq * FRAME_MS)
    await _stream(cluster, range(10, 30), now)
    cluster.receiver.stop(STREAM, 29)
    ended = await cluster.ended()
    assert [f.seq for f in cluster.output.live_frames] == list(range(10, 30))
    assert (ended.played, ended.lost, ended.reason) == (20, 0, "stopped")


async def test_a_missing_frame_is_concealed_and_counted(cluster: Cluster) -> None:
    cluster.start()
    await _stream(cluster, range(20), cluster.clock.now_ms(), skip=frozenset({7}))
    cluster.receiver.stop(STREAM, 19)
    ended = await cluster.ended()
    assert 7 not in [f.seq for f in cluster.output.live_frames]
    assert cluster.output.concealed == 1 and (ended.played, ended.lost) == (19, 1)


async def test_a_stream_that_stops_arriving_ends_as_stalled(cluster: Cluster) -> None:
    cluster.start(stall_ms=1000)
    await _stream(cluster, range(5), cluster.clock.now_ms())
    ended = await cluster.ended()
    assert ended.reason == "stalled" and ended.played == 5
    assert any(e.state is LiveState.UNDERRUN for e in cluster.events.items)


async def test_forged_frames_are_counted_and_never_played(cluster: Cluster) -> None:
    cluster.start()
    now = cluster.clock.now_ms()
    cluster.send(0, now, key=Ed25519PrivateKey.generate())
    await _stream(cluster, range(1, 6), now + FRAME_MS)
    cluster.receiver.stop(STREAM, 5)
    ended = await cluster.ended()
    assert ended.forged == 1 and [f.seq for f in cluster.output.live_frames] == [1, 2, 3, 4, 5]
