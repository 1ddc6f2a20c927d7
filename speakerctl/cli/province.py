"""`speakerctl province`: the provincial source system: one synchronisation, or how the outboxes stand."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import province
from speakerctl.app.integration_views import OutboxChannelView
from speakerctl.cli.common import console, print_json, run, state
from speakerctl.cli.text import safe
from speakerctl.dates import format_moment, time_zone
from speakerctl.errors import UsageError
from speakerctl.i18n import _

app = typer.Typer(
    help=_("The province's source information system: uploads, pushed bulletins, the outbox."),
    no_args_is_help=True,
)
NameOption = Annotated[
    str | None,
    typer.Option("--province", help=_("Which [[province]] of the settings (default: the only one).")),
]
JsonOption = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]


@app.command("sync")
def sync(
    once: Annotated[
        bool, typer.Option("--once", help=_("One round, then exit (`serve` runs them all along)."))
    ] = False,
    name: NameOption = None,
    as_json: JsonOption = False,
) -> None:
    """Log in, upload statuses and airings, take pushed bulletins and schedules, deliver the outbox."""
    if not once:
        raise UsageError(
            _("`province sync` runs one round with --once"),
            hint=_("`speakerctl serve` keeps the provinces in sync all along"),
        )
    done = run(province.sync_once(state.context(), name))
    if as_json:
        print_json(done)
        return
    console.print(
        _(
            "province {name}: {statuses} status(es) and {airings} airing(s) queued, "
            "{pushed} pushed item(s) taken, {delivered} delivered, {pending} waiting"
        ).format(
            name=safe(done.province),
            statuses=done.statuses,
            airings=done.airings,
            pushed=done.pushed,
            delivered=done.delivered,
            pending=done.outbox.pending,
        )
    )
    if done.outbox.last_error:
        console.print(
            "[yellow]" + _("last error: {error}").format(error=safe(done.outbox.last_error)) + "[/]"
        )


@app.command("status")
def status(name: NameOption = None, as_json: JsonOption = False) -> None:
    """How each outbox stands: items waiting, delivered, the oldest waiting, the last error."""
    ctx = state.context()
    channels = province.status(ctx, name)
    if as_json:
        print_json(channels)
        return
    print_table(channels, ctx.settings.timezone)


def print_table(channels: list[OutboxChannelView], timezone: str) -> None:
    """The outboxes as a table."""
    tz = time_zone(timezone)
    table = Table(_("channel"), _("waiting"), _("delivered"), _("oldest waiting"), _("last error"))
    for c in channels:
        oldest = format_moment(c.oldest_pending, tz) if c.oldest_pending else "-"
        table.add_row(safe(c.channel), str(c.pending), str(c.delivered), oldest, safe(c.last_error))
    console.print(table)
