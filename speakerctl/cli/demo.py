"""`speakerctl demo`: embedded broker, a simulated province and a broadcast, all on this machine."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from speakerctl.app import broadcasts, runtime
from speakerctl.app.access import local_administrator
from speakerctl.cli.broadcast import print_summary, with_progress
from speakerctl.cli.common import Exit, console, console_err, state
from speakerctl.cli.text import announce, safe
from speakerctl.i18n import _
from speakerctl.protocol.limits import MAX_TARGETS


def demo(
    seconds: Annotated[float, typer.Option(help=_("Length of the demo bulletin."))] = 8.0,
    time_scale: Annotated[
        float, typer.Option(help=_("Simulated clusters play this many times faster."))
    ] = 1.0,
    count: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_TARGETS, help=_("Simulate and target only the first N clusters.")),
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help=_("Keep the demo's files here."))] = None,
) -> None:
    """Broadcast a bulletin to a simulated province through an embedded broker and report the result."""
    with contextlib.ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speakerctl-demo-")))
        ctx = stack.enter_context(runtime.demo_world(state.context(), root, time_scale, count, announce))
        bulletin = runtime.demo_bulletin(ctx, seconds, root)
        text = _("bulletin {id} “{title}”, {seconds} s")
        console_err.print(
            text.format(id=bulletin.id, title=safe(bulletin.title), seconds=f"{bulletin.duration_s:.1f}")
        )
        targets = runtime.demo_targets(ctx, count)
        result = with_progress(
            # The demo's world is a fresh data directory of its own: its local administrator acts, and a
            # simulated province has nothing real to confirm.
            lambda progress: broadcasts.broadcast(
                ctx, bulletin.id, targets, actor=local_administrator(), progress=progress, confirmed=True
            )
        )
        print_summary(result)
        console.print(
            _("report: {command}").format(
                command=f"speakerctl --data-dir {ctx.settings.data_dir} report {result.broadcast}"
            )
            if workdir
            else ""
        )
    if not result.complete:
        raise typer.Exit(Exit.INCOMPLETE)
