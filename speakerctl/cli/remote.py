"""`speakerctl devices set-volume|reboot|ping|locate`: act on one cluster, acknowledged or timed out."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.app import fleet
from speakerctl.app import remote as remote_app
from speakerctl.app.views import RemoteResultView
from speakerctl.cli.common import console, current_actor, print_json, run, state
from speakerctl.cli.text import safe
from speakerctl.i18n import _

Timeout = Annotated[float, typer.Option(help=_("Seconds to wait for the cluster's acknowledgement."))]
Json = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]
DeviceId = Annotated[str, typer.Argument(help=_("Cluster: id or name."))]


def _report(result: RemoteResultView, as_json: bool) -> None:
    if as_json:
        print_json(result)
    elif result.ok:
        done = _("{device}: {action} acknowledged in {ms} ms")
        console.print(
            done.format(device=safe(result.device), action=result.action, ms=f"{result.rtt_ms:.0f}")
        )
    else:
        refused = _("{device} refused {action}:").format(device=safe(result.device), action=result.action)
        console.print(f"[red]{refused}[/] {safe(result.detail)}")
    if not result.ok:
        raise typer.Exit(1)


def set_volume(
    device_id: DeviceId,
    volume: Annotated[int, typer.Argument(help=_("0..100."))],
    timeout: Timeout = 10.0,
    as_json: Json = False,
) -> None:
    """Set a cluster's volume; exits 7 if it does not acknowledge."""
    remote_app.volume_action(volume)  # out of range: before connecting
    _report(
        run(remote_app.set_volume(state.context(), device_id, volume, timeout, actor=current_actor())),
        as_json,
    )


def reboot(device_id: DeviceId, timeout: Timeout = 10.0, as_json: Json = False) -> None:
    """Reboot a cluster; it acknowledges first, then drops off and comes back."""
    _report(run(remote_app.reboot(state.context(), device_id, timeout, actor=current_actor())), as_json)


def ping(device_id: DeviceId, timeout: Timeout = 10.0, as_json: Json = False) -> None:
    """Round-trip time to a cluster and its clock offset."""
    result = run(remote_app.ping(state.context(), device_id, timeout, actor=current_actor()))
    if as_json or not result.ok:
        _report(result, as_json)
        return
    text = _("{device}: round trip {rtt} ms, clock offset {offset} ms")
    console.print(
        text.format(
            device=safe(result.device), rtt=f"{result.rtt_ms:.0f}", offset=f"{result.clock_offset_ms:+d}"
        )
    )


def locate(device_id: DeviceId, as_json: Json = False) -> None:
    """Where a cluster stands: coordinates from the inventory and a map link."""
    where = fleet.locate(state.context(), device_id)
    if as_json:
        print_json(where)
        return
    console.print(f"{safe(where.device)} — {safe(where.name)}\n{safe(where.zone_path)}", highlight=False)
    if where.map is None or where.lat is None or where.lon is None:
        console.print("[yellow]" + _("the inventory has no coordinates for this cluster") + "[/]")
    else:
        console.print(f"{where.lat:.6f}, {where.lon:.6f}\n{where.map}", highlight=False)
