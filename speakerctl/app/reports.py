"""Reports: what a broadcast reached, the play log of a period (for people and for the province), alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from speakerctl.app import names, records, views
from speakerctl.app.context import AppContext
from speakerctl.app.fleet import zone_ids
from speakerctl.app.labels import word
from speakerctl.controller.office import (
    WHY,
    BroadcastLine,
    CommuneLine,
    Miss,
    OfficeReport,
    approved_by,
    office_report,
)
from speakerctl.controller.reports import (
    PlayEntry,
    ZoneOutcome,
    export,
    outcome_by_zone,
    play_entries,
)
from speakerctl.controller.sheets import Cell, Sheet, write_csv, write_xlsx
from speakerctl.dates import format_moment, parse_day_or_moment, zone_label
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import FINISHED, STOPPED


class ReportFormat(StrEnum):
    """How `report --since` writes the play log."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


FILE_FORMATS = (ReportFormat.CSV, ReportFormat.XLSX)


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
    caps: Mapping[str, str] = field(default_factory=dict)
    """The CAP identifier behind each broadcast that aired a CAP alert."""

    def rows(self) -> list[dict[str, object]]:
        """The rows for people (table, CSV, XLSX), local times."""
        return [e.row(self.tz) | {"cap": self.caps.get(e.record.broadcast_id, "")} for e in self.entries]

    def views(self) -> list[views.PlayView]:
        """The plays as JSON records."""
        return [play(e, self.tz, self.caps.get(e.record.broadcast_id, "")) for e in self.entries]

    def screen(self) -> ScreenTable:
        """The plays for a terminal: condensed columns that fit 100 characters (files have all)."""
        columns = (_("Started"), _("Commune"), _("Cluster id"), _("Bulletin"), _("Broadcast"))
        rows = [_play_cells(e, self.tz) for e in self.entries]
        return ScreenTable(_("plays"), (*columns, _("Aired (s)"), _("Outcome")), rows, frozenset({2, 4}))


def _play_cells(e: PlayEntry, tz: ZoneInfo) -> tuple[str, ...]:
    r = e.record
    aired = "" if e.aired_s is None else f"{e.aired_s:g}"
    outcome = word(r.state if r.reason is None else f"{r.state}/{r.reason}")
    if r.state == STOPPED and r.detail:
        outcome += f" ({r.detail})"
    head = (_short(r.playing_at, tz), e.commune, e.device_id, r.bulletin_title, r.broadcast_id)
    return (*head, aired, outcome)


def play(e: PlayEntry, tz: ZoneInfo, cap: str = "") -> views.PlayView:
    """One play, timestamps in local time with their offset; `cap`: the CAP identifier it aired."""
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
        cap=cap,
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
    entries = play_entries(store, when.since, when.until, zone)
    caps = store.cap.identifiers(sorted({e.record.broadcast_id for e in entries}))
    return PlayLog(title, entries, when.tz, caps)


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
        started_by=info.started_by,
        approved_by=approved_by(info),
        stopped_by=info.stopped_by,
        cap=store.cap.identifiers([broadcast_id]).get(broadcast_id, ""),
    )
    return BroadcastReport(view, outcomes)


def alerts(ctx: AppContext, open_only: bool, zone: str | None, limit: int) -> list[views.AlertView]:
    """Alerts, newest first, of one zone and below or of the whole fleet."""
    store = ctx.store()
    found = store.alerts.all(open_only=open_only, zone_ids=zone_ids(store, zone), limit=limit)
    return [records.alert(a) for a in found]


@dataclass(frozen=True, slots=True)
class OfficeSummary:
    """The office report of a period (or of one broadcast), with the time zone its times are shown in."""

    title: str
    report: OfficeReport
    tz: ZoneInfo

    def sheets(self) -> list[Sheet]:
        """Its tables for people: the per-commune summary, the clusters that did not air, the broadcasts."""
        return [_communes_sheet(self), _misses_sheet(self), _broadcasts_sheet(self)]

    def screens(self) -> list[ScreenTable]:
        """Its tables for a terminal: fewer, condensed columns that fit 100 characters (files have all)."""
        return [_communes_screen(self), _misses_screen(self), _broadcasts_screen(self)]


