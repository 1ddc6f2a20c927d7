"""`speakerctl report`: what a broadcast reached."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.playlog import play_log_report, zone_table
from speakerctl.controller.app import open_store
from speakerctl.controller.reports import outcome_by_zone
from speakerctl.errors import ConfigError
from speakerctl.protocol.lifecycle import FINISHED


def report(
    broadcast_id: Annotated[
        str | None, typer.Argument(help="Broadcast id (see the broadcast command); omit for a play log.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    failures: Annotated[bool, typer.Option(help="List every device that did not play.")] = True,
    since: Annotated[str | None, typer.Option(help="Play log from this local date or date-time.")] = None,
    until: Annotated[
        str | None, typer.Option(help="Play log up to this local date (inclusive) or time.")
    ] = None,
    zone: Annotated[str | None, typer.Option(help="Play log of this zone and below only.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or xlsx.")] = "table",
    output: Annotated[Path | None, typer.Option(help="File for --format csv or xlsx.")] = None,
) -> None:
    """Report a broadcast (per state, per district, with reasons), or the play log of a period."""
    if broadcast_id is None:
        if since is None:
            raise ConfigError(
                "give a BROADCAST id, or --since for a play log", hint="speakerctl report --help"
            )
        play_log_report(state.settings, since, until, zone, "json" if as_json else fmt, output)
        return
    store = open_store(state.settings, sync_inventory=False)
    info = store.broadcasts.get(broadcast_id)
    by_zone = outcome_by_zone(store, broadcast_id)
    counts = store.deliveries.counts(broadcast_id)
    missed = [d for d in store.deliveries.of(broadcast_id) if d.state is not FINISHED]
    if as_json:
        print_json(
            {
                "broadcast": info.id,
                "bulletin": info.bulletin_id,
                "state": info.state,
                "priority": info.priority,
                "targets": list(info.targets),
                "counts": counts,
                "zones": [o.as_dict() for o in by_zone],
                "not_played": [
                    {"device": d.device_id, "state": d.state, "reason": d.reason, "detail": d.detail}
                    for d in missed
                ],
            }
        )
        return
    total = sum(counts.values())
    console.print(
        f"[bold]{info.id}[/] bulletin {info.bulletin_id} → {', '.join(info.targets)}: "
        f"{info.state}, {counts.get(FINISHED, 0)}/{total} played"
    )
    table = Table("state", "devices")
    for name, n in sorted(counts.items()):
        table.add_row(name, str(n))
    console.print(table)
    console.print(zone_table(by_zone))
    if failures and missed:
        detail = Table("device", "state", "reason", "detail", title="not played")
        for d in missed:
            detail.add_row(d.device_id, d.state, d.reason or "", d.detail or "")
        console.print(detail)
