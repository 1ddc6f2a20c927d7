"""`speakerctl alerts`: what the health rules opened and closed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import reports
from speakerctl.app.labels import word
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import id_column, safe
from speakerctl.dates import format_moment, time_zone, zone_label
from speakerctl.i18n import _, ngettext

app = typer.Typer(
    help=_("Alerts opened by the health rules (evaluated by `speakerctl serve`)."), no_args_is_help=True
)


@app.command("list")
def list_alerts(
    open_only: Annotated[bool, typer.Option("--open", help=_("Only alerts still open."))] = False,
    zone: Annotated[str | None, typer.Option(help=_("Only clusters in this zone and below."))] = None,
    limit: Annotated[int, typer.Option(help=_("At most this many, newest first."))] = 200,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """List alerts, newest first."""
    ctx = state.context()
    alerts = reports.alerts(ctx, open_only, zone, limit)
    if as_json:
        print_json(alerts)
        return
    tz = time_zone(ctx.settings.timezone)
    label = zone_label(tz, ctx.clock.now())
    table = Table(
        _("opened ({zone})").format(zone=label),
        _("closed"),
        _("kind"),
        id_column(_("cluster"), (a.device for a in alerts)),
        _("detail"),
        title=ngettext("{n} alert", "{n} alerts", len(alerts)).format(n=len(alerts)),
        title_justify="left",
    )
    for a in alerts:
        closed = format_moment(a.closed_at, tz) if a.closed_at else "[red]" + _("open") + "[/]"
        cells = (safe(word(a.kind)), safe(a.device), safe(a.detail))
        table.add_row(format_moment(a.opened_at, tz), closed, *cells)
    console.print(table)
