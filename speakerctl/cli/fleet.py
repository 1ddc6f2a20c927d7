"""`speakerctl fleet status`: per zone, how many clusters are online, offline and faulty."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, print_json, state
from speakerctl.controller.app import open_store
from speakerctl.controller.fleetview import FleetSnapshot, fleet_snapshot, state_counts
from speakerctl.controller.health import HealthPolicy

app = typer.Typer(help="The fleet as a whole.", no_args_is_help=True)


def snapshot_json(snapshot: FleetSnapshot) -> dict[str, object]:
    """The per-zone counts and the last broadcast's reach, JSON-ready."""
    last = snapshot.broadcasts[0] if snapshot.broadcasts else None
    return {
        "at": snapshot.at.isoformat(),
        "totals": dict(state_counts(snapshot)),
        "zones": [asdict(z) for z in snapshot.zones],
        "last_broadcast": None
        if last is None
        else {
            "id": last.broadcast.id,
            "state": last.broadcast.state.value,
            "targeted": last.targeted,
            "reached": last.reached,
            "played": last.played,
        },
    }


@app.command("status")
def status(
    depth: Annotated[int, typer.Option(help="Zone levels to show (1: province, 2: districts...).")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per zone: clusters online, offline and with a fault; how far the last broadcast reached."""
    store = open_store(state.settings)
    snapshot = fleet_snapshot(store, datetime.now(UTC), HealthPolicy.from_settings(state.settings))
    if as_json:
        print_json(snapshot_json(snapshot))
        return
    last = snapshot.broadcasts[0] if snapshot.broadcasts else None
    table = Table("zone", "clusters", "online", "offline", "fault", title="fleet", title_justify="left")
    if last is not None:
        table.add_column(f"last broadcast reached / played ({last.broadcast.id})")
    for z in snapshot.zones:
        if z.depth >= depth:
            continue
        cells = [
            "  " * z.depth + z.name,
            str(z.total),
            f"[green]{z.online}[/]",
            f"[red]{z.offline}[/]" if z.offline else "0",
            f"[red]{z.fault}[/]" if z.fault else "0",
        ]
        if last is not None:
            cells.append(f"{z.last_reached}/{z.last_targeted} · {z.last_played}" if z.last_targeted else "")
        table.add_row(*cells)
    console.print(table)
    totals = state_counts(snapshot)
    console.print(
        f"{totals['online']} online, {totals['offline']} offline, {totals['fault']} with a fault; "
        f"{len(snapshot.alerts)} open alerts (speakerctl alerts list --open)"
    )
