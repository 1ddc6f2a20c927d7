"""`speakerctl devices`: the clusters and their latest status."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, print_json, state
from speakerctl.controller.app import open_store, zone_path
from speakerctl.store import DeviceInfo

app = typer.Typer(help="Loudspeaker clusters: inventory and latest status.", no_args_is_help=True)


def _row(d: DeviceInfo) -> dict[str, object]:
    return {
        "id": d.id,
        "name": d.name,
        "zone": d.zone_id,
        "model": d.model,
        "network": d.network,
        "online": d.online,
        "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        "volume": d.volume,
        "playing": d.playing,
        "amplifier": d.amplifier,
        "power": d.power_source,
        "battery_pct": d.battery_pct,
        "firmware": d.firmware,
        "lat": d.lat,
        "lon": d.lon,
    }


@app.command("list")
def list_devices(
    zone: Annotated[str | None, typer.Option(help="Only this zone and the zones below it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List clusters with their online state."""
    store = open_store(state.settings)
    zone_ids = [store.zone(zone).id] if zone else None  # zones below it are included
    devices = store.devices(zone_ids=zone_ids)
    if as_json:
        print_json([_row(d) for d in devices])
        return
    table = Table(title=f"{len(devices)} clusters", title_justify="left")
    for column in ("id", "name", "zone", "model", "online", "volume", "playing", "last seen"):
        table.add_column(column)
    for d in devices:
        seen = d.last_seen.strftime("%Y-%m-%d %H:%M:%S") if d.last_seen else "never"
        table.add_row(
            d.id,
            d.name,
            d.zone_id,
            d.model,
            "[green]yes[/]" if d.online else "[red]no[/]",
            str(d.volume),
            d.playing or "",
            seen,
        )
    console.print(table)


@app.command("show")
def show_device(
    device_id: Annotated[str, typer.Argument(help="Cluster id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one cluster in detail."""
    store = open_store(state.settings)
    row = _row(store.device(device_id))
    row["zone_path"] = zone_path(store, store.device(device_id).zone_id)
    if as_json:
        print_json(row)
        return
    table = Table(show_header=False)
    for key, value in row.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
