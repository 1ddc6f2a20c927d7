"""`speakerctl zones`: the zone tree."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.tree import Tree

from speakerctl.app import fleet
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import safe
from speakerctl.fleet import zone_title
from speakerctl.i18n import _, ngettext

app = typer.Typer(help=_("The zone tree: province, districts, communes (any depth)."), no_args_is_help=True)


@app.command("list")
def list_zones(
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Show the zones as a tree, with the number of clusters in each."""
    ctx = state.context()
    if as_json:
        print_json(fleet.zones(ctx))
        return
    console.print(_tree(fleet.zone_branches(ctx)))


def _tree(branches: list[fleet.ZoneBranch]) -> Tree:
    def add(node: Tree, branch: fleet.ZoneBranch) -> None:
        zone = branch.zone
        label = f"[bold]{safe(zone_title(zone.name, zone.kind))}[/] [dim]{safe(zone.id)}[/]"
        count = ngettext("{n} cluster", "{n} clusters", branch.total).format(n=branch.total)
        below = node.add(f"{label} — {count}")
        for child in branch.children:
            add(below, child)

    root = Tree(_("zones"))
    for branch in branches:
        add(root, branch)
    return root
