"""The HTTP API's inputs as pydantic models: path, query and body of each operation, and the error body.

The same models validate a request and describe it in the OpenAPI document (`openapi.py`), so the two
cannot disagree. Bodies are strict (a JSON `1` is not `true`) and refuse unknown fields; query values
arrive as text and are converted.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from speakerctl.app.schedules import WINDOW_S
from speakerctl.protocol.limits import MAX_TARGETS

PriorityName = Literal["normal", "priority", "emergency"]


def _integral(value: object) -> object:
    """JSON Schema counts 3.0 as an integer; strict pydantic would refuse it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_integral)]
"""An integer in a strict body: 3 or 3.0, never true or "3"."""


class Body(BaseModel):
    """A JSON request body: strict types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, use_attribute_docstrings=True)


class Query(BaseModel):
    """Query parameters: converted from text."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_attribute_docstrings=True)


class TextId(BaseModel):
    """A path naming a record by its text id (a cluster, a broadcast, a schedule)."""

    id: str = Field(min_length=1, max_length=128)


class NumberId(BaseModel):
    """A path naming a record by its number (a bulletin, an alert, an approval item)."""

    id: int = Field(ge=1, le=2**31 - 1)


class ZonePath(BaseModel):
    """A path naming a zone by its id (the public feed)."""

    zone: str = Field(min_length=1, max_length=200)


class ErrorBody(BaseModel):
    """What went wrong, in one line, and what to do about it."""

    error: str
    hint: str


class ZoneFilter(Query):
    """A zone (id or name; default: the caller's own zone) and everything below it."""

    zone: str | None = Field(default=None, min_length=1, max_length=200)


class DevicesQuery(ZoneFilter):
    """Which clusters to list."""

    state: Literal["online", "offline"] | None = None
    fault: bool = False


class AlertsQuery(ZoneFilter):
    """Which alerts to list, newest first."""

    open: bool = True
    limit: int = Field(default=100, ge=1, le=1000)


class CapAlertsQuery(Query):
    """How many of the latest CAP messages."""

    limit: int = Field(default=100, ge=1, le=1000)


class BroadcastsQuery(Query):
    """How many of the latest broadcasts."""

    limit: int = Field(default=20, ge=1, le=100)


class PlaysQuery(ZoneFilter):
    """The period of the play log: dd/mm/yyyy, YYYY-MM-DD, or a moment; `until` defaults to now."""

    since: str = Field(min_length=1, max_length=40)
    until: str | None = Field(default=None, min_length=1, max_length=40)


class ApprovalsQuery(ZoneFilter):
    """The approval queue: pending items, or every item with `decided`."""

    decided: bool = False


class BroadcastBody(Body):
    """Air a bulletin now on zones and clusters (ids or names)."""

    bulletin: Whole = Field(ge=1, le=2**31 - 1)
    targets: list[str] = Field(min_length=1, max_length=MAX_TARGETS)
    priority: PriorityName = "normal"
    confirmed: bool = False
    """An emergency or a province-wide broadcast airs only when confirmed (else 409 and the question)."""


class AtRule(Body):
    """Once, at a local moment: dd/mm/yyyy HH:MM, YYYY-MM-DD HH:MM, or ISO 8601 with an offset."""

    kind: Literal["at"]
    at: str = Field(min_length=1, max_length=40)


class DailyRule(Body):
    """Every day at these local times, e.g. 05:00,17:00."""

    kind: Literal["daily"]
    times: str = Field(min_length=1, max_length=200)


class WeeklyRule(Body):
    """On these weekdays (e.g. mon-sat, or mon,wed,fri) at these local times."""

    kind: Literal["weekly"]
    times: str = Field(min_length=1, max_length=200)
    days: str = Field(min_length=1, max_length=100)


class CronRule(Body):
    """A five-field cron expression in local time, e.g. 0 5 * * 1-5."""

    kind: Literal["cron"]
    cron: str = Field(min_length=1, max_length=200)


RuleBody = Annotated[AtRule | DailyRule | WeeklyRule | CronRule, Field(discriminator="kind")]


class ScheduleBody(Body):
    """A schedule, as `schedule add` takes it: a bulletin, targets, when (`rule`) and how."""

    bulletin: Whole = Field(ge=1, le=2**31 - 1)
    targets: list[str] = Field(min_length=1, max_length=MAX_TARGETS)
    rule: RuleBody
    repeat: Whole = Field(default=1, ge=1, le=100)
    """Airings of each occurrence, `gap_s` apart (repeats fit in an hour)."""
    gap_s: Whole = Field(default=0, ge=0, le=3600)
    valid_from: str | None = Field(default=None, max_length=40)
    """First local day it airs (dd/mm/yyyy or YYYY-MM-DD)."""
    valid_until: str | None = Field(default=None, max_length=40)
    """Last local day it airs."""
    priority: PriorityName = "normal"
    on_preempt: Literal["resume", "restart", "drop"] = "resume"
    """What it does when a higher priority cuts in."""
    window_s: Whole = Field(default=WINDOW_S, ge=1, le=86_400)
    """How late it may still air, seconds."""
    name: str = Field(default="", max_length=200)
    confirmed: bool = False
    """An emergency or province-wide schedule is added only when confirmed (else 409)."""

    def when(self) -> dict[str, str | None]:
        """The rule as `schedules.build_rule` takes it (at, daily, weekly, cron, days)."""
        r = self.rule
        return {
            "at": r.at if isinstance(r, AtRule) else None,
            "daily": r.times if isinstance(r, DailyRule) else None,
            "weekly": r.times if isinstance(r, WeeklyRule) else None,
            "cron": r.cron if isinstance(r, CronRule) else None,
            "days": r.days if isinstance(r, WeeklyRule) else None,
        }


class RejectBody(Body):
    """Why an approval item is rejected (its author reads it)."""

    reason: str = Field(default="", max_length=1000)
