"""Synchronised start on the cluster: its clock offset from the controller's, from command time stamps."""

from __future__ import annotations

MAX_SAMPLES = 32
MAX_PLAUSIBLE_MS = 3_600_000
"""A sample further off than an hour is a command that waited in the broker, not a clock offset."""


class OffsetEstimator:
    """Estimates (device clock − controller clock) as the smallest (received − issued_at) seen lately.

    Every sample is the offset plus the command's delivery time, which is never negative, so the
    minimum over a window is the offset plus the fastest delivery: a few milliseconds on a live link.
    Commands queued by the broker while the link was down only add large samples, which the minimum
    ignores.
    """

    def __init__(self, window: int = MAX_SAMPLES) -> None:
        self._window = window
        self._samples: list[int] = []
        """The latest samples, oldest first: a list, as a deque takes 760 bytes even empty (per cluster)."""

    def sample(self, issued_at_ms: int, received_ms: int) -> None:
        """Record one command: the controller's time stamp and this device's clock on arrival."""
        delta = received_ms - issued_at_ms
        if abs(delta) <= MAX_PLAUSIBLE_MS:
            self._samples.append(delta)
            if len(self._samples) > self._window:
                del self._samples[0]

    @property
    def samples(self) -> int:
        """How many samples the window holds."""
        return len(self._samples)

    @property
    def offset_ms(self) -> int:
        """The current estimate; 0 before any sample."""
        return min(self._samples) if self._samples else 0

    def to_device(self, controller_ms: int | None) -> int | None:
        """A controller time stamp on this device's clock."""
        return None if controller_ms is None else controller_ms + self.offset_ms