@dataclass(frozen=True, slots=True)
class ScreenTable:
    """A table for a terminal: column titles, rows of text, and which columns hold ids (never cut)."""

    name: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    ids: frozenset[int]


def office(
    ctx: AppContext,
    since: str | None,
    until: str | None,
    zone: str | None = None,
    broadcast_id: str | None = None,
) -> OfficeSummary:
    """The office report of one broadcast, or of the broadcasts sent in a period (of a zone and below)."""
    store = ctx.store(sync_inventory=False)
    tz = ZoneInfo(ctx.settings.timezone)
    if zone:
        store.zones.get(zone)  # NotFound for an unknown zone
    if broadcast_id is not None:
        ids, title = [store.broadcasts.get(broadcast_id).id], _("Broadcast {id}").format(id=broadcast_id)
    elif since is not None:
        when = period(ctx, since, until)
        ids = [b.id for b in store.broadcasts.between(when.since, when.until)]
        title = _("Broadcasts {since} – {until} ({tz})").format(
            since=f"{when.since:%d/%m/%Y %H:%M}",
            until=f"{when.until:%d/%m/%Y %H:%M}",
            tz=ctx.settings.timezone,
        )
    else:
        raise UsageError(_("give a BROADCAST id, or --since for a period"), hint="speakerctl report --help")
    return OfficeSummary(title, office_report(store, ids, zone), tz)


def export_office(summary: OfficeSummary, path: Path, fmt: ReportFormat, delimiter: str = ",") -> list[Path]:
    """Write the office report: XLSX, one sheet per table; CSV, one file per table. The files written."""
    sheets = summary.sheets()
    if fmt is ReportFormat.XLSX:
        write_xlsx(sheets, path)
        return [path]
    if fmt is not ReportFormat.CSV:
        raise UsageError(
            _("the summary is written as csv or xlsx"), hint=_("add --format xlsx --output FILE")
        )
    paths = [path.with_name(f"{path.stem}-{key}{path.suffix or '.csv'}") for key in SHEET_KEYS]
    for sheet, target in zip(sheets, paths, strict=True):
        write_csv(sheet, target, delimiter)
    return paths


SHEET_KEYS = ("communes", "not-aired", "broadcasts")
"""The suffix of each table's CSV file, in the order of `OfficeSummary.sheets`."""


