"""`speakerctl zones`: the zone tree."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.tree import Tree

from speakerctl.cli.common import console, print_json, state
from speakerctl.controller.app import open_store
from speakerctl.fleet import Zone, ZoneTree

app = typer.Typer(help="The zone tree: province, districts, communes (any depth).", no_args_is_help=True)


@app.command("list")
def list_zones(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the zones as a tree, with the number of clusters in each."""
    store = open_store(state.settings)
    zones = store.zones.all()
    per_zone = Counter(d.zone_id for d in store.devices.all())
    if as_json:
        print_json(
            [
                {"id": z.id, "name": z.name, "kind": z.kind, "parent": z.parent, "devices": per_zone[z.id]}
                for z in zones
            ]
        )
        return
    console.print(_tree(zones, per_zone))


def _tree(zones: list[Zone], per_zone: Counter[str]) -> Tree:
    tree = ZoneTree(zones)

    def add(node: Tree, zone: Zone) -> None:
        total = sum(per_zone[z] for z in tree.subtree([zone.id]))
        branch = node.add(f"[bold]{zone.name}[/] [dim]{zone.id} · {zone.kind}[/] — {total} clusters")
        for child in tree.children(zone.id):
            add(branch, child)

    root = Tree("zones")
    for zone in tree.roots():
        add(root, zone)
    return root
