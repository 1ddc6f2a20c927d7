"""`speakerctl broadcast`: send a bulletin now and follow it to the last cluster (`stop`: cli/stop.py).

Ctrl-C while it runs asks whether to stop the clusters too; without a terminal it leaves them playing
and prints the command that stops them (`--stop-on-interrupt` stops them). Either way it exits 130.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from speakerctl.app import broadcasts
from speakerctl.app.broadcasts import Progress as OnProgress
from speakerctl.app.context import AppContext
from speakerctl.app.labels import word as state_name
from speakerctl.app.views import BroadcastResultView
from speakerctl.cli import stop as stop_cli
from speakerctl.cli.common import Exit, console, console_err, current_actor, print_json, run, state
from speakerctl.cli.confirm import ask, confirm, interactive
from speakerctl.cli.text import safe
from speakerctl.errors import NotFound
from speakerctl.i18n import _
from speakerctl.protocol.lifecycle import STOPPED

T = TypeVar("T")


class _SendByDefault(typer.core.TyperGroup):
    """`broadcast BULLETIN --to ZONE` is `broadcast send BULLETIN --to ZONE`; `broadcast stop ID` stops."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Route anything that is not a sub-command name to `send`."""
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["send", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_SendByDefault,
    no_args_is_help=True,
    help=_("Send a bulletin (`broadcast BULLETIN --to ZONE`), or stop one (`broadcast stop ID`)."),
)


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
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help=_("Confirm an emergency or province-wide broadcast (scripts).")),
    ] = False,
    stop_on_interrupt: Annotated[
        bool, typer.Option("--stop-on-interrupt", help=_("On Ctrl-C, stop the clusters too without asking."))
    ] = False,
) -> None:
    """Broadcast a bulletin; exits 3 if not every targeted cluster played it."""
    ctx, actor = state.context(), current_actor()
    # Held for approval (exit 11) or refused before any progress is shown: only what airs now shows one.
    broadcasts.hold(ctx, bulletin_id, to, priority, actor=actor, emergency=emergency)
    asked = broadcasts.confirmation(ctx, bulletin_id, to, priority, actor=actor, emergency=emergency)
    confirmed = confirm(asked, yes)
    broadcast_id = broadcasts.new_id(ctx)

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
            confirmed=confirmed,
            broadcast_id=broadcast_id,
        )

    try:
        result = run(send(None)) if as_json else with_progress(send)
    except KeyboardInterrupt:
        interrupted(ctx, broadcast_id, stop_on_interrupt)
    if as_json:
        print_json(result)
    else:
        print_summary(result)
    if not result.complete:
        raise typer.Exit(Exit.INCOMPLETE)


def interrupted(ctx: AppContext, broadcast_id: str, stop_on_interrupt: bool) -> None:
    """After Ctrl-C: stop the clusters if told to (or if the user says so), then exit 130."""
    if stop_on_interrupt or (interactive() and ask(_("Stop the clusters too?"))):
        try:
            console.print(stop_cli.summary(stop_cli.stop_now(ctx, broadcast_id)), highlight=False)
        except NotFound:
            console_err.print(_("interrupted before anything was sent: nothing to stop"))
    else:
        console_err.print(
            _("interrupted: the clusters keep playing; to stop them: speakerctl broadcast stop {id}").format(
                id=broadcast_id
            )
        )
    raise typer.Exit(Exit.INTERRUPTED)


def with_progress(send: Callable[[OnProgress], Coroutine[Any, Any, T]]) -> T:
    """Run a broadcast (or what airs one) with a live progress bar on stderr, drawn from its first report:
    what is held for approval, placed in a schedule or refused never shows an empty bar."""
    bar = _progress()
    task: TaskID | None = None

    def update(counts: Counter[str], total: int) -> None:
        nonlocal task
        if task is None:  # the controller follows it: it is on air
            bar.start()
            task = bar.add_task(_("broadcast"), total=None)
        text = " ".join(f"{state_name(s)}={n}" for s, n in sorted(counts.items()))
        bar.update(task, total=total, completed=broadcasts.settled(counts), description=text)

    try:
        return run(send(update))
    finally:
        bar.stop()  # nothing if it never started


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
    played = _("{played}/{total} played").format(played=result.played, total=result.total)
    console.print(f"[bold {colour}]{played}[/]{safe(outcome(result))}")


def outcome(result: BroadcastResultView) -> str:
    """What follows the count: how fast all played, or who stopped it, or how many did not play and where
    to see why (a stop or a partial outcome never claims that all played)."""
    stopped = result.counts.get(STOPPED.value, 0)
    if result.complete:
        latency = result.reach_latency_s
        return _(", all playing {s} s after the command").format(s=f"{latency:.2f}") if latency else ""
    why = _("; why: speakerctl report {id}").format(id=result.broadcast)
    if result.stopped_by:
        return _("; stopped by {who}").format(who=result.stopped_by) + why
    if stopped:
        return _("; stopped on {n} of {total} clusters").format(n=stopped, total=result.total) + why
    missed = result.total - result.played
    return _("; {n} of {total} clusters did not play").format(n=missed, total=result.total) + why
