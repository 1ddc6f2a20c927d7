"""`speakerctl zones`: the zone tree."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from speakerctl.app import fleet, views
from speakerctl.app import zones as zones_app
from speakerctl.cli.common import console, current_actor, print_json, run, state
from speakerctl.cli.text import safe
from speakerctl.fleet import zone_title
from speakerctl.i18n import _, ngettext

app = typer.Typer(help=_("The zone tree: province, districts, communes (any depth)."), no_args_is_help=True)


@app.command("list")
def list_zones(
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
    retired: Annotated[bool, typer.Option("--all", help=_("Also the zones a remap retired."))] = False,
) -> None:
    """Show the zones as a tree, with the number of clusters in each."""
    ctx = state.context()
    if as_json:
        print_json(fleet.zones(ctx, retired=retired))
        return
    console.print(_tree(fleet.zone_branches(ctx, retired=retired)))


@app.command("remap")
def remap(
    mapping: Annotated[
        str, typer.Argument(help=_("A packaged mapping (soc_trang_to_can_tho_2025) or a file."))
    ],
    apply: Annotated[bool, typer.Option("--apply", help=_("Apply it (without: a dry run)."))] = False,
    wait: Annotated[
        float, typer.Option(help=_("Seconds to wait for the clusters' acknowledgements."))
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Move clusters to a new zone tree (e.g. the 2025 communes): a dry run unless --apply."""
    result = run(zones_app.remap(state.context(), mapping, current_actor(), apply=apply, wait_s=wait))
    if as_json:
        print_json(result)
        return
    _print_remap(result)


def _print_remap(r: views.RemapView) -> None:
    table = Table(title=_("Remap {mapping}").format(mapping=safe(r.mapping)))
    for column in (_("zone"), _("name"), _("new"), _("clusters in"), _("from")):
        table.add_column(column, overflow="fold")
    for z in r.zones:
        table.add_row(
            safe(z.zone), safe(z.name), "+" if z.added else "", str(z.clusters), ", ".join(z.from_zones)
        )
    console.print(table)
    for s in r.schedules:
        console.print(
            _("schedule {id} ({name}): {before} → {after}").format(
                id=s.schedule, name=safe(s.name), before=", ".join(s.before), after=", ".join(s.after)
            )
        )
    for k in r.kept:
        console.print(
            _("kept in {zone}: {n} clusters ({reason})").format(
                zone=k.zone, n=k.clusters, reason=safe(k.reason)
            )
        )
    _print_outcome(r)


def _print_outcome(r: views.RemapView) -> None:
    summary = _(
        "{moved} clusters move, {added} zones added, {retired} retired, {schedules} schedules retargeted"
    )
    console.print(
        summary.format(moved=r.moved, added=len(r.added), retired=len(r.retired), schedules=len(r.schedules))
    )
    if not r.applied:
        console.print(_("dry run: nothing changed (add --apply to apply it)"))
        return
    for c in r.configure:
        if c.outcome == "needs_reprovisioning":
            console.print(
                _("{device}: needs reprovisioning: {why}").format(device=c.device, why=safe(c.detail))
            )
    console.print(
        _("{acked} of {sent} clusters acknowledged their new zones").format(
            acked=r.acknowledged, sent=len(r.configure) - r.needs_reprovisioning
        )
    )


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
