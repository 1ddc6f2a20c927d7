"""Reports: what a broadcast reached, the play log of a period (for people and for the province), alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from speakerctl.app import names, records, views
from speakerctl.app.context import AppContext
from speakerctl.app.fleet import zone_ids
from speakerctl.controller.reports import (
    PLAY_LOG_COLUMNS,
    PlayEntry,
    ZoneOutcome,
    export,
    outcome_by_zone,
    play_entries,
)
from speakerctl.dates import format_moment, parse_day_or_moment, zone_label
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import FINISHED


class ReportFormat(StrEnum):
    """How `report --since` writes the play log."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


FILE_FORMATS = (ReportFormat.CSV, ReportFormat.XLSX)
TABLE_COLUMNS = PLAY_LOG_COLUMNS[1:]
"""The play log's columns in a table on screen (the date is in the title)."""


def parse_format(value: str, output: Path | None) -> ReportFormat:
    """The report format; a file format needs an output file."""
    try:
        fmt = ReportFormat(value)
    except ValueError:
        hint = f"use one of {', '.join(f.value for f in ReportFormat)}"
        raise UsageError(f"unknown format {value!r}", hint=hint) from None
    if fmt in FILE_FORMATS and output is None:
        raise UsageError(f"--format {fmt.value} needs --output FILE")
    return fmt


@dataclass(frozen=True, slots=True)
class Period:
    """[since, until) in the controller's local time zone."""

    since: datetime
    until: datetime
    tz: ZoneInfo


def period(ctx: AppContext, since: str, until: str | None) -> Period:
    """The period from --since and --until (until: now, or the end of a given day)."""
    tz = ZoneInfo(ctx.settings.timezone)
    start = parse_day_or_moment(since, tz)
    stop = parse_day_or_moment(until, tz, end=True) if until else ctx.clock.now().astimezone(tz)
    return Period(start, stop, tz)


@dataclass(frozen=True, slots=True)
class PlayLog:
    """The plays of a period, in order."""

    title: str
    entries: list[PlayEntry]
    tz: ZoneInfo

    def rows(self) -> list[dict[str, object]]:
        """The rows for people (table, CSV, XLSX), local times."""
        return [e.row(self.tz) for e in self.entries]

    def views(self) -> list[views.PlayView]:
        """The plays as JSON records."""
        return [play(e, self.tz) for e in self.entries]


def play(e: PlayEntry, tz: ZoneInfo) -> views.PlayView:
    """One play, timestamps in local time with their offset."""
    r = e.record
    return views.PlayView(
        date=r.playing_at.astimezone(tz).date().isoformat(),
        district=e.district,
        commune=e.commune,
        device=e.device_id,
        device_name=e.device_name,
        bulletin=r.bulletin_title,
        priority=views.priority_name(r.priority),
        broadcast=r.broadcast_id,
        started_at=r.playing_at.astimezone(tz),
        ended_at=r.ended_at.astimezone(tz) if r.ended_at else None,
        aired_s=e.aired_s,
        outcome=e.outcome,
    )


def play_log(ctx: AppContext, since: str, until: str | None, zone: str | None) -> PlayLog:
    """The play log of a period, of one zone and below or of the whole fleet."""
    when = period(ctx, since, until)
    store = ctx.store(sync_inventory=False)
    zone = names.zone_id(store, zone) if zone else None
    title = _("Play log {since} – {until} ({zone})").format(
        since=format_moment(when.since, when.tz),
        until=format_moment(when.until, when.tz),
        zone=f"{ctx.settings.timezone}, {zone_label(when.tz, when.since)}",
    )
    if zone:
        title += _(", zone {zone}").format(zone=zone)
    return PlayLog(title, play_entries(store, when.since, when.until, zone), when.tz)


def export_play_log(log: PlayLog, path: Path, fmt: ReportFormat) -> None:
    """Write the play log as CSV or XLSX."""
    export(log.rows(), path, fmt.value, log.title)


@dataclass(frozen=True, slots=True)
class BroadcastReport:
    """A broadcast, its count per state, its outcome per district, and the clusters that did not play."""

    view: views.BroadcastReportView
    outcomes: list[ZoneOutcome]

    @property
    def played(self) -> int:
        """Clusters that played it to the end."""
        return self.view.counts.get(FINISHED, 0)


def broadcast_report(ctx: AppContext, broadcast_id: str) -> BroadcastReport:
    """What one broadcast reached, per state and per district, with reasons."""
    store = ctx.store(sync_inventory=False)
    info = store.broadcasts.get(broadcast_id)
    outcomes = outcome_by_zone(store, broadcast_id)
    missed = [d for d in store.deliveries.of(broadcast_id) if d.state != FINISHED]
    view = views.BroadcastReportView(
        broadcast=info.id,
        bulletin=info.bulletin_id,
        state=info.state.value,
        priority=Priority(info.priority).wire,
        targets=list(info.targets),
        counts=store.deliveries.counts(broadcast_id),
        zones=[records.zone_outcome(o) for o in outcomes],
        not_played=[records.missed(d) for d in missed],
    )
    return BroadcastReport(view, outcomes)


def alerts(ctx: AppContext, open_only: bool, zone: str | None, limit: int) -> list[views.AlertView]:
    """Alerts, newest first, of one zone and below or of the whole fleet."""
    store = ctx.store()
    found = store.alerts.all(open_only=open_only, zone_ids=zone_ids(store, zone), limit=limit)
    return [records.alert(a) for a in found]
