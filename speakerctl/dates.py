"""Dates as people type and read them: dd/mm/yyyy (ISO too) in the installation's time zone, labelled.

The one owner of user-facing date parsing and formatting; the CLI, the web console and the reports use it.
Typed: `29/11/2026`, `29/11/2026 05:00`, `29/11/2026 05:00:30`, `2026-11-29`, `2026-11-29 05:00`,
`2026-11-29T05:00+07:00`. Day first always (never month first): `12/25/2026` is refused, not guessed.
Read: `T2 30/11/2026 05:00` (Vietnamese) or `Mon 30/11/2026 05:00`, with the zone as `UTC+07:00`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime

from speakerctl.errors import UsageError
from speakerctl.i18n import _, language

DAY_HINT_EXAMPLE = "29/11/2026"
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_BABEL_LOCALE = {"vi": "vi", "en": "en_GB"}


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name; UsageError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            _("unknown time zone {name!r}").format(name=name), hint=_("e.g. Asia/Ho_Chi_Minh")
        ) from None


def parse_day(text: str) -> date:
    """A date typed dd/mm/yyyy or yyyy-mm-dd; UsageError for anything else (30/02 included)."""
    found = _DMY.fullmatch(text.strip())
    if found and found.group(4) is None:
        return _dmy(text, found)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _bad(text, _("a date")) from None


def parse_moment(text: str, tz: tzinfo) -> datetime:
    """A date and time typed 'dd/mm/yyyy HH:MM' or ISO, local to `tz` unless it carries an offset."""
    found = _DMY.fullmatch(text.strip())
    if found and found.group(4) is not None:
        hour, minute, second = (int(found.group(i) or 0) for i in (4, 5, 6))
        try:
            clock = time(hour, minute, second)
        except ValueError:
            raise _bad(text, _("a time of day")) from None
        return datetime.combine(_dmy(text, found), clock, tz)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _bad(text, _("a date and time")) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def parse_day_or_moment(text: str, tz: tzinfo, *, end: bool = False) -> datetime:
    """A date (its start; with `end`, the next day's start) or a date and time, in `tz`."""
    if _is_day(text):
        day = parse_day(text) + timedelta(days=1 if end else 0)
        return datetime.combine(day, time(), tz)
    return parse_moment(text, tz)


def _is_day(text: str) -> bool:
    """Whether `text` is a date alone (dd/mm/yyyy or yyyy-mm-dd) rather than a date and time."""
    found = _DMY.fullmatch(text.strip())
    return found.group(4) is None if found else len(text.strip()) == len("yyyy-mm-dd")


def _dmy(text: str, found: re.Match[str]) -> date:
    day, month, year = (int(found.group(i)) for i in (1, 2, 3))
    try:
        return date(year, month, day)
    except ValueError:
        raise _bad(text, _("a date")) from None


def _bad(text: str, what: str) -> UsageError:
    return UsageError(
        _("cannot read {text!r} as {what}").format(text=text, what=what),
        hint=_("dates are day/month/year: {example} or {example} 05:00 (ISO 2026-11-29 works too)").format(
            example=DAY_HINT_EXAMPLE
        ),
    )


def zone_label(tz: tzinfo, at: datetime) -> str:
    """The zone's offset at `at` for people, e.g. "UTC+07:00"."""
    offset = at.astimezone(tz).utcoffset() or timedelta()
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_moment(at: datetime, tz: tzinfo, *, seconds: bool = False, label: bool = False) -> str:
    """`at` in `tz` as people read it: "T2 30/11/2026 05:00" / "Mon 30/11/2026 05:00", maybe labelled."""
    pattern = "EEE dd/MM/yyyy HH:mm" + (":ss" if seconds else "")
    text = format_datetime(at, pattern, tzinfo=tz, locale=_babel_locale())
    return f"{text} ({zone_label(tz, at)})" if label else text


def format_day(day: date) -> str:
    """A date as people read it: dd/mm/yyyy."""
    return f"{day:%d/%m/%Y}"


def format_clock(at: datetime, tz: tzinfo, *, label: bool = True) -> str:
    """Only the time of day in `tz`, e.g. "05:00 (UTC+07:00)"."""
    text = f"{at.astimezone(tz):%H:%M}"
    return f"{text} ({zone_label(tz, at)})" if label else text


def _babel_locale() -> str:
    return _BABEL_LOCALE.get(language(), "en_GB")
