"""`speakerctl resume`: after a controller crash, finish every broadcast the store shows running."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.app import broadcasts
from speakerctl.cli.broadcast import print_summary
from speakerctl.cli.common import Exit, console, print_json, run, state
from speakerctl.i18n import _


def resume(as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False) -> None:
    """Re-send interrupted broadcasts (clusters that have them drop the copy) and follow them to the end."""
    results = run(broadcasts.resume(state.context()))
    if as_json:
        print_json(results)
    elif not results:
        console.print(_("no interrupted broadcast"))
    for result in [] if as_json else results:
        print_summary(result)
    if not all(r.complete for r in results):
        raise typer.Exit(Exit.INCOMPLETE)
