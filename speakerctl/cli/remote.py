"""`speakerctl devices set-volume|reboot|ping|locate`: act on one cluster, acknowledged or timed out."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.cli.common import console, print_json, run, state
from speakerctl.config import Settings
from speakerctl.controller.app import open_store, zone_path
from speakerctl.controller.remote import remote_action
from speakerctl.controller.service import Controller, ManageResult
from speakerctl.errors import ConfigError
from speakerctl.protocol import Ping, Reboot, SetVolume

Timeout = Annotated[float, typer.Option(help="Seconds to wait for the cluster's acknowledgement.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DeviceId = Annotated[str, typer.Argument(help="Cluster id.")]


async def _act(
    settings: Settings, device_id: str, body: SetVolume | Reboot | Ping, timeout: float
) -> ManageResult:
    store = open_store(settings)
    store.devices.get(device_id)  # NotFound before connecting to the broker
    controller = Controller(settings, store)
    async with controller.running():
        return await remote_action(controller, device_id, body, timeout=timeout)


def _report(result: ManageResult, what: str, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "device": result.device_id,
                "action": what,
                "ok": result.ok,
                "detail": result.detail,
                "rtt_ms": round(result.rtt_ms, 1),
                "clock_offset_ms": round(result.clock_offset_ms),
            }
        )
    elif result.ok:
        console.print(f"{result.device_id}: {what} acknowledged in {result.rtt_ms:.0f} ms")
    else:
        console.print(f"[red]{result.device_id} refused {what}:[/] {result.detail}")
    if not result.ok:
        raise typer.Exit(1)


def set_volume(
    device_id: DeviceId,
    volume: Annotated[int, typer.Argument(help="0..100.")],
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """Set a cluster's volume; exits 7 if it does not acknowledge."""
    if not 0 <= volume <= 100:
        raise ConfigError(f"volume must be 0..100, got {volume}")
    _report(run(_act(state.settings, device_id, SetVolume(volume), timeout)), f"volume {volume}", as_json)


def reboot(device_id: DeviceId, timeout: Timeout = 10.0, as_json: Json = False) -> None:
    """Reboot a cluster; it acknowledges first, then drops off and comes back."""
    _report(run(_act(state.settings, device_id, Reboot(), timeout)), "reboot", as_json)


def ping(device_id: DeviceId, timeout: Timeout = 10.0, as_json: Json = False) -> None:
    """Round-trip time to a cluster and its clock offset."""
    result = run(_act(state.settings, device_id, Ping(), timeout))
    if as_json or not result.ok:
        _report(result, "ping", as_json)
        return
    console.print(
        f"{result.device_id}: round trip {result.rtt_ms:.0f} ms, "
        f"clock offset {result.clock_offset_ms:+.0f} ms"
    )


def map_link(lat: float, lon: float) -> str:
    """An OpenStreetMap link centred on the point."""
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"


def locate(device_id: DeviceId, as_json: Json = False) -> None:
    """Where a cluster stands: coordinates from the inventory and a map link."""
    store = open_store(state.settings)
    device = store.devices.get(device_id)
    link = map_link(device.lat, device.lon) if device.lat is not None and device.lon is not None else None
    where = zone_path(store, device.zone_id)
    if as_json:
        print_json(
            {
                "device": device.id,
                "name": device.name,
                "zone_path": where,
                "lat": device.lat,
                "lon": device.lon,
                "map": link,
            }
        )
        return
    console.print(f"{device.id} — {device.name}\n{where}", highlight=False)
    if link is None:
        console.print("[yellow]the inventory has no coordinates for this cluster[/]")
    else:
        console.print(f"{device.lat:.6f}, {device.lon:.6f}\n{link}", highlight=False)
