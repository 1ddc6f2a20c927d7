"""Fault injection for simulated clusters: a lossy, slow downlink, and power cuts.

`FaultyDownlink` sits between a cluster's MQTT session and its agent (`Link.wrap_handler`): it drops
or corrupts content chunks and delays every message by a fixed latency plus its size over a
bandwidth cap (a 3G link carries one message at a time). `FleetRunner` runs each cluster in a task of
its own so a scenario can cut the power of some (no DISCONNECT: the broker sends their Will) and
bring them back later on the same storage.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self

from devices.agent import DeviceAgent
from simulator.hardware import SimOutput
from speakerctl.broker.link import Incoming
from speakerctl.protocol.limits import CHUNK_HEADER_SIZE, TOPIC_ROOT

Handler = Callable[[Incoming], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """What goes wrong on each cluster's downlink; all zero is a perfect link."""

    chunk_loss: float = 0.0
    """Probability that a content chunk frame never arrives."""
    corrupt_chunks: float = 0.0
    """Probability that a chunk frame arrives with one data byte flipped."""
    latency_ms: int = 0
    """Added to every message."""
    bandwidth_kbps: int = 0
    """Downlink cap in kbit/s; 0: none."""
    packet_loss: float = 0.0
    """Probability that a message meets a lost TCP segment: it, and everything queued behind it (TCP
    delivers in order), waits `retransmit_ms`. MQTT over TCP loses nothing; loss shows as delay."""
    retransmit_ms: int = 300
    live_drop: float = 0.0
    """Probability that a live frame never arrives (a lossy path that does not retransmit)."""

    def __post_init__(self) -> None:
        for name in ("chunk_loss", "corrupt_chunks", "packet_loss", "live_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if self.latency_ms < 0 or self.bandwidth_kbps < 0:
            raise ValueError("latency_ms and bandwidth_kbps must not be negative")

    def delay_s(self, size: int) -> float:
        """How long a message of `size` bytes takes on this link."""
        transfer = size * 8 / (self.bandwidth_kbps * 1000) if self.bandwidth_kbps else 0.0
        return self.latency_ms / 1000 + transfer


class FaultyDownlink:
    """Wraps a cluster's message handler with the faults of a profile."""

    def __init__(self, inner: Handler, profile: FaultProfile, rng: random.Random) -> None:
        self.inner = inner
        self.profile = profile
        self.rng = rng
        self.dropped = 0
        self.corrupted = 0

    async def __call__(self, message: Incoming) -> None:
        if message.topic.startswith(f"{TOPIC_ROOT}/content/"):
            if self.rng.random() < self.profile.chunk_loss:
                self.dropped += 1
                return
            if self.rng.random() < self.profile.corrupt_chunks and len(message.payload) > CHUNK_HEADER_SIZE:
                message = Incoming(message.topic, _flip(message.payload, self.rng), message.retain)
                self.corrupted += 1
        if message.topic.startswith(f"{TOPIC_ROOT}/live/") and self.rng.random() < self.profile.live_drop:
            self.dropped += 1
            return
        delay = self.profile.delay_s(len(message.payload))
        if self.profile.packet_loss and self.rng.random() < self.profile.packet_loss:
            delay += self.profile.retransmit_ms / 1000
        if delay:
            await asyncio.sleep(delay)
            # It reaches the cluster only now: the latency is part of its delivery time.
            message = replace(message, received=asyncio.get_running_loop().time())
        await self.inner(message)


def _flip(frame: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(CHUNK_HEADER_SIZE, len(frame))
    return frame[:at] + bytes([frame[at] ^ 0xFF]) + frame[at + 1 :]


CANCEL_ROUNDS = 20
"""Half-second rounds of cancelling a cluster's task before `power_cut` gives up on it loudly."""


class FleetRunner:
    """Runs agents one task each, so that a scenario can power clusters off and on."""

    def __init__(self) -> None:
        self._group = asyncio.TaskGroup()
        self._tasks: dict[str, tuple[DeviceAgent, asyncio.Task[None]]] = {}

    async def __aenter__(self) -> Self:
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await _cancel([task for _, task in self._tasks.values()])
        await self._group.__aexit__(exc_type, exc, tb)

    def start(self, agent: DeviceAgent) -> None:
        """Power a cluster on."""
        name = agent.config.device_id
        self._tasks[name] = (agent, self._group.create_task(agent.run(), name=name))

    async def power_cut(self, names: Iterable[str]) -> None:
        """Cut the power of clusters: their tasks stop at once, nothing queued is flushed.

        The MQTT client library still says DISCONNECT on the way out, so the broker publishes no Will;
        shutting the socket first (`Link.drop`) leaves aiomqtt publishes pending forever on cancel.
        """
        cut = [self._tasks.pop(n) for n in names if n in self._tasks]
        for agent, _ in cut:
            if isinstance(agent.hw.output, SimOutput):
                agent.hw.output.powered = False  # the amplifier goes silent at once, too
        await _cancel([task for _, task in cut])


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel and wait; cancel again what ignored it; fail loudly, naming it, rather than hang.

    Re-cancelling reaches only the agent's own task: a TaskGroup cancels its children once, so a
    child that swallowed that cancel (Python 3.11's asyncio.wait_for does, when what it awaits
    completes in the same instant) would keep the cluster "on" for ever.
    """
    pending = set(tasks)
    for _ in range(CANCEL_ROUNDS):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    if not pending:
        return
    raise RuntimeError(f"clusters that would not power off: {'; '.join(map(_where, pending))}")


def _where(task: asyncio.Task[None]) -> str:
    frames = task.get_stack()
    at = f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames else "?"
    return f"{task.get_name()} waiting at {at}"
