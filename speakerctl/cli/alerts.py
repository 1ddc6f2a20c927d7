"""`speakerctl alerts`: what the health rules opened and closed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, print_json, state
from speakerctl.controller.app import open_store

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
    store = open_store(state.settings)
    alerts = store.alerts.all(
        open_only=open_only, zone_ids=[store.zones.get(zone).id] if zone else None, limit=limit
    )
    if as_json:
        print_json(
            [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "device": a.device_id,
                    "opened_at": a.opened_at.isoformat(),
                    "closed_at": a.closed_at.isoformat() if a.closed_at else None,
                    "detail": a.detail,
                }
                for a in alerts
            ]
        )
        return
    table = Table(
        "opened", "closed", "kind", "cluster", "detail", title=f"{len(alerts)} alerts", title_justify="left"
    )
    for a in alerts:
        closed = a.closed_at.strftime("%Y-%m-%d %H:%M") if a.closed_at else "[red]open[/]"
        table.add_row(a.opened_at.strftime("%Y-%m-%d %H:%M"), closed, a.kind, a.device_id, a.detail)
    console.print(table)
