"""Schedule rules: when a schedule airs, as pure date arithmetic on aware datetimes (no clock, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from speakerctl.dates import format_day, format_moment
from speakerctl.errors import ConfigError, UsageError
from speakerctl.i18n import _

RULE_VERSION = 1
DEFAULT_TZ = "Asia/Ho_Chi_Minh"
ALL_DAYS = frozenset(range(7))
MAX_REPEAT_SPAN_S = 3600
"""Repeats of one occurrence (N times, a gap apart) must fit in an hour."""
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 7


class Kind(StrEnum):
    """How a rule recurs."""

    AT = "at"
    DAILY = "daily"
    WEEKLY = "weekly"
    CRON = "cron"


@dataclass(frozen=True, slots=True)
class Rule:
    """When a schedule airs: one-off, daily or weekly times, or cron; repeated; within validity dates."""

    kind: Kind
    times: tuple[time, ...] = ()
    weekdays: frozenset[int] = ALL_DAYS
    at: datetime | None = None
    cron: str = ""
    repeat: int = 1
    gap_s: int = 0
    valid_from: date | None = None
    valid_until: date | None = None
    tz: str = DEFAULT_TZ
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", zone_info(self.tz))
        self._check_kind()
        if not 1 <= self.repeat <= 100:
            raise UsageError(_("repeat must be 1..100, got {n}").format(n=self.repeat))
        if self.repeat > 1 and not 1 <= self.gap_s <= MAX_REPEAT_SPAN_S // (self.repeat - 1):
            raise UsageError(
                _("repeats must be at least 1 s apart and fit in an hour"), hint=_("e.g. --gap 30")
            )
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise UsageError(_("--until is before --from"))

    def _check_kind(self) -> None:
        if self.kind is Kind.AT and (self.at is None or self.at.tzinfo is None):
            raise UsageError(_("a one-off schedule needs an aware time (--at)"))
        if self.kind in (Kind.DAILY, Kind.WEEKLY) and not self.times:
            raise UsageError(
                _("a {kind} schedule needs at least one time of day, e.g. 05:00").format(kind=self.kind)
            )
        if self.kind in (Kind.DAILY, Kind.WEEKLY) and not (self.weekdays and self.weekdays <= ALL_DAYS):
            raise UsageError(_("weekdays must be a non-empty set of mon..sun"))
        if self.kind is Kind.CRON:
            self._cron_trigger()

    @property
    def zone(self) -> ZoneInfo:
        """The rule's time zone."""
        return self._zone

    def _cron_trigger(self) -> CronTrigger:
        fields = self.cron.split()
        try:
            if len(fields) != 5:
                raise ValueError(_("five fields expected: minute hour day month weekday"))
            minute, hour, day, month, dow = fields
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=cron_weekdays(dow),
                timezone=self._zone,
            )
        except ValueError as exc:
            raise UsageError(
                _("bad cron expression {cron!r}: {error}").format(cron=self.cron, error=exc),
                hint=_("e.g. '0 5 * * 1-6'"),
            ) from exc

    def occurrences(self, after: datetime, until: datetime) -> list[datetime]:
        """Every air time in (after, until], ascending, in UTC."""
        _aware(after), _aware(until)
        first = after.astimezone(self._zone).date() - timedelta(days=1)
        last = until.astimezone(self._zone).date()
        found = {t for base in self._bases(first, last) for t in self._repeats(base) if after < t <= until}
        return sorted(found)

    def next_after(self, after: datetime, horizon_days: int = 800) -> datetime | None:
        """The first air time strictly after `after`, or None within the horizon (or ever)."""
        start = after
        for _step in range(0, horizon_days, _SEARCH_DAYS):
            if self._ended_before(start):
                return None
            found = self.occurrences(start, start + timedelta(days=_SEARCH_DAYS))
            if found:
                return found[0]
            start += timedelta(days=_SEARCH_DAYS)
        return None

    def airs_after(self, now: datetime) -> bool:
        """Whether the rule airs at all after `now` (False: in the past, or a date that never comes)."""
        start = now
        if self.valid_from is not None:
            start = max(now, datetime.combine(self.valid_from, time(), tzinfo=self._zone))
        if self.kind is not Kind.CRON:
            return self.next_after(start) is not None
        fire = self._cron_trigger().get_next_fire_time(None, start)
        return fire is not None and self._valid_on(fire.astimezone(self._zone).date())

    def _ended_before(self, at: datetime) -> bool:
        local = at.astimezone(self._zone).date()
        if self.valid_until is not None and local > self.valid_until + timedelta(days=1):
            return True
        return self.kind is Kind.AT and self.at is not None and at > self._last_repeat(self.at)

    def _last_repeat(self, base: datetime) -> datetime:
        return base + timedelta(seconds=self.gap_s * (self.repeat - 1))

    def _repeats(self, base: datetime) -> Iterator[datetime]:
        for k in range(self.repeat):
            yield base + timedelta(seconds=self.gap_s * k)

    def _valid_on(self, day: date) -> bool:
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )

    def _bases(self, first: date, last: date) -> Iterator[datetime]:
        if self.kind is Kind.AT:
            assert self.at is not None
            if self._valid_on(self.at.astimezone(self._zone).date()):
                yield self.at.astimezone(UTC)
        elif self.kind is Kind.CRON:
            yield from self._cron_bases(first, last)
        else:
            yield from self._day_bases(first, last)

    def _day_bases(self, first: date, last: date) -> Iterator[datetime]:
        day = first
        while day <= last:
            if day.weekday() in self.weekdays and self._valid_on(day):
                for t in self.times:
                    yield datetime.combine(day, t, tzinfo=self._zone).astimezone(UTC)
            day += timedelta(days=1)

    def _cron_bases(self, first: date, last: date) -> Iterator[datetime]:
        trigger = self._cron_trigger()
        now = datetime.combine(first, time(), tzinfo=self._zone)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=self._zone)
        previous: datetime | None = None
        while (fire := trigger.get_next_fire_time(previous, now)) is not None and fire < end:
            if self._valid_on(fire.astimezone(self._zone).date()):
                yield fire.astimezone(UTC)
            previous, now = fire, fire + timedelta(microseconds=1)

    def describe(self) -> str:
        """One line for people, in the rule's local time and the language in use."""
        text = {
            Kind.AT: lambda: _("once at {at}").format(at=_moment(self.at, self._zone)),
            Kind.DAILY: lambda: _("daily at {times}").format(times=_times(self.times)),
            Kind.WEEKLY: lambda: _("weekly {days} at {times}").format(
                days=format_weekdays(self.weekdays), times=_times(self.times)
            ),
            Kind.CRON: lambda: _("cron {expression!r}").format(expression=self.cron),
        }[self.kind]()
        if self.kind is Kind.DAILY and self.weekdays != ALL_DAYS:
            text += f" ({format_weekdays(self.weekdays)})"
        if self.repeat > 1:
            text += _(", {n}× {gap} s apart").format(n=self.repeat, gap=self.gap_s)
        if self.valid_from or self.valid_until:
            first, last = (format_day(d) if d else "…" for d in (self.valid_from, self.valid_until))
            text += _(", valid {first} – {last}").format(first=first, last=last)
        return f"{text} ({self.tz})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with a version."""
        return {
            "v": RULE_VERSION,
            "kind": self.kind.value,
            "times": [t.isoformat() for t in self.times],
            "weekdays": sorted(self.weekdays),
            "at": self.at.isoformat() if self.at else None,
            "cron": self.cron,
            "repeat": self.repeat,
            "gap_s": self.gap_s,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "tz": self.tz,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        """Inverse of to_dict."""
        if d.get("v") != RULE_VERSION:
            raise ConfigError(f"stored rule has version {d.get('v')!r}, this speakerctl reads {RULE_VERSION}")
        return cls(
            kind=Kind(d["kind"]),
            times=tuple(time.fromisoformat(t) for t in d["times"]),
            weekdays=frozenset(d["weekdays"]),
            at=datetime.fromisoformat(d["at"]) if d["at"] else None,
            cron=d["cron"],
            repeat=d["repeat"],
            gap_s=d["gap_s"],
            valid_from=date.fromisoformat(d["valid_from"]) if d["valid_from"] else None,
            valid_until=date.fromisoformat(d["valid_until"]) if d["valid_until"] else None,
            tz=d["tz"],
        )


def _moment(at: datetime | None, zone: ZoneInfo) -> str:
    return "" if at is None else format_moment(at, zone, seconds=True)


def zone_info(name: str) -> ZoneInfo:
    """A time zone by IANA name, or ConfigError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            _("unknown time zone {name!r}").format(name=name), hint=_("e.g. Asia/Ho_Chi_Minh")
        ) from exc


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ConfigError(f"a naive time {at.isoformat()} was given where an aware one is needed")
    return at


def _times(times: tuple[time, ...]) -> str:
    return ", ".join(t.isoformat("seconds" if t.second else "minutes") for t in times)


def parse_times(text: str) -> tuple[time, ...]:
    """'05:00,17:00' → times of day, sorted; UsageError naming the bad one."""
    out: set[time] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.add(time.fromisoformat(part))
        except ValueError:
            raise UsageError(
                _("bad time of day {text!r}").format(text=part), hint=_("use HH:MM or HH:MM:SS, e.g. 05:00")
            ) from None
    if not out:
        raise UsageError(_("no time of day given"), hint=_("e.g. 05:00,17:00"))
    return tuple(sorted(out))


def parse_weekdays(text: str) -> frozenset[int]:
    """'mon-sat', 'mon,wed,fri', '1-6' (ISO, Monday = 1) → weekday numbers, Monday = 0."""
    days: set[int] = set()
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        ends = [_weekday(x) for x in part.split("-", 1)]
        lo, hi = ends[0], ends[-1]
        days.update(range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(0, hi + 1)])
    if not days:
        raise UsageError(_("no weekday given"), hint=_("e.g. mon-sat"))
    return frozenset(days)


def _weekday(text: str) -> int:
    name = text.strip()[:3]
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    if re.fullmatch(r"[1-7]", name):
        return int(name) - 1
    raise UsageError(
        _("unknown weekday {text!r}").format(text=text), hint=_("use mon..sun or 1..7 (Monday = 1)")
    )


def cron_weekdays(text: str) -> str:
    """A standard cron weekday field (0 or 7 = Sunday) in APScheduler's terms (names, Monday first)."""
    if text == "*":
        return text
    days: set[int] = set()
    for part in text.lower().split(","):
        span, _, step = part.partition("/")
        lo, _, hi = ("0-6" if span == "*" else span).partition("-")
        first, last = _cron_day(lo), _cron_day(hi or lo)
        days.update(range(first, (last if last >= first else last + 7) + 1, int(step or 1)))
    return ",".join(_DAY_NAMES[(d - 1) % 7] for d in sorted({d % 7 for d in days}))


def _cron_day(text: str) -> int:
    if text[:3] in _DAY_NAMES:
        return (_DAY_NAMES.index(text[:3]) + 1) % 7
    if re.fullmatch(r"[0-7]", text):
        return int(text) % 7 if text != "7" else 7
    raise ValueError(f"bad weekday {text!r} (0-7 or sun..sat)")


def format_weekdays(days: frozenset[int]) -> str:
    """Weekday numbers as names, runs collapsed: 'mon-sat'."""
    ordered = sorted(days)
    runs: list[list[int]] = []
    for d in ordered:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(
        _DAY_NAMES[r[0]] if len(r) == 1 else f"{_DAY_NAMES[r[0]]}-{_DAY_NAMES[r[-1]]}" for r in runs
    )