def _local(at: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A naive local time for a spreadsheet cell (Excel has no time zones; the column title says it)."""
    return at.astimezone(tz).replace(tzinfo=None) if at else None


def why_labels() -> dict[str, str]:
    """Each `why` code as people read it."""
    return {w: word(w) for w in WHY}


def _started(summary: OfficeSummary) -> str:
    return _("Started ({tz})").format(tz=summary.tz.key)


def _communes_sheet(summary: OfficeSummary) -> Sheet:
    labels = why_labels()
    columns = (
        *(_started(summary), _("Broadcast"), _("Bulletin"), _("Priority"), _("Commune"), _("Zone path")),
        *(_("Targeted"), _("Aired"), _("Not aired"), *(labels[w] for w in WHY)),
        *(_("Started by"), _("Approved by")),
    )
    return Sheet(_("Communes"), columns, [_commune_row(c, summary.tz) for c in summary.report.communes])


def _commune_row(c: CommuneLine, tz: ZoneInfo) -> tuple[Cell, ...]:
    b = c.broadcast
    head = (_local(b.info.created_at, tz), b.info.id, b.bulletin, views.priority_name(b.info.priority))
    counts = (c.targeted, c.aired, c.not_aired, *(c.why[w] for w in WHY))
    return (*head, c.name, c.path, *counts, b.info.started_by, b.approved_by)


def _misses_sheet(summary: OfficeSummary) -> Sheet:
    columns = (
        *(_started(summary), _("Broadcast"), _("Bulletin"), _("Commune"), _("Cluster id"), _("Cluster")),
        *(_("Why"), _("State"), _("Reason"), _("Detail"), _("Last heard ({tz})").format(tz=summary.tz.key)),
    )
    labels = why_labels()
    return Sheet(_("Not aired"), columns, [_miss_row(m, summary.tz, labels) for m in summary.report.misses])


def _miss_row(m: Miss, tz: ZoneInfo, labels: dict[str, str]) -> tuple[Cell, ...]:
    d = m.delivery
    where = (_local(m.broadcast.info.created_at, tz), m.broadcast.info.id, m.broadcast.bulletin, m.commune)
    return (*where, m.device_id, m.device_name, labels[m.why], d.state.value, d.reason or "", d.detail,
            _local(m.last_seen, tz))  # fmt: skip


def _broadcasts_sheet(summary: OfficeSummary) -> Sheet:
    ended = _("Ended ({tz})").format(tz=summary.tz.key)
    columns = (
        *(_started(summary), _("Broadcast"), _("Bulletin"), _("Priority"), _("Targets"), _("State")),
        *(
            _("Started by"),
            _("Approved by"),
            _("Stopped by"),
            ended,
            _("Clusters"),
            _("Aired"),
            _("Not aired"),
        ),
    )
    return Sheet(_("Broadcasts"), columns, [_broadcast_row(b, summary.tz) for b in summary.report.broadcasts])


def _broadcast_row(b: BroadcastLine, tz: ZoneInfo) -> tuple[Cell, ...]:
    i = b.info
    head = (_local(i.created_at, tz), i.id, b.bulletin, views.priority_name(i.priority), ", ".join(i.targets))
    who = (i.state.value, i.started_by, b.approved_by, i.stopped_by, _local(i.completed_at, tz))
    return (*head, *who, b.clusters, b.aired, b.clusters - b.aired)


def _short(at: datetime | None, tz: ZoneInfo) -> str:
    """A local time as a terminal shows it: day, month, hour and minute."""
    return at.astimezone(tz).strftime("%d/%m %H:%M") if at else ""


def why_text(counts: dict[str, int], labels: dict[str, str]) -> str:
    """Why clusters did not air, in one cell: "offline 2, stopped 1" (the report's order of reasons)."""
    return ", ".join(f"{labels[w]} {counts[w]}" for w in WHY if counts.get(w))


def _people(*names: str) -> str:
    """Who started (and approved, and stopped) a broadcast, in one cell."""
    return " / ".join(name or "–" for name in names).rstrip(" /–")


def _communes_screen(summary: OfficeSummary) -> ScreenTable:
    labels = why_labels()
    columns = (_("Commune"), _("Broadcast"), _("Bulletin"), _("Targeted"), _("Aired"), _("Not aired"))
    rows = [
        (c.name, c.broadcast.info.id, c.broadcast.bulletin, str(c.targeted), str(c.aired),
         why_text(dict(c.why), labels), _people(c.broadcast.info.started_by, c.broadcast.approved_by))
        for c in summary.report.communes
    ]  # fmt: skip
    return ScreenTable(_("Communes"), (*columns, _("Started / approved by")), rows, frozenset({1}))


def _misses_screen(summary: OfficeSummary) -> ScreenTable:
    labels = why_labels()
    columns = (_("Broadcast"), _("Commune"), _("Cluster id"), _("Cluster"), _("Why"), _("Detail"))
    rows = [
        (m.broadcast.info.id, m.commune, m.device_id, m.device_name, labels[m.why], m.delivery.detail,
         _short(m.last_seen, summary.tz))
        for m in summary.report.misses
    ]  # fmt: skip
    return ScreenTable(_("Not aired"), (*columns, _("Last heard")), rows, frozenset({0, 2}))


def _broadcasts_screen(summary: OfficeSummary) -> ScreenTable:
    columns = (_("Started"), _("Broadcast"), _("Bulletin"), _("Priority"), _("State"), _("Aired"))
    rows = [_broadcast_cells(b, summary.tz) for b in summary.report.broadcasts]
    return ScreenTable(
        _("Broadcasts"), (*columns, _("Started / approved / stopped by")), rows, frozenset({1})
    )


def _broadcast_cells(b: BroadcastLine, tz: ZoneInfo) -> tuple[str, ...]:
    i = b.info
    head = (
        _short(i.created_at, tz),
        i.id,
        b.bulletin,
        word(views.priority_name(i.priority)),
        word(i.state.value),
    )
    return (*head, f"{b.aired}/{b.clusters}", _people(i.started_by, b.approved_by, i.stopped_by))
