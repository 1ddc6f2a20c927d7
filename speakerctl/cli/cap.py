"""`speakerctl cap`: CAP 1.2 public warnings — import a file, poll the feed once, list what arrived."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import cap, cap_feed
from speakerctl.app.labels import word
from speakerctl.app.views import CapAlertView
from speakerctl.cli.common import console, current_actor, print_json, run, state
from speakerctl.cli.text import id_column, safe
from speakerctl.dates import format_moment, time_zone, zone_label
from speakerctl.i18n import _, ngettext

app = typer.Typer(
    help=_("CAP 1.2 public warnings: emergencies air by themselves, the rest wait for approval."),
    no_args_is_help=True,
)


@app.command("import")
def import_alert(
    file: Annotated[Path, typer.Argument(help=_("A CAP 1.2 XML document."))],
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Act on a CAP alert file as if the feed had brought it (an emergency airs now)."""
    view = run(cap.import_file(state.context(), file, actor=current_actor()))
    if as_json:
        print_json(view)
        return
    _show_one(view)


@app.command("poll")
def poll(
    url: Annotated[str | None, typer.Option(help=_("Feed index URL (default: cap_feed_url)."))] = None,
) -> None:
    """Poll the CAP feed once and act on what is new (`serve` does this every cap_poll_s)."""
    polled = run(cap_feed.poll_once(state.context(), url or ""))
    console.print(
        _("{fetched} fetched, {new} new, {rejected} rejected, {failed} unreadable").format(
            fetched=polled.fetched, new=polled.new, rejected=polled.rejected, failed=polled.failed
        )
    )


@app.command("list")
def list_alerts(
    limit: Annotated[int, typer.Option(help=_("At most this many, newest first."))] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """CAP alerts received, newest first, with what became of each and the broadcasts that aired it."""
    ctx = state.context()
    alerts = cap.list_alerts(ctx, limit)
    if as_json:
        print_json(alerts)
        return
    tz = time_zone(ctx.settings.timezone)
    table = Table(
        _("received ({zone})").format(zone=zone_label(tz, ctx.clock.now())),
        id_column(_("identifier"), (a.identifier for a in alerts)),
        _("type"),
        _("priority"),
        _("state"),
        _("headline"),
        _("aired"),
        title=ngettext("{n} CAP alert", "{n} CAP alerts", len(alerts)).format(n=len(alerts)),
        title_justify="left",
    )
    for a in alerts:
        kind = a.msg_type if a.status == "Actual" else f"{a.msg_type} ({a.status})"
        cells = (
            safe(kind),
            safe(word(a.priority)),
            safe(word(a.state)),
            safe(a.headline),
            str(len(a.broadcasts)),
        )
        table.add_row(format_moment(a.received_at, tz), safe(a.identifier), *cells)
    console.print(table)


def _show_one(view: CapAlertView) -> None:
    if view.duplicate:
        console.print(_("CAP {id} was received before: nothing changed").format(id=safe(view.identifier)))
        return
    console.print(
        _("CAP {id}: {state} ({detail})").format(
            id=safe(view.identifier), state=safe(word(view.state)), detail=safe(view.detail)
        )
    )
    if view.broadcasts:
        console.print(_("aired as {ids}").format(ids=", ".join(view.broadcasts)))
