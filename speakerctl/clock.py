"""Time, passed in: the controller, scheduler and web never read the host's clocks themselves."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps, for intervals and timeouts."""
        ...


class SystemClock:
    """The host's wall clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on the host's monotonic clock."""
        return time.monotonic()


class FixedClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        """The pinned time."""
        return self._at

    def monotonic(self) -> float:
        """The pinned time in seconds: it moves only with `advance`."""
        return self._at.timestamp()

    def advance(self, delta: timedelta) -> None:
        """Move the pinned time."""
        self._at += delta


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
_MIN_MS = (EARLIEST - EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (LATEST - EPOCH) // timedelta(milliseconds=1)


def to_ms(at: datetime) -> int:
    """Milliseconds since the Unix epoch."""
    return int(at.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """A UTC datetime from epoch milliseconds, exact; total: clamped to the years 1..9999."""
    return EPOCH + timedelta(milliseconds=min(max(ms, _MIN_MS), _MAX_MS))
