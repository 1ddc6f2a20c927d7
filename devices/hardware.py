"""The hardware a cluster agent drives, as small interfaces; real units and the simulator implement them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from speakerctl.protocol import Link, Power


class Clock(Protocol):
    """The device's idea of the time."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    """The host's clock."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch, UTC."""
        return time.time_ns() // 1_000_000


class AudioOutput(Protocol):
    """Decodes and plays a file through the amplifier; cancellation stops the sound at once."""

    async def play(
        self, path: Path, codec: str, duration_ms: int, volume: int, *, offset_ms: int = 0
    ) -> None:
        """Play from `offset_ms` to the end, or raise to report a playback failure."""
        ...


class LiveOutput(Protocol):
    """Where a cluster sends live audio (protocol §18): an Opus decoder feeding the amplifier."""

    def play_frame(self, stream_id: str, seq: int, packets: Sequence[bytes], packet_ms: int) -> None:
        """Queue the frame's Opus packets for output now, without blocking."""
        ...

    def conceal(self, stream_id: str, seq: int, packets: int, packet_ms: int) -> None:
        """Fill a missing frame's time (packet loss concealment, or silence)."""
        ...


class Amplifier(Protocol):
    """The power amplifier and horn line."""

    @property
    def state(self) -> str:
        """'ok', 'off' or 'fault'."""
        ...


class Telemetry(Protocol):
    """Readings that go into the status message."""

    def link(self) -> Link:
        """Uplink type and signal."""
        ...

    def power(self) -> Power:
        """Power source and battery."""
        ...

    def temperature_c(self) -> float | None:
        """Enclosure temperature, if the unit has a sensor."""
        ...

    def clock_offset_ms(self) -> int | None:
        """How far the unit's clock is from true time (from NTP or GPS), if it knows."""
        ...


@dataclass(frozen=True, slots=True)
class Hardware:
    """Everything the agent needs from the box it runs on."""

    output: AudioOutput
    amplifier: Amplifier
    telemetry: Telemetry
    clock: Clock
    codecs: tuple[str, ...] = ("opus", "mp3")
    live: LiveOutput | None = None
    """The live-audio output; None: the unit plays no live streams (it does not announce `live`)."""
    shared_loop: bool = False
    """True in the simulator, where hundreds of units share one event loop: a start timer that runs
    late because the others' work held the loop counts from when it was due (a unit of its own is idle
    as its start comes). A real unit leaves it False: its timer is as late as its sound."""
