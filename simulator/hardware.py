"""Simulated cluster hardware: a player that takes the real (optionally scaled) time, telemetry with noise."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speakerctl.protocol import Link, Power


class SimClock:
    """The host clock shifted by a fixed offset, as a cluster with a drifting RTC would be."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch as this device believes."""
        return time.time_ns() // 1_000_000 + self.offset_ms


@dataclass(frozen=True, slots=True)
class PlayedFrame:
    """A live frame as the simulated output played it: at which host time, and what it held."""

    stream_id: str
    seq: int
    packets: tuple[bytes, ...]
    host_ms: float


@dataclass(slots=True)
class SimOutput:
    """Plays for the content's duration divided by `time_scale`, and remembers what it played."""

    time_scale: float = 1.0
    played: list[str] = field(default_factory=list)
    fail_next: str | None = None
    started_ms: list[int] = field(default_factory=list)
    """True (host) time at which each playback began, for measuring start skew across a fleet."""
    volumes: list[int] = field(default_factory=list)
    powered: bool = True
    """False once the cluster's power is cut: a sound cut off then was not played to the end."""
    live_frames: list[PlayedFrame] = field(default_factory=list)
    """Live frames in the order they were played (a real unit would decode them to the DAC)."""
    concealed: int = 0
    """Live frames filled with concealment because they were missing at their time."""

    async def play(
        self, path: Path, codec: str, duration_ms: int, volume: int, *, offset_ms: int = 0
    ) -> None:
        """Sleep for the scaled duration; a real unit would decode `path` to the DAC."""
        if self.fail_next is not None:
            reason, self.fail_next = self.fail_next, None
            raise RuntimeError(reason)
        if not path.exists():  # noqa: ASYNC240 - one stat of a local file
            raise FileNotFoundError(f"content file {path.name} vanished from the cache")
        self.started_ms.append(time.time_ns() // 1_000_000)
        self.volumes.append(volume)
        await asyncio.sleep(max(0, duration_ms - offset_ms) / 1000 / self.time_scale)
        if not self.powered:
            # The cut came in the same turn of the event loop as the end of the sound: the
            # power went first (program order), so the sound did not end; the cut cancels us next.
            await asyncio.Event().wait()
        self.played.append(path.stem)

    def play_frame(self, stream_id: str, seq: int, packets: Sequence[bytes], packet_ms: int) -> None:
        """Record the frame with the host time it went out."""
        self.live_frames.append(PlayedFrame(stream_id, seq, tuple(packets), time.time_ns() / 1e6))

    def conceal(self, stream_id: str, seq: int, packets: int, packet_ms: int) -> None:
        """Count a concealed frame."""
        self.concealed += 1


@dataclass(slots=True)
class SimAmplifier:
    """An amplifier whose state a scenario can change."""

    state: str = "ok"


@dataclass(slots=True)
class SimTelemetry:
    """Link and power readings with realistic variation."""

    network: str = "4g"
    source: str = "mains"
    battery_pct: int | None = None
    rng: random.Random = field(default_factory=random.Random)
    offset_ms: int = 0
    ambient_c: float = 31.0

    def link(self) -> Link:
        """Signal around a per-network typical level."""
        if self.network == "wired":
            return Link("wired", None)
        typical = {"4g": -85, "3g": -95, "2g": -100, "wifi": -60}.get(self.network, -90)
        return Link(self.network, typical + int(self.rng.gauss(0, 6)))

    def temperature_c(self) -> float:
        """A box on a pole in the Mekong delta: warm, and a little noisy."""
        return round(self.ambient_c + self.rng.gauss(0, 1.5), 1)

    def clock_offset_ms(self) -> int:
        """The simulated clock's offset (a real unit measures it against NTP)."""
        return self.offset_ms

    def power(self) -> Power:
        """Mains, or a battery that drains slowly."""
        if self.source == "battery" and self.battery_pct is not None:
            self.battery_pct = max(0, self.battery_pct - self.rng.choice((0, 0, 1)))
        return Power(self.source, self.battery_pct)
