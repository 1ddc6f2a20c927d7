"""Time, passed in: the controller never calls datetime.now() itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The host's wall clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to; for tests."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        """The pinned time."""
        return self._at

    def advance(self, delta: timedelta) -> None:
        """Move the pinned time."""
        self._at += delta


def to_ms(at: datetime) -> int:
    """Milliseconds since the Unix epoch."""
    return int(at.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """A UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def monotonic() -> float:
    """Seconds on a clock that never jumps, for timeouts."""
    return time.monotonic()
