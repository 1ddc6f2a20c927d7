"""`speakerctl broadcast`: send a bulletin now and follow it to the last cluster."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from speakerctl.cli.common import Exit, console, console_err, print_json, run, state
from speakerctl.config import Settings
from speakerctl.controller.app import open_store
from speakerctl.controller.service import BroadcastRequest, BroadcastResult, Controller
from speakerctl.errors import ConfigError
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import FINAL


def parse_priority(value: str) -> Priority:
    """A priority level from its name."""
    try:
        return Priority[value.upper()]
    except KeyError:
        raise ConfigError(f"unknown priority {value!r}", hint="use normal, priority or emergency") from None


def broadcast(
    bulletin_id: Annotated[int, typer.Argument(help="Bulletin id (see `bulletin list`).")],
    to: Annotated[list[str], typer.Option("--to", help="Zone or device id; repeat for more.")],
    priority: Annotated[str, typer.Option(help="normal, priority or emergency.")] = "normal",
    emergency: Annotated[
        bool, typer.Option("--emergency", help="Emergency: cuts in at once, at the emergency volume.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a progress bar.")] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds (beyond the bulletin's length) to wait for silent clusters.")
    ] = None,
) -> None:
    """Broadcast a bulletin; exits 3 if not every targeted cluster played it."""
    level = Priority.EMERGENCY if emergency else parse_priority(priority)
    volume = state.settings.emergency_volume if level is Priority.EMERGENCY else None
    request = BroadcastRequest(bulletin_id, tuple(to), level, volume=volume)
    settings = state.settings.with_overrides(broadcast_timeout_s=timeout)
    result = run(run_broadcast(settings, request, show_progress=not as_json))
    if as_json:
        print_json(
            {
                "broadcast": result.broadcast_id,
                "total": result.total,
                "played": result.played,
                "counts": result.counts,
            }
        )
    else:
        print_summary(result)
    if not result.complete:
        raise typer.Exit(Exit.INCOMPLETE)


async def run_broadcast(
    settings: Settings, request: BroadcastRequest, *, show_progress: bool
) -> BroadcastResult:
    """Run one broadcast with a live progress bar on stderr."""
    store = open_store(settings)
    controller = Controller(settings, store)
    async with controller.running():
        if not show_progress:
            return await controller.broadcast(request)
        with _progress() as bar:
            task = bar.add_task("broadcast", total=None)

            def update(counts: Counter[str], total: int) -> None:
                done = sum(n for s, n in counts.items() if s in FINAL)
                text = " ".join(f"{s}={n}" for s, n in sorted(counts.items()))
                bar.update(task, total=total, completed=done, description=text)

            return await controller.broadcast(request, update)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console_err,
        transient=False,
    )


def print_summary(result: BroadcastResult) -> None:
    """Final count per state."""
    console.print(f"broadcast [bold]{result.broadcast_id}[/]")
    table = Table("state", "clusters")
    for name, n in sorted(result.counts.items()):
        table.add_row(name, str(n))
    console.print(table)
    colour = "green" if result.complete else "red"
    reach = (
        f", all playing {result.reach_latency_s:.2f} s after the command" if result.reach_latency_s else ""
    )
    console.print(f"[bold {colour}]{result.played}/{result.total} played[/]{reach}")
