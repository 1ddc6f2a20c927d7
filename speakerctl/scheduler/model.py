"""Schedules and their runs: plain frozen values, no I/O."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from speakerctl.errors import UsageError
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.rules import Rule

DEFAULT_WINDOW_S = 900
"""How late a broadcast may still air when the controller was down at its time (15 minutes)."""


class RunState(StrEnum):
    """What became of one occurrence of a schedule."""

    PUSHED = "pushed"
    """Sent ahead with its start time: the clusters air it from their caches on their own."""
    AIRED = "aired"
    LATE = "late"
    MISSED = "missed"
    CANCELLED = "cancelled"


MAX_RELAY_S = 24 * 3600
"""The longest scheduled relay."""


@dataclass(frozen=True, slots=True)
class Relay:
    """A station relayed live (tiếp sóng) instead of a bulletin: its stream URL, for how long."""

    url: str
    duration_s: int

    def __post_init__(self) -> None:
        if not self.url.lower().startswith(("http://", "https://")):
            raise UsageError(
                f"a relay needs an http(s):// stream URL, not {self.url[:80]!r}",
                hint="e.g. --relay https://stream.vov.vn/vov1.ogg",
            )
        if len(self.url) > 500:
            raise UsageError("the relay URL is longer than 500 characters")
        if not 0 < self.duration_s <= MAX_RELAY_S:
            raise UsageError("a relay lasts 1 s .. 24 h", hint="e.g. --for 30m")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A bulletin (or a relay), where it goes, and when."""

    id: str
    bulletin_id: int
    targets: tuple[str, ...]
    rule: Rule
    priority: Priority = Priority.NORMAL
    on_preempt: PreemptPolicy = PreemptPolicy.RESUME
    window_s: int = DEFAULT_WINDOW_S
    paused: bool = False
    name: str = ""
    revision: int = 1
    created_at: datetime | None = None
    """Occurrences before this never count as missed."""
    approved_by: str = ""
    """The user who let it air (its approver, or its author when no approval was needed)."""
    relay: Relay | None = None
    """A relay schedule airs this station live for its duration; its bulletin_id is 0."""

    def __post_init__(self) -> None:
        if not self.targets:
            raise UsageError("a schedule needs a target", hint="pass --to ZONE")
        if not 0 < self.window_s <= 86_400:
            raise UsageError(f"the window must be 1 s .. 24 h, got {self.window_s} s")

    def length_ms(self, durations: Mapping[int, int]) -> int:
        """How long one occurrence airs: the relay's duration, else its bulletin's length."""
        return self.relay.duration_s * 1000 if self.relay else durations.get(self.bulletin_id, 0)

    @property
    def job_id(self) -> str:
        """The stable id of its APScheduler job."""
        return f"schedule:{self.id}"

    def bumped(self, **changes: object) -> Schedule:
        """A copy with changes and the next revision."""
        return replace(self, revision=self.revision + 1, **changes)  # type: ignore[arg-type]


def new_schedule_id() -> str:
    """A short random id, e.g. 'sch-3f9a1c'."""
    return f"sch-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class Run:
    """One occurrence of a schedule and what became of it."""

    schedule_id: str
    fire_at: datetime
    state: RunState
    broadcast_id: str = ""
    detail: str = ""
    recorded_at: datetime | None = None
