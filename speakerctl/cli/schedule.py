"""`speakerctl schedule`: routine programmes, weekly slots, one-off announcements; `serve` runs them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.broadcast import parse_priority
from speakerctl.cli.common import console, print_json, state
from speakerctl.clock import Clock, SystemClock
from speakerctl.controller.app import open_store
from speakerctl.controller.planning import resolve_targets
from speakerctl.errors import ConfigError
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.app import Added, add_schedule, preview
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import DEFAULT_WINDOW_S, Schedule, new_schedule_id
from speakerctl.scheduler.rules import ALL_DAYS, Kind, Rule, parse_times, parse_weekdays, zone_info

app = typer.Typer(help="Schedules: when bulletins air, where, at which priority.", no_args_is_help=True)
clock: Clock = SystemClock()
"""Where `now` comes from; tests pin it."""


def _book() -> ScheduleBook:
    return ScheduleBook(open_store(state.settings))


def _local(at: datetime | None, tz: str) -> str:
    return "—" if at is None else f"{at.astimezone(zone_info(tz)):%Y-%m-%d %H:%M:%S %a}"


def _parse_at(text: str, tz: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"bad time {text!r}", hint="use 'YYYY-MM-DD HH:MM' (local time)") from None
    return at if at.tzinfo else at.replace(tzinfo=zone_info(tz))


def _parse_date(text: str | None) -> date | None:
    try:
        return None if text is None else date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"bad date {text!r}", hint="use YYYY-MM-DD") from None


def build_rule(
    tz: str,
    at: str | None = None,
    daily: str | None = None,
    weekly: str | None = None,
    cron: str | None = None,
    days: str | None = None,
    repeat: int = 1,
    gap: int = 0,
    valid_from: str | None = None,
    valid_until: str | None = None,
) -> Rule:
    """A rule from exactly one of --at, --daily, --weekly, --cron, with the common options."""
    given = [
        (k, v) for k, v in ((Kind.AT, at), (Kind.DAILY, daily), (Kind.WEEKLY, weekly), (Kind.CRON, cron)) if v
    ]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one of --at, --daily, --weekly, --cron", hint="e.g. --daily 05:00,17:00"
        )
    kind, value = given[0]
    if kind is Kind.WEEKLY and not days:
        raise ConfigError("--weekly needs --days", hint="e.g. --weekly 05:00 --days mon-sat")
    return Rule(
        kind,
        times=parse_times(value) if kind in (Kind.DAILY, Kind.WEEKLY) else (),
        weekdays=parse_weekdays(days) if days else ALL_DAYS,
        at=_parse_at(value, tz) if kind is Kind.AT else None,
        cron=value if kind is Kind.CRON else "",
        repeat=repeat,
        gap_s=gap,
        valid_from=_parse_date(valid_from),
        valid_until=_parse_date(valid_until),
        tz=tz,
    )


def _policy(value: str) -> PreemptPolicy:
    try:
        return PreemptPolicy(value)
    except ValueError:
        raise ConfigError(f"unknown policy {value!r}", hint="use resume, restart or drop") from None


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
    window: Annotated[int, typer.Option(help="Seconds it may still air late.")] = DEFAULT_WINDOW_S,
    name: Annotated[str, typer.Option(help="A name for people.")] = "",
    tz: Annotated[str | None, typer.Option(help="Time zone (default: the setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a schedule; says which existing schedules it overlaps and which one wins."""
    zone = tz or state.settings.timezone
    rule = build_rule(zone, at, daily, weekly, cron, days, repeat, gap, valid_from, until)
    schedule = Schedule(
        new_schedule_id(),
        bulletin_id,
        tuple(to),
        rule,
        parse_priority(priority),
        _policy(on_preempt),
        window,
        name=name,
        created_at=clock.now(),
    )
    store = open_store(state.settings)
    added = add_schedule(
        store, _book(), schedule, clock.now(), lambda targets: resolve_targets(store, targets)[1]
    )
    if as_json:
        print_json(_row(schedule, added.next_at) | {"overlaps": _overlap_rows(added)})
        return
    console.print(
        f"added schedule [bold]{schedule.id}[/]: {rule.describe()}; next {_local(added.next_at, zone)}"
    )
    for o in added.overlaps:
        verdict = "this one" if o.winner_id == schedule.id else o.winner_id
        console.print(
            f"[yellow]overlaps {o.existing_id}[/] at {_local(o.at, zone)}: {verdict} wins ({o.why})"
        )


