"""`speakerctl broadcast stop ID` and `speakerctl stop --zone ZONE`: stop, and show who confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import stops
from speakerctl.app.context import AppContext
from speakerctl.app.labels import word
from speakerctl.app.views import StopView
from speakerctl.cli.common import console, current_actor, print_json, run, state
from speakerctl.cli.text import safe
from speakerctl.errors import UsageError
from speakerctl.i18n import _

Wait = Annotated[
    float, typer.Option("--wait", help=_("Seconds to wait for the clusters to confirm the stop."))
]
AsJson = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]


def stop_broadcast(
    broadcast_id: Annotated[
        str, typer.Argument(help=_("Broadcast id (printed by `broadcast`, see `report`)."))
    ],
    wait: Wait = stops.DEFAULT_WAIT_S,
    as_json: AsJson = False,
) -> None:
    """Stop a broadcast on every cluster still to air it; says how many clusters confirmed."""
    show([stop_now(state.context(), broadcast_id, wait)], as_json)


def stop_now(ctx: AppContext, broadcast_id: str, wait_s: float = stops.DEFAULT_WAIT_S) -> StopView:
    """Stop one broadcast as the CLI's user."""
    return run(stops.stop(ctx, current_actor(), broadcast_id, wait_s=wait_s))


def stop_zone(
    zone: Annotated[
        list[str], typer.Option("--zone", help=_("Zone id, or ids separated by commas; repeat for more."))
    ],
    wait: Wait = stops.DEFAULT_WAIT_S,
    as_json: AsJson = False,
) -> None:
    """Stop what is on air now in a zone, on that zone's clusters only (other zones keep playing)."""
    zone_ids = zone_list(zone)
    found = run(stops.stop_zone(state.context(), current_actor(), zone_ids, wait_s=wait))
    if not found and not as_json:
        console.print(_("nothing is on air in {zones}").format(zones=safe(", ".join(zone_ids))))
        return
    show(found, as_json)


def zone_list(values: Sequence[str]) -> list[str]:
    """Zone ids from repeated and comma-separated values."""
    ids = [z.strip() for value in values for z in value.split(",") if z.strip()]
    if not ids:
        raise UsageError(_("no zone given"), hint=_("e.g. speakerctl stop --zone ZONE"))
    return list(dict.fromkeys(ids))


def show(found: list[StopView], as_json: bool) -> None:
    """The stops: one line each, and the clusters that did not confirm."""
    if as_json:
        print_json(found)
        return
    for view in found:
        console.print(summary(view), highlight=False)
        if view.unconfirmed:
            console.print(_unconfirmed_table(view))


def summary(view: StopView) -> str:
    """One line: what was stopped, where, how many clusters confirmed."""
    where = ", ".join(view.zones) if view.zones else _("everywhere")
    return _(
        "stopped {broadcast} ({where}): {confirmed}/{clusters} clusters confirmed; broadcast {state}"
    ).format(
        broadcast=safe(view.broadcast),
        where=safe(where),
        confirmed=view.confirmed + view.ended_otherwise,
        clusters=view.clusters,
        state=word(view.state),
    )


def _unconfirmed_table(view: StopView) -> Table:
    table = Table(_("cluster"), title=_("not confirmed yet (recorded stopped)"), title_justify="left")
    for device_id in view.unconfirmed:
        table.add_row(safe(device_id))
    return table
