"""Volume by time of day: quiet hours per zone or everywhere, which emergencies override."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from speakerctl.errors import ConfigError
from speakerctl.protocol import Priority

_ENTRY = re.compile(r"(?:(?P<zone>[a-z0-9][a-z0-9._-]*)@)?(?P<start>[\d:]+)-(?P<end>[\d:]+)=(?P<volume>\d+)")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A volume for a local time span (which may cross midnight), in one zone or everywhere."""

    start: time
    end: time
    volume: int
    zone: str | None = None

    def covers(self, local: time) -> bool:
        """Whether a local time of day falls in the span [start, end)."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class VolumePlan:
    """Which volume a scheduled broadcast plays at, by zone and local time."""

    rules: tuple[QuietHours, ...]
    emergency_volume: int
    zone: ZoneInfo

    def volume(self, targets: tuple[str, ...], at: datetime, priority: Priority) -> int | None:
        """The volume for a broadcast starting at `at`; None leaves each cluster's own volume."""
        if priority is Priority.EMERGENCY:
            return self.emergency_volume
        local = at.astimezone(self.zone).time()
        # A rule for a named target zone beats a rule for everywhere; the quietest of those wins.
        for scoped in (True, False):
            hits = [
                r.volume
                for r in self.rules
                if r.covers(local) and (r.zone in targets if scoped else r.zone is None)
            ]
            if hits:
                return min(hits)
        return None


def parse_quiet_hours(text: str) -> tuple[QuietHours, ...]:
    """'21:00-05:00=40,st-ke-sach@22:00-04:30=25' → rules; ConfigError saying which entry is wrong."""
    rules: list[QuietHours] = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        m = _ENTRY.fullmatch(entry)
        try:
            if m is None:
                raise ValueError("expected [ZONE@]HH:MM-HH:MM=VOLUME")
            volume = int(m["volume"])
            if not 0 <= volume <= 100:
                raise ValueError("volume must be 0..100")
            rules.append(
                QuietHours(time.fromisoformat(m["start"]), time.fromisoformat(m["end"]), volume, m["zone"])
            )
        except ValueError as exc:
            raise ConfigError(f"quiet_hours entry {entry!r}: {exc}", hint="e.g. 21:00-05:00=40") from None
    return tuple(rules)
