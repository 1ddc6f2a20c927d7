"""`speakerctl resume`: after a controller crash, finish every broadcast the store shows running."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.cli.broadcast import print_summary
from speakerctl.cli.common import Exit, console, print_json, run, state
from speakerctl.config import Settings
from speakerctl.controller.app import open_store
from speakerctl.controller.resume import resume_broadcasts
from speakerctl.controller.service import BroadcastResult, Controller


def resume(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Re-send interrupted broadcasts (clusters that have them drop the copy) and follow them to the end."""
    results = run(_resume(state.settings))
    if as_json:
        print_json([{"broadcast": r.broadcast_id, "total": r.total, "counts": r.counts} for r in results])
    elif not results:
        console.print("no interrupted broadcast")
    for result in [] if as_json else results:
        print_summary(result)
    if not all(r.complete for r in results):
        raise typer.Exit(Exit.INCOMPLETE)


async def _resume(settings: Settings) -> list[BroadcastResult]:
    controller = Controller(settings, open_store(settings))
    async with controller.running():
        return await resume_broadcasts(controller)
