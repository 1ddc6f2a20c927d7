"""`speakerctl broadcast`: send a bulletin now and follow it to the last cluster."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from speakerctl.app import broadcasts
from speakerctl.app.broadcasts import Progress as OnProgress
from speakerctl.app.labels import word as state_name
from speakerctl.app.views import BroadcastResultView
from speakerctl.cli.common import Exit, console, console_err, current_actor, print_json, run, state
from speakerctl.cli.text import safe
from speakerctl.i18n import _

T = TypeVar("T")


def broadcast(
    bulletin_id: Annotated[int, typer.Argument(help=_("Bulletin id (see `bulletin list`)."))],
    to: Annotated[
        list[str],
        typer.Option("--to", help=_("Zone or cluster: id or name, diacritics optional; repeat for more.")),
    ],
    priority: Annotated[str, typer.Option(help=_("normal, priority or emergency."))] = "normal",
    emergency: Annotated[
        bool, typer.Option("--emergency", help=_("Emergency: cuts in at once, at the emergency volume."))
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON instead of a progress bar."))] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help=_("Seconds (beyond the bulletin's length) to wait for silent clusters.")),
    ] = None,
) -> None:
    """Broadcast a bulletin; exits 3 if not every targeted cluster played it."""
    ctx, actor = state.context(), current_actor()
    broadcasts.request(
        ctx, bulletin_id, to, priority, emergency=emergency
    )  # a bad priority: before connecting

    def send(progress: OnProgress | None) -> Coroutine[Any, Any, BroadcastResultView]:
        return broadcasts.broadcast(
            ctx,
            bulletin_id,
            to,
            priority,
            actor=actor,
            emergency=emergency,
            timeout_s=timeout,
            progress=progress,
        )

    result = run(send(None)) if as_json else with_progress(send)
    if as_json:
        print_json(result)
    else:
        print_summary(result)
    if not result.complete:
        raise typer.Exit(Exit.INCOMPLETE)


def with_progress(send: Callable[[OnProgress], Coroutine[Any, Any, T]]) -> T:
    """Run a broadcast (or what airs one) with a live progress bar on stderr."""
    with _progress() as bar:
        task = bar.add_task(_("broadcast"), total=None)

        def update(counts: Counter[str], total: int) -> None:
            text = " ".join(f"{state_name(s)}={n}" for s, n in sorted(counts.items()))
            bar.update(task, total=total, completed=broadcasts.settled(counts), description=text)

        return run(send(update))


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console_err,
        transient=False,
    )


def print_summary(result: BroadcastResultView) -> None:
    """Final count per state."""
    console.print(_("broadcast {id}").format(id=f"[bold]{result.broadcast}[/]"))
    table = Table(_("state"), _("clusters"))
    for name, n in sorted(result.counts.items()):
        table.add_row(safe(state_name(name)), str(n))
    console.print(table)
    colour = "green" if result.complete else "red"
    latency = result.reach_latency_s
    reach = _(", all playing {s} s after the command").format(s=f"{latency:.2f}") if latency else ""
    played = _("{played}/{total} played").format(played=result.played, total=result.total)
    console.print(f"[bold {colour}]{played}[/]{reach}")
