"""`speakerctl report`: what a broadcast reached."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, print_json, state
from speakerctl.controller.app import open_store


def report(
    broadcast_id: Annotated[str, typer.Argument(help="Broadcast id (see the broadcast command).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    failures: Annotated[bool, typer.Option(help="List every device that did not play.")] = True,
) -> None:
    """Report a broadcast: counts per state and the devices that did not play, with reasons."""
    store = open_store(state.settings, sync_inventory=False)
    info = store.broadcast(broadcast_id)
    counts = store.delivery_counts(broadcast_id)
    missed = [d for d in store.deliveries(broadcast_id) if d.state != "finished"]
    if as_json:
        print_json(
            {
                "broadcast": info.id,
                "bulletin": info.bulletin_id,
                "state": info.state,
                "priority": info.priority,
                "targets": list(info.targets),
                "counts": counts,
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
        f"{info.state}, {counts.get('finished', 0)}/{total} played"
    )
    table = Table("state", "devices")
    for name, n in sorted(counts.items()):
        table.add_row(name, str(n))
    console.print(table)
    if failures and missed:
        detail = Table("device", "state", "reason", "detail", title="not played")
        for d in missed:
            detail.add_row(d.device_id, d.state, d.reason or "", d.detail or "")
        console.print(detail)
