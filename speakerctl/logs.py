"""Rate-limited warnings: per kind, the first in each interval is logged, the rest counted and summarised."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0
    last_source: str = ""


class Throttled:
    """One line per kind per interval, then "N more <kind> in the last 10 s, last from X"."""

    def __init__(
        self,
        logger: logging.Logger,
        monotonic: Callable[[], float],
        interval_s: float = 10.0,
        level: int = logging.WARNING,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.level = level
        self._monotonic = monotonic
        self._windows: dict[str, _Window] = {}

    def log(self, kind: str, source: str, message: str, *args: object, exc_info: bool = False) -> None:
        """Log `message` unless a `kind` line went out within the interval; then count it against `source`."""
        now = self._monotonic()
        window = self._windows.get(kind)
        if window is not None and now - window.start < self.interval_s:
            window.suppressed += 1
            window.last_source = source
            return
        if window is not None:
            self._summarise(kind, window, now)
        self._windows[kind] = _Window(now)
        self.logger.log(self.level, message, *args, exc_info=exc_info)

    def flush(self) -> None:
        """Summarise every kind whose interval has passed with lines held back."""
        now = self._monotonic()
        for kind, window in list(self._windows.items()):
            if now - window.start >= self.interval_s:
                self._summarise(kind, window, now)
                del self._windows[kind]

    def _summarise(self, kind: str, window: _Window, now: float) -> None:
        if window.suppressed:
            self.logger.log(
                self.level,
                "%d more %s in the last %.0f s, last from %s",
                window.suppressed,
                kind,
                now - window.start,
                window.last_source,
            )
