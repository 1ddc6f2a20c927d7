"""`speakerctl devices`: the clusters and their latest status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli import remote
from speakerctl.cli.common import console, print_json, state
from speakerctl.controller.app import open_store, zone_path
from speakerctl.controller.fleetview import device_health
from speakerctl.controller.health import HealthPolicy
from speakerctl.errors import ConfigError
from speakerctl.store import DeviceInfo, Store

app = typer.Typer(help="Loudspeaker clusters: inventory and latest status.", no_args_is_help=True)
app.command("set-volume")(remote.set_volume)
app.command("reboot")(remote.reboot)
app.command("ping")(remote.ping)
app.command("locate")(remote.locate)


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
        "link_network": d.link_network,
        "rssi_dbm": d.rssi_dbm,
        "temperature_c": d.temperature_c,
        "storage_free_mb": d.storage_free_mb,
        "clock_offset_ms": d.clock_offset_ms,
        "cached_count": d.cached_count,
        "lat": d.lat,
        "lon": d.lon,
    }


@app.command("list")
def list_devices(
    zone: Annotated[str | None, typer.Option(help="Only this zone and the zones below it.")] = None,
    state_: Annotated[
        str | None, typer.Option("--state", help="online or offline (heard within heartbeat_timeout_s).")
    ] = None,
    fault: Annotated[
        bool, typer.Option("--fault", help="Only clusters with an amplifier or sound fault.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List clusters with their online state."""
    if state_ not in (None, "online", "offline"):
        raise ConfigError(f"unknown state {state_!r}", hint="use --state online or --state offline")
    store = open_store(state.settings)
    zone_ids = [store.zones.get(zone).id] if zone else None  # zones below it are included
    policy = HealthPolicy.from_settings(state.settings)
    health = device_health(
        store.devices.all(zone_ids=zone_ids), store.alerts.all(open_only=True), _now(), policy
    )
    health = [
        h for h in health if (state_ is None or h.online == (state_ == "online")) and (h.fault or not fault)
    ]
    devices = [h.device for h in health]
    if as_json:
        print_json(
            [{**_row(h.device), "online": h.online, "fault": h.fault, "alerts": h.alerts} for h in health]
        )
        return
    table = Table(title=f"{len(devices)} clusters", title_justify="left")
    for column in ("id", "name", "zone", "model", "online", "volume", "playing", "last seen"):
        table.add_column(column)
    for d, h in zip(devices, health, strict=True):
        seen = d.last_seen.strftime("%Y-%m-%d %H:%M:%S") if d.last_seen else "never"
        table.add_row(
            d.id,
            d.name,
            d.zone_id,
            d.model,
            "[green]yes[/]" if h.online else "[red]no[/]",
            str(d.volume),
            d.playing or "",
            seen,
        )
    console.print(table)


@app.command("show")
def show_device(
    device_id: Annotated[str, typer.Argument(help="Cluster id.")],
    history: Annotated[int, typer.Option(help="How many recent statuses to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one cluster in detail, with its recent statuses, alerts and remote actions."""
    store = open_store(state.settings)
    row = _row(store.devices.get(device_id))
    row["zone_path"] = zone_path(store, store.devices.get(device_id).zone_id)
    extra = recent_activity(store, device_id, history)
    if as_json:
        print_json({**row, **extra})
        return
    table = Table(show_header=False)
    for key, value in row.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
    print_activity(extra)


def _now() -> datetime:
    return datetime.now(UTC)


def recent_activity(store: Store, device_id: str, history: int) -> dict[str, list[dict[str, object]]]:
    """The device's recent statuses, its alerts and the remote actions taken on it."""
    statuses: list[dict[str, object]] = [
        {
            "received_at": r.received_at.isoformat(),
            "online": r.online,
            "volume": r.status.volume,
            "playing": r.status.playing,
            "amplifier": r.status.amplifier,
            "power": r.status.power.source,
            "battery_pct": r.status.power.battery_pct,
            "rssi_dbm": r.status.link.rssi_dbm,
            "temperature_c": r.status.temperature_c,
            "clock_offset_ms": r.status.clock_offset_ms,
        }
        for r in store.statuses.history(device_id, limit=history)
    ]
    alerts: list[dict[str, object]] = [
        {
            "kind": a.kind,
            "opened_at": a.opened_at.isoformat(),
            "closed_at": _iso(a.closed_at),
            "detail": a.detail,
        }
        for a in store.alerts.all(device_id=device_id, limit=history)
    ]
    actions: list[dict[str, object]] = [
        {
            "at": a.at.isoformat(),
            "actor": a.actor,
            "action": a.action,
            "outcome": a.outcome,
            "detail": a.detail,
        }
        for a in store.audit.entries(device_id, limit=history)
    ]
    return {"history": statuses, "alerts": alerts, "actions": actions}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def print_activity(activity: dict[str, list[dict[str, object]]]) -> None:
    """One table per kind of activity, skipping empty ones."""
    for title, rows in activity.items():
        if not rows:
            continue
        table = Table(*rows[0].keys(), title=f"recent {title}", title_justify="left")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
