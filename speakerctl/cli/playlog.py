"""`speakerctl report --since ... [--format csv|xlsx --output FILE]`: the play log of a period."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.table import Table

from speakerctl.cli.common import console, console_err, print_json
from speakerctl.config import Settings
from speakerctl.controller.app import open_store
from speakerctl.controller.reports import PLAY_LOG_COLUMNS, ZoneOutcome, export, play_log
from speakerctl.errors import ConfigError

FORMATS = ("table", "json", "csv", "xlsx")


def parse_local(text: str, tz: ZoneInfo, *, end: bool = False) -> datetime:
    """A local date ("2026-11-29": its start, or the next day's with `end`) or date-time, in `tz`."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tz)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"cannot read {text!r} as a date", hint="use 2026-11-29 or 2026-11-29T06:00"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def play_log_report(
    settings: Settings,
    since: str,
    until: str | None,
    zone: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Print or export the play log of [since, until) (until: now, or the end of a given day)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    if fmt in ("csv", "xlsx") and output is None:
        raise ConfigError(f"--format {fmt} needs --output FILE")
    tz = ZoneInfo(settings.timezone)
    start = parse_local(since, tz)
    stop = parse_local(until, tz, end=True) if until else datetime.now(tz)
    store = open_store(settings, sync_inventory=False)
    if zone:
        store.zones.get(zone)  # NotFound for an unknown zone
    rows = play_log(store, start, stop, tz, zone)
    title = f"Play log {start:%Y-%m-%d %H:%M} – {stop:%Y-%m-%d %H:%M} ({settings.timezone})"
    if zone:
        title += f", zone {zone}"
    if output is not None and fmt in ("csv", "xlsx"):
        export(rows, output, fmt, title)
        console_err.print(f"{len(rows)} plays written to {output}")
    elif fmt == "json":
        print_json(rows)
    else:
        table = Table(*PLAY_LOG_COLUMNS[1:], title=f"{title}: {len(rows)} plays", title_justify="left")
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in PLAY_LOG_COLUMNS[1:]))
        console.print(table)


def zone_table(outcomes: list[ZoneOutcome]) -> Table:
    """Reached, played, failed and missed per zone, with the commonest reasons."""
    table = Table("zone", "targeted", "reached", "played", "failed", "missed", "reasons", title="per zone")
    for o in outcomes:
        reasons = ", ".join(f"{r} ×{n}" for r, n in o.reasons.most_common(4))
        cells = (o.targeted, o.reached, o.played, o.failed, o.missed)
        table.add_row(o.name, *map(str, cells), reasons)
    return table