def _overlap_rows(added: Added) -> list[dict[str, str]]:
    return [
        {"existing": o.existing_id, "at": o.at.isoformat(), "winner": o.winner_id, "why": o.why}
        for o in added.overlaps
    ]


def _row(s: Schedule, next_at: datetime | None) -> dict[str, object]:
    return {
        "id": s.id,
        "name": s.name,
        "bulletin": s.bulletin_id,
        "targets": list(s.targets),
        "rule": s.rule.describe(),
        "priority": s.priority.wire,
        "on_preempt": s.on_preempt.value,
        "window_s": s.window_s,
        "paused": s.paused,
        "next": _local(next_at, s.rule.tz) if next_at else None,
    }


@app.command("list")
def list_schedules(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every schedule with its next air time in local time."""
    now = clock.now()
    found = [(s, None if s.paused else s.rule.next_after(now)) for s in _book().all()]
    if as_json:
        print_json([_row(s, at) for s, at in found])
        return
    table = Table("id", "bulletin", "to", "when", "priority", "next (local)")
    for s, at in found:
        nxt = "paused" if s.paused else _local(at, s.rule.tz)
        table.add_row(s.id, str(s.bulletin_id), ", ".join(s.targets), s.rule.describe(), s.priority.wire, nxt)
    console.print(table)


@app.command("show")
def show(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One schedule: its rule, its next five air times and what became of past ones."""
    book = _book()
    s, now = book.get(schedule_id), clock.now()
    upcoming = s.rule.occurrences(now, now + timedelta(days=400))[:5]
    runs = book.runs(schedule_id)[-10:]
    data = _row(s, upcoming[0] if upcoming else None) | {
        "upcoming": [_local(t, s.rule.tz) for t in upcoming],
        "runs": [
            {
                "fire_at": _local(r.fire_at, s.rule.tz),
                "state": r.state.value,
                "broadcast": r.broadcast_id,
                "detail": r.detail,
            }
            for r in runs
        ],
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{s.id}[/] {s.name}  bulletin {s.bulletin_id} → {', '.join(s.targets)}")
    console.print(
        f"{s.rule.describe()}, {s.priority.wire}, on preempt: {s.on_preempt.value}, window {s.window_s} s"
    )
    console.print("paused" if s.paused else "next: " + "; ".join(data["upcoming"]))  # type: ignore[arg-type]
    for r in data["runs"]:  # type: ignore[attr-defined]
        console.print(f"  {r['fire_at']}  {r['state']:<9} {r['broadcast']}  {r['detail']}")


def _set_paused(schedule_id: str, paused: bool) -> None:
    book = _book()
    s = book.get(schedule_id)
    book.save(s.bumped(paused=paused))
    console.print(f"{'paused' if paused else 'resumed'} {schedule_id}")


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
    _book().remove(schedule_id)
    console.print(f"removed {schedule_id}")


@app.command("preview")
def preview_day(
    day: Annotated[str, typer.Option(help="Local date, YYYY-MM-DD.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What airs where on a day, in order, after priority resolution."""
    tz = state.settings.timezone
    when = _parse_date(day)
    assert when is not None
    segments = preview(open_store(state.settings, sync_inventory=False), _book(), when, tz)
    rows = [
        {
            "start": _local(g.start, tz),
            "end": _local(g.end, tz),
            "target": g.target,
            "schedule": g.schedule_id,
            "priority": Priority(g.priority).wire,
            "note": g.note,
        }
        for g in segments
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("start", "end", "where", "schedule", "priority", "note", title=f"{when} ({tz})")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)
