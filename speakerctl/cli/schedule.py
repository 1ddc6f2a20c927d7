"""`speakerctl schedule`: routine programmes, weekly slots, one-off announcements; `serve` runs them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import live, schedules
from speakerctl.app.context import AppContext
from speakerctl.app.labels import word
from speakerctl.cli.common import console, current_actor, print_json, state
from speakerctl.cli.confirm import confirm
from speakerctl.cli.text import id_column, safe
from speakerctl.dates import format_day, format_moment, time_zone, zone_label
from speakerctl.errors import UsageError
from speakerctl.i18n import _

app = typer.Typer(help=_("Schedules: when bulletins air, where, at which priority."), no_args_is_help=True)


def _local(at: datetime | None, label: bool = True) -> str:
    """A moment already in its local zone, for people, with its offset ("… 05:00 (UTC+07:00)")."""
    return "—" if at is None or at.tzinfo is None else format_moment(at, at.tzinfo, label=label)


def _zone(ctx: AppContext) -> str:
    """The installation's time zone for a column header: "UTC+07:00"."""
    return zone_label(time_zone(ctx.settings.timezone), ctx.clock.now())


@app.command("add")
def add(
    to: Annotated[
        list[str],
        typer.Option("--to", help=_("Zone or cluster: id or name, diacritics optional; repeat for more.")),
    ],
    bulletin_id: Annotated[
        int | None, typer.Argument(help=_("Bulletin id (see `bulletin list`); none with --relay."))
    ] = None,
    at: Annotated[
        str | None, typer.Option(help=_("Once, at 'dd/mm/yyyy HH:MM' local time (ISO also accepted)."))
    ] = None,
    daily: Annotated[str | None, typer.Option(help=_("Every day at HH:MM[,HH:MM...]."))] = None,
    weekly: Annotated[str | None, typer.Option(help=_("At HH:MM[,...] on --days."))] = None,
    cron: Annotated[str | None, typer.Option(help=_("Cron expression, e.g. '0 5 * * 1-6'."))] = None,
    days: Annotated[str | None, typer.Option(help=_("Weekdays, e.g. mon-sat or mon,wed,fri."))] = None,
    repeat: Annotated[int, typer.Option(help=_("Air N times in a row…"))] = 1,
    gap: Annotated[int, typer.Option(help=_("…this many seconds apart."))] = 0,
    priority: Annotated[str, typer.Option(help=_("normal, priority or emergency."))] = "normal",
    valid_from: Annotated[str | None, typer.Option("--from", help=_("First day, dd/mm/yyyy."))] = None,
    until: Annotated[str | None, typer.Option(help=_("Last day, dd/mm/yyyy."))] = None,
    on_preempt: Annotated[
        str, typer.Option(help=_("When cut by a higher level: resume, restart, drop."))
    ] = "resume",
    window: Annotated[int, typer.Option(help=_("Seconds it may still air late."))] = schedules.WINDOW_S,
    name: Annotated[str, typer.Option(help=_("A name for people."))] = "",
    tz: Annotated[str | None, typer.Option(help=_("Time zone (default: the setting)."))] = None,
    relay: Annotated[
        str | None, typer.Option(help=_("Relay this station's stream URL live (tiếp sóng) instead."))
    ] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help=_("How long a relay lasts: 90s, 30m, 2h."))
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help=_("Confirm an emergency or province-wide schedule (scripts)."))
    ] = False,
) -> None:
    """Add a schedule; says which existing schedules it overlaps and which one wins."""
    ctx = state.context()
    zone = tz or ctx.settings.timezone
    rule = schedules.build_rule(zone, at, daily, weekly, cron, days, repeat, gap, valid_from, until)
    if bulletin_id is None and relay is None:
        raise UsageError(_("give a bulletin id or --relay URL"), hint=_("see `speakerctl bulletin list`"))
    length = live.parse_duration(for_) if for_ is not None else None
    spec = schedules.ScheduleSpec(
        bulletin_id or 0, to, rule, priority, on_preempt, window, name, relay or "", length
    )
    actor = current_actor()
    confirmed = confirm(schedules.confirmation(ctx, spec, actor=actor), yes)
    added = schedules.add(ctx, spec, actor=actor, confirmed=confirmed)
    view = schedules.added_view(added)
    if as_json:
        print_json(view)
        return
    console.print(
        _("added schedule {id}: {rule}; next {next}").format(
            id=f"[bold]{view.id}[/]", rule=safe(view.rule), next=_local(view.next_at)
        )
    )
    for o in view.overlaps:
        winner = _("this one") if o.winner == view.id else o.winner
        text = _("overlaps {other} at {at}: {winner} wins ({why})")
        console.print(text.format(other=o.existing, at=_local(o.at), winner=winner, why=safe(o.why)))


