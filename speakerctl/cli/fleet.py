"""`speakerctl fleet status`: per zone, how many clusters are online, offline and faulty."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import fleet, records
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import safe
from speakerctl.fleet import zone_title
from speakerctl.i18n import _

app = typer.Typer(help=_("The fleet as a whole."), no_args_is_help=True)


@app.command("status")
def status(
    depth: Annotated[int, typer.Option(help=_("Zone levels to show (1: province, 2: districts...)."))] = 2,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Per zone: clusters online, offline and with a fault; how far the last broadcast reached."""
    view = records.fleet(fleet.snapshot(state.context()))
    if as_json:
        print_json(view)
        return
    last = view.last_broadcast
    headers = (_("zone"), _("clusters"), _("online"), _("offline"), _("fault"))
    table = Table(*headers, title=_("fleet"), title_justify="left")
    if last is not None:
        table.add_column(_("last broadcast reached / played ({id})").format(id=safe(last.id)))
    for z in view.zones:
        if z.depth >= depth:
            continue
        cells = [
            "  " * z.depth + safe(zone_title(z.name, z.kind)),
            str(z.total),
            f"[green]{z.online}[/]",
            f"[red]{z.offline}[/]" if z.offline else "0",
            f"[red]{z.fault}[/]" if z.fault else "0",
        ]
        if last is not None:
            cells.append(f"{z.last_reached}/{z.last_targeted} · {z.last_played}" if z.last_targeted else "")
        table.add_row(*cells)
    console.print(table)
    totals = view.totals
    console.print(
        _("{online} online, {offline} offline, {fault} with a fault; {alerts} open alerts").format(
            online=totals["online"], offline=totals["offline"], fault=totals["fault"], alerts=len(view.alerts)
        )
        + " (speakerctl alerts list --open)"
    )
