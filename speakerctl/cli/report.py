"""`speakerctl report`: what a broadcast reached, or the play log of a period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from speakerctl.app import reports
from speakerctl.app.context import AppContext
from speakerctl.app.labels import word
from speakerctl.app.views import ZoneOutcomeView
from speakerctl.cli.common import console, console_err, print_json, state
from speakerctl.cli.text import id_column, safe
from speakerctl.errors import UsageError
from speakerctl.i18n import _, ngettext


def report(
    broadcast_id: Annotated[
        str | None, typer.Argument(help=_("Broadcast id (see the broadcast command); omit for a play log."))
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
    failures: Annotated[bool, typer.Option(help=_("List every device that did not play."))] = True,
    since: Annotated[
        str | None, typer.Option(help=_("Play log from this local date (dd/mm/yyyy) or date and time."))
    ] = None,
    until: Annotated[
        str | None, typer.Option(help=_("Play log up to this local date (inclusive) or date and time."))
    ] = None,
    zone: Annotated[str | None, typer.Option(help=_("Play log of this zone and below only."))] = None,
    fmt: Annotated[str, typer.Option("--format", help=_("table, json, csv or xlsx."))] = "table",
    output: Annotated[Path | None, typer.Option(help=_("File for --format csv or xlsx."))] = None,
    summary: Annotated[
        bool,
        typer.Option(
            "--summary",
            help=_(
                "The office report: per commune, the clusters that did not air and why, who started, "
                "approved and stopped each broadcast (of BROADCAST, or of the broadcasts sent since --since)."
            ),
        ),
    ] = False,
    delimiter: Annotated[str, typer.Option(help=_("CSV delimiter: ',' or ';' (Excel in Vietnamese)."))] = ",",
) -> None:
    """Report a broadcast (per state, per district, with reasons), or the play log of a period."""
    ctx = state.context()
    if summary or (broadcast_id is not None and output is not None):
        _office(ctx, broadcast_id, since, until, zone, reports.parse_format(fmt, output), output, delimiter)
        return
    if broadcast_id is not None:
        _broadcast_report(ctx, broadcast_id, as_json, failures)
        return
    if since is None:
        raise UsageError(_("give a BROADCAST id, or --since for a play log"), hint="speakerctl report --help")
    chosen = reports.parse_format("json" if as_json else fmt, output)
    log = reports.play_log(ctx, since, until, zone)
    if output is not None and chosen in reports.FILE_FORMATS:
        reports.export_play_log(log, output, chosen)
        count = ngettext("{n} play written to {file}", "{n} plays written to {file}", len(log.entries))
        console_err.print(count.format(n=len(log.entries), file=safe(output)))
    elif chosen is reports.ReportFormat.JSON:
        print_json(log.views())
    else:
        _play_table(log)


def _office(
    ctx: AppContext,
    broadcast_id: str | None,
    since: str | None,
    until: str | None,
    zone: str | None,
    fmt: reports.ReportFormat,
    output: Path | None,
    delimiter: str,
) -> None:
    """The office report: files (csv, xlsx), or its tables on screen."""
    found = reports.office(ctx, since, until, zone, broadcast_id)
    if output is not None and fmt in reports.FILE_FORMATS:
        for path in reports.export_office(found, output, fmt, delimiter):
            console_err.print(_("written: {path}").format(path=safe(path)))
        return
    if fmt is not reports.ReportFormat.TABLE:
        raise UsageError(
            _("the summary is a table, or a csv or xlsx file"), hint=_("use --format xlsx --output FILE")
        )
    for screen in found.screens():
        console.print(_screen_table(screen, f"{safe(found.title)}: {safe(screen.name)}"))


def _screen_table(screen: reports.ScreenTable, title: str) -> Table:
    """A report table that fits the terminal: ids whole, other cells folded rather than cut."""
    columns = [
        id_column(safe(name), (row[i] for row in screen.rows))
        if i in screen.ids
        else Column(safe(name), overflow="fold")
        for i, name in enumerate(screen.columns)
    ]
    table = Table(*columns, title=title, title_justify="left")
    for row in screen.rows:
        table.add_row(*map(safe, row))
    return table


def _play_table(log: reports.PlayLog) -> None:
    plays = ngettext("{n} play", "{n} plays", len(log.entries)).format(n=len(log.entries))
    console.print(_screen_table(log.screen(), f"{safe(log.title)}: {plays}"))


def _broadcast_report(ctx: AppContext, broadcast_id: str, as_json: bool, failures: bool) -> None:
    found = reports.broadcast_report(ctx, broadcast_id)
    view = found.view
    if as_json:
        print_json(view)
        return
    total = sum(view.counts.values())
    line = _("bulletin {bulletin} → {targets}: {state}, {played}/{total} played").format(
        bulletin=view.bulletin,
        targets=safe(", ".join(view.targets)),
        state=word(view.state),
        played=found.played,
        total=total,
    )
    console.print(f"[bold]{safe(view.broadcast)}[/] {line}")
    who = [(_("started by"), view.started_by), (_("approved by"), view.approved_by)]
    who.append((_("stopped by"), view.stopped_by))
    if any(name for _label, name in who):
        console.print("; ".join(f"{label} {safe(name)}" for label, name in who if name))
    table = Table(_("state"), _("devices"))
    for name, n in sorted(view.counts.items()):
        table.add_row(safe(word(name)), str(n))
    console.print(table)
    console.print(_zone_table(view.zones))
    if failures and view.not_played:
        device = id_column(_("device"), (d.device for d in view.not_played))
        detail = Table(device, _("state"), _("reason"), _("detail"), title=_("not played"))
        for d in view.not_played:
            detail.add_row(safe(d.device), safe(word(d.state)), safe(word(d.reason or "")), safe(d.detail))
        console.print(detail)


def _zone_table(outcomes: list[ZoneOutcomeView]) -> Table:
    """Reached, played, failed and missed per zone, with the commonest reasons."""
    headers = (_("zone"), _("targeted"), _("reached"), _("played"), _("failed"), _("missed"), _("reasons"))
    table = Table(*headers, title=_("per zone"))
    for o in outcomes:
        reasons = safe(", ".join(f"{word(r)} ×{n}" for r, n in list(o.reasons.items())[:4]))
        cells = (o.targeted, o.reached, o.played, o.failed, o.missed)
        table.add_row(safe(o.name), *map(str, cells), reasons)
    return table
