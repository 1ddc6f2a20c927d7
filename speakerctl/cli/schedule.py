"""`speakerctl schedule`: routine programmes, weekly slots, one-off announcements; `serve` runs them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import schedules
from speakerctl.cli.common import console, current_actor, print_json, state
from speakerctl.cli.text import id_column, safe

app = typer.Typer(help="Schedules: when bulletins air, where, at which priority.", no_args_is_help=True)


def _local(at: datetime | None) -> str:
    """A moment already in its local zone, for people."""
    return "—" if at is None else f"{at:%Y-%m-%d %H:%M:%S %a}"


@app.command("add")
def add(
    bulletin_id: Annotated[int, typer.Argument(help="Bulletin id (see `bulletin list`).")],
    to: Annotated[list[str], typer.Option("--to", help="Zone or device id; repeat for more.")],
    at: Annotated[str | None, typer.Option(help="Once, at 'YYYY-MM-DD HH:MM' local time.")] = None,
    daily: Annotated[str | None, typer.Option(help="Every day at HH:MM[,HH:MM...].")] = None,
    weekly: Annotated[str | None, typer.Option(help="At HH:MM[,...] on --days.")] = None,
    cron: Annotated[str | None, typer.Option(help="Cron expression, e.g. '0 5 * * 1-6'.")] = None,
    days: Annotated[str | None, typer.Option(help="Weekdays, e.g. mon-sat or mon,wed,fri.")] = None,
    repeat: Annotated[int, typer.Option(help="Air N times in a row…")] = 1,
    gap: Annotated[int, typer.Option(help="…this many seconds apart.")] = 0,
    priority: Annotated[str, typer.Option(help="normal, priority or emergency.")] = "normal",
    valid_from: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    on_preempt: Annotated[
        str, typer.Option(help="When cut by a higher level: resume, restart, drop.")
    ] = "resume",
    window: Annotated[int, typer.Option(help="Seconds it may still air late.")] = schedules.WINDOW_S,
    name: Annotated[str, typer.Option(help="A name for people.")] = "",
    tz: Annotated[str | None, typer.Option(help="Time zone (default: the setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a schedule; says which existing schedules it overlaps and which one wins."""
    ctx = state.context()
    zone = tz or ctx.settings.timezone
    rule = schedules.build_rule(zone, at, daily, weekly, cron, days, repeat, gap, valid_from, until)
    spec = schedules.ScheduleSpec(bulletin_id, to, rule, priority, on_preempt, window, name)
    added = schedules.add(ctx, spec, actor=current_actor())
    view = schedules.added_view(added)
    if as_json:
        print_json(view)
        return
    console.print(f"added schedule [bold]{view.id}[/]: {safe(view.rule)}; next {_local(view.next_at)}")
    for o in view.overlaps:
        verdict = "this one" if o.winner == view.id else o.winner
        console.print(f"[yellow]overlaps {o.existing}[/] at {_local(o.at)}: {verdict} wins ({safe(o.why)})")


@app.command("list")
def list_schedules(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every schedule with its next air time in local time."""
    found = schedules.list_all(state.context())
    if as_json:
        print_json([view for _, view in found])
        return
    ids = id_column("id", (v.id for _, v in found))
    table = Table(ids, "bulletin", "to", "when", "priority", "next (local)")
    for _, v in found:
        nxt = "paused" if v.paused else _local(v.next_at)
        table.add_row(v.id, str(v.bulletin), safe(", ".join(v.targets)), safe(v.rule), v.priority, nxt)
    console.print(table)


@app.command("show")
def show(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One schedule: its rule, its next five air times and what became of past ones."""
    _, v = schedules.show(state.context(), schedule_id)
    if as_json:
        print_json(v)
        return
    console.print(f"[bold]{v.id}[/] {safe(v.name)}  bulletin {v.bulletin} → {safe(', '.join(v.targets))}")
    console.print(f"{safe(v.rule)}, {v.priority}, on preempt: {v.on_preempt}, window {v.window_s} s")
    console.print("paused" if v.paused else "next: " + "; ".join(_local(t) for t in v.upcoming))
    for r in v.runs:
        console.print(f"  {_local(r.fire_at)}  {r.state:<9} {r.broadcast}  {safe(r.detail)}")


def _set_paused(schedule_id: str, paused: bool) -> None:
    schedules.set_paused(state.context(), schedule_id, paused, actor=current_actor())
    console.print(f"{'paused' if paused else 'resumed'} {safe(schedule_id)}")


@app.command("pause")
def pause(schedule_id: Annotated[str, typer.Argument(help="Schedule id.")]) -> None:
    """Stop a schedule airing until resumed (broadcasts already pushed to clusters are stopped)."""
    _set_paused(schedule_id, True)


@app.command("resume")
def resume(schedule_id: Annotated[str, typer.Argument(help="Schedule id.")]) -> None:
    """Let a paused schedule air again from its next occurrence."""
    _set_paused(schedule_id, False)


@app.command("rm")
def remove(schedule_id: Annotated[str, typer.Argument(help="Schedule id.")]) -> None:
    """Delete a schedule (its history stays)."""
    schedules.remove(state.context(), schedule_id, actor=current_actor())
    console.print(f"removed {safe(schedule_id)}")


@app.command("preview")
def preview_day(
    day: Annotated[str, typer.Option(help="Local date, YYYY-MM-DD.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What airs where on a day, in order, after priority resolution."""
    ctx = state.context()
    when, segments = schedules.preview_day(ctx, day)
    if as_json:
        print_json(segments)
        return
    title = f"{when} ({ctx.settings.timezone})"
    table = Table("start", "end", "where", "schedule", "priority", "note", title=title)
    for g in segments:
        table.add_row(_local(g.start), _local(g.end), safe(g.target), g.schedule, g.priority, safe(g.note))
    console.print(table)
