"""`speakerctl bulletin submit|queue|approve|reject`, `zones policy`: the approval workflow (Circular 39)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import approvals, schedules
from speakerctl.app.views import ApprovedView, ItemView
from speakerctl.cli.broadcast import print_summary, with_progress
from speakerctl.cli.common import Exit, console, current_actor, print_json, run, state
from speakerctl.cli.text import id_column, safe
from speakerctl.i18n import _

Json = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]
At = Annotated[
    str | None,
    typer.Option("--at", help=_("Air at this local time, 'YYYY-MM-DD HH:MM' (a one-off schedule).")),
]


def _when(text: str | None) -> datetime | None:
    return None if text is None else schedules.parse_at(text, state.settings.timezone)


def submit(
    bulletin_id: Annotated[int, typer.Argument(help=_("Bulletin id (see `bulletin list`)."))],
    to: Annotated[list[str], typer.Option("--to", help=_("Zone or device id; repeat for more."))],
    priority: Annotated[str, typer.Option(help=_("normal or priority."))] = "normal",
    at: At = None,
    as_json: Json = False,
) -> None:
    """Submit a broadcast for approval by the approvers of each zone it goes to."""
    ctx, actor = state.context(), current_actor()
    items = approvals.submit(ctx, bulletin_id, to, priority, actor=actor, at=_when(at))
    if as_json:
        print_json(items)
        return
    for item in items:
        console.print(
            _("item {id} waits for an approver of {zone}").format(id=item.id, zone=safe(item.zone)),
            highlight=False,
        )


def queue(
    zone: Annotated[str | None, typer.Option("--zone", help=_("Only this zone and below."))] = None,
    every: Annotated[bool, typer.Option("--all", help=_("Decided items too."))] = False,
    as_json: Json = False,
) -> None:
    """The approval queue: priority items first, then the oldest."""
    items = approvals.queue(state.context(), actor=current_actor(), zone_id=zone, decided=every)
    if as_json:
        print_json(items)
        return
    console.print(_queue_table(items))


def _queue_table(items: list[ItemView]) -> Table:
    table = Table(
        id_column(_("item"), [i.id for i in items]),
        id_column(_("zone"), [i.zone for i in items]),
        _("bulletin"),
        _("priority"),
        _("from"),
        _("submitted"),
        _("air at"),
        _("state"),
    )
    for i in items:
        origin = safe(i.submitted_by) + (" ↓" if i.from_above else "")
        at = f"{i.at:%Y-%m-%d %H:%M}" if i.at else "—"
        table.add_row(
            str(i.id),
            safe(i.zone),
            str(i.bulletin),
            i.priority,
            origin,
            f"{i.submitted_at:%Y-%m-%d %H:%M}",
            at,
            i.state,
        )
    return table


def approve(
    item_id: Annotated[int, typer.Argument(help=_("Item id (see `bulletin queue`)."))],
    at: At = None,
    as_json: Json = False,
) -> None:
    """Approve an item: it airs now, or at --at (or the time it was submitted for)."""
    ctx, actor = state.context(), current_actor()
    when = _when(at)
    if as_json:
        done = run(approvals.approve(ctx, item_id, actor=actor, at=when))
        print_json(done)
    else:
        done = with_progress(
            lambda progress: approvals.approve(ctx, item_id, actor=actor, at=when, progress=progress)
        )
        _print_approved(done)
    if done.broadcast is not None and not done.broadcast.complete:
        raise typer.Exit(Exit.INCOMPLETE)


def _print_approved(done: ApprovedView) -> None:
    if done.broadcast is not None:
        print_summary(done.broadcast)
    elif done.forwarded:
        ids = ", ".join(str(i) for i in done.forwarded)
        console.print(
            _("item {id} approved: sent on to the zones below as items {ids}").format(
                id=done.item.id, ids=ids
            )
        )
    else:
        console.print(
            _("item {id} approved: schedule {schedule}").format(id=done.item.id, schedule=done.schedule)
        )


def reject(
    item_id: Annotated[int, typer.Argument(help=_("Item id (see `bulletin queue`)."))],
    reason: Annotated[str, typer.Option("--reason", help=_("Why it will not air (its author reads this)."))],
    as_json: Json = False,
) -> None:
    """Reject an item, with the reason."""
    item = approvals.reject(state.context(), item_id, reason, actor=current_actor())
    if as_json:
        print_json(item)
        return
    console.print(_("item {id} rejected").format(id=item.id))


def zone_policy(
    zone: Annotated[str, typer.Argument(help=_("Zone id."))],
    approval_for: Annotated[
        str | None,
        typer.Option(
            "--approval-for",
            help=_("Roles that wait for approval here and below: operator[,approver] or none."),
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Show or set which roles wait for approval in a zone (inherited by the zones below)."""
    ctx = state.context()
    if approval_for is None:
        shown = approvals.policy_of(ctx, zone)
    else:
        shown = approvals.set_policy(ctx, zone, approvals.parse_roles(approval_for), actor=current_actor())
    if as_json:
        print_json(shown)
        return
    roles = ", ".join(shown.approval_for) or _("nobody")
    origin = shown.set_on or _("default")
    console.print(
        _("{zone}: {roles} wait for approval ({origin})").format(
            zone=safe(zone), roles=roles, origin=safe(origin)
        )
    )
