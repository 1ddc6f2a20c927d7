"""`speakerctl alerts`: what the health rules opened and closed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import reports
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import id_column, safe

app = typer.Typer(
    help="Alerts opened by the health rules (evaluated by `speakerctl serve`).", no_args_is_help=True
)


@app.command("list")
def list_alerts(
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts still open.")] = False,
    zone: Annotated[str | None, typer.Option(help="Only clusters in this zone and below.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List alerts, newest first."""
    alerts = reports.alerts(state.context(), open_only, zone, limit)
    if as_json:
        print_json(alerts)
        return
    table = Table(
        "opened",
        "closed",
        "kind",
        id_column("cluster", (a.device for a in alerts)),
        "detail",
        title=f"{len(alerts)} alerts",
        title_justify="left",
    )
    for a in alerts:
        closed = a.closed_at.strftime("%Y-%m-%d %H:%M") if a.closed_at else "[red]open[/]"
        table.add_row(
            a.opened_at.strftime("%Y-%m-%d %H:%M"), closed, safe(a.kind), safe(a.device), safe(a.detail)
        )
    console.print(table)
