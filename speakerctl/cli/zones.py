"""`speakerctl zones`: the zone tree."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

import typer
from rich.tree import Tree

from speakerctl.app import fleet
from speakerctl.app.views import ZoneView
from speakerctl.cli.common import console, print_json, state
from speakerctl.cli.text import safe

app = typer.Typer(help="The zone tree: province, districts, communes (any depth).", no_args_is_help=True)


@app.command("list")
def list_zones(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the zones as a tree, with the number of clusters in each."""
    zones = fleet.zones(state.context())
    if as_json:
        print_json(zones)
        return
    console.print(_tree(zones))


def _tree(zones: list[ZoneView]) -> Tree:
    children: dict[str | None, list[ZoneView]] = defaultdict(list)
    for zone in zones:
        children[zone.parent].append(zone)

    def total(zone: ZoneView) -> int:
        return zone.devices + sum(total(c) for c in children[zone.id])

    def add(node: Tree, zone: ZoneView) -> None:
        branch = node.add(
            f"[bold]{safe(zone.name)}[/] [dim]{safe(zone.id)} · {safe(zone.kind)}[/] — {total(zone)} clusters"
        )
        for child in children[zone.id]:
            add(branch, child)

    root = Tree("zones")
    for zone in children[None]:
        add(root, zone)
    return root
