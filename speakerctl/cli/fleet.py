"""`speakerctl fleet status`: per zone, how many clusters are online, offline and faulty."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import fleet, records
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import safe

app = typer.Typer(help="The fleet as a whole.", no_args_is_help=True)


@app.command("status")
def status(
    depth: Annotated[int, typer.Option(help="Zone levels to show (1: province, 2: districts...).")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per zone: clusters online, offline and with a fault; how far the last broadcast reached."""
    view = records.fleet(fleet.snapshot(state.context()))
    if as_json:
        print_json(view)
        return
    last = view.last_broadcast
    table = Table("zone", "clusters", "online", "offline", "fault", title="fleet", title_justify="left")
    if last is not None:
        table.add_column(f"last broadcast reached / played ({safe(last.id)})")
    for z in view.zones:
        if z.depth >= depth:
            continue
        cells = [
            "  " * z.depth + safe(z.name),
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
        f"{totals['online']} online, {totals['offline']} offline, {totals['fault']} with a fault; "
        f"{len(view.alerts)} open alerts (speakerctl alerts list --open)"
    )