@app.command("list")
def list_schedules(as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False) -> None:
    """Every schedule with its next air time in local time."""
    ctx = state.context()
    found = [view for _s, view in schedules.list_all(ctx)]
    if as_json:
        print_json(found)
        return
    ids = id_column("id", (v.id for v in found))
    headers = (_("bulletin"), _("to"), _("when"), _("priority"), _("next ({zone})").format(zone=_zone(ctx)))
    table = Table(ids, *headers)
    for v in found:
        nxt = _("paused") if v.paused else _local(v.next_at, label=False)
        what = _("relay {url}").format(url=v.relay) if v.relay else str(v.bulletin)
        cells = (safe(what), safe(", ".join(v.targets)), safe(v.rule), word(v.priority), nxt)
        table.add_row(v.id, *cells)
    console.print(table)


@app.command("show")
def show(
    schedule_id: Annotated[str, typer.Argument(help=_("Schedule id."))],
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """One schedule: its rule, its next five air times and what became of past ones."""
    v = schedules.show(state.context(), schedule_id)[1]
    if as_json:
        print_json(v)
        return
    targets = safe(", ".join(v.targets))
    if v.relay:
        head = _("relay {url} → {targets}").format(url=safe(v.relay), targets=targets)
    else:
        head = _("bulletin {bulletin} → {targets}").format(bulletin=v.bulletin, targets=targets)
    console.print(f"[bold]{v.id}[/] {safe(v.name)}  {head}")
    rule = _("{rule}, {priority}, on preempt: {policy}, window {window} s")
    console.print(
        rule.format(rule=safe(v.rule), priority=word(v.priority), policy=v.on_preempt, window=v.window_s)
    )
    upcoming = "; ".join(_local(t) for t in v.upcoming)
    console.print(_("paused") if v.paused else _("next: {times}").format(times=upcoming))
    for r in v.runs:
        console.print(f"  {_local(r.fire_at)}  {word(r.state):<9} {r.broadcast}  {safe(r.detail)}")


def _set_paused(schedule_id: str, paused: bool) -> None:
    schedules.set_paused(state.context(), schedule_id, paused, actor=current_actor())
    done = _("paused {id}") if paused else _("resumed {id}")
    console.print(done.format(id=safe(schedule_id)))


@app.command("pause")
def pause(schedule_id: Annotated[str, typer.Argument(help=_("Schedule id."))]) -> None:
    """Stop a schedule airing until resumed (broadcasts already pushed to clusters are stopped)."""
    _set_paused(schedule_id, True)


@app.command("resume")
def resume(schedule_id: Annotated[str, typer.Argument(help=_("Schedule id."))]) -> None:
    """Let a paused schedule air again from its next occurrence."""
    _set_paused(schedule_id, False)


@app.command("rm")
def remove(schedule_id: Annotated[str, typer.Argument(help=_("Schedule id."))]) -> None:
    """Delete a schedule (its history stays)."""
    schedules.remove(state.context(), schedule_id, actor=current_actor())
    console.print(_("removed {id}").format(id=safe(schedule_id)))


@app.command("preview")
def preview_day(
    day: Annotated[str, typer.Option(help=_("Local date, dd/mm/yyyy."))],
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """What airs where on a day, in order, after priority resolution."""
    ctx = state.context()
    when, segments = schedules.preview_day(ctx, day)
    if as_json:
        print_json(segments)
        return
    title = f"{format_day(when)} ({ctx.settings.timezone}, {_zone(ctx)})"
    headers = (_("start"), _("end"), _("where"), _("schedule"), _("priority"), _("note"))
    table = Table(*headers, title=title)
    for g in segments:
        cells = (_local(g.start, False), _local(g.end, False), safe(g.target), g.schedule, word(g.priority))
        table.add_row(*cells, safe(g.note))
    console.print(table)
