"""`speakerctl devices`: the clusters and their latest status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Annotated

import typer
from rich.table import Column, Table

from speakerctl.app import fleet
from speakerctl.app.views import DeviceDetailView, View
from speakerctl.cli import remote
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import id_column, safe
from speakerctl.dates import format_moment, time_zone, zone_label
from speakerctl.i18n import _, ngettext

app = typer.Typer(help=_("Loudspeaker clusters: inventory and latest status."), no_args_is_help=True)
app.command("set-volume")(remote.set_volume)
app.command("reboot")(remote.reboot)
app.command("ping")(remote.ping)
app.command("locate")(remote.locate)


@app.command("list")
def list_devices(
    zone: Annotated[str | None, typer.Option(help=_("Only this zone and the zones below it."))] = None,
    state_: Annotated[
        str | None, typer.Option("--state", help=_("online or offline (heard within heartbeat_timeout_s)."))
    ] = None,
    fault: Annotated[
        bool, typer.Option("--fault", help=_("Only clusters with an amplifier or sound fault."))
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """List clusters with their online state."""
    ctx = state.context()
    devices = fleet.devices(ctx, zone, state_, fault)
    if as_json:
        print_json(devices)
        return
    tz = time_zone(ctx.settings.timezone)
    ids = id_column("id", (d.id for d in devices))
    zones = Column(_("zone"), overflow="fold")
    seen_at = _("last seen ({zone})").format(zone=zone_label(tz, ctx.clock.now()))
    others = (_("model"), _("online"), _("volume"), _("playing"), seen_at)
    title = ngettext("{n} cluster", "{n} clusters", len(devices)).format(n=len(devices))
    table = Table(ids, _("name"), zones, *others, title=title, title_justify="left")
    for d in devices:
        seen = format_moment(d.last_seen, tz, seconds=True) if d.last_seen else _("never")
        online = "[green]" + _("yes") + "[/]" if d.online else "[red]" + _("no") + "[/]"
        cells = (d.id, d.name, d.zone, d.model)
        table.add_row(
            *map(safe, cells), online, "—" if d.volume is None else str(d.volume), safe(d.playing), seen
        )
    console.print(table)


@app.command("show")
def show_device(
    device_id: Annotated[str, typer.Argument(help=_("Cluster: id or name."))],
    history: Annotated[int, typer.Option(help=_("How many recent statuses to show."))] = 10,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Show one cluster in detail, with its recent statuses, alerts and remote actions."""
    ctx = state.context()
    detail = fleet.device(ctx, device_id, history)
    if as_json:
        print_json(detail)
        return
    tz = time_zone(ctx.settings.timezone)
    table = Table(show_header=False)
    for key, value in _cells(detail, tz, label=True).items():
        if key not in ACTIVITY:
            table.add_row(key, safe(value))
    console.print(table)
    print_activity(detail, tz)


ACTIVITY = ("history", "alerts", "actions")


def print_activity(detail: DeviceDetailView, tz: tzinfo) -> None:
    """One table per kind of activity, skipping empty ones; times in `tz`."""
    activity: tuple[tuple[str, Sequence[View]], ...] = (
        (_("recent history"), detail.history),
        (_("recent alerts"), detail.alerts),
        (_("recent actions"), detail.actions),
    )
    for title, rows in activity:
        _activity_table(title, rows, tz)


def _activity_table(title: str, rows: Sequence[View], tz: tzinfo) -> None:
    if not rows:
        return
    cells = [_cells(r, tz) for r in rows]
    label = zone_label(tz, state.context().clock.now())
    table = Table(*cells[0].keys(), title=f"{title} ({label})", title_justify="left")
    for row in cells:
        table.add_row(*map(safe, row.values()))
    console.print(table)


def _cells(view: View, tz: tzinfo, label: bool = False) -> dict[str, object]:
    """A record's fields as its JSON has them, but times in `tz` as people read them."""
    raw = dict(view)
    return {
        key: format_moment(raw[key], tz, seconds=True, label=label)
        if isinstance(raw[key], datetime)
        else value
        for key, value in view.dump().items()
    }
