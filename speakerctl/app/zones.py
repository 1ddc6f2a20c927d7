"""Zones: applying an administrative remap (dry run first), and telling the moved clusters over MQTT.

`remap(ctx, mapping, actor)` plans without writing; `remap(..., apply=True)` writes the whole remap in
one store transaction (zones added, clusters moved, old zones retired, schedules and the steps of
`store.remap.RETARGET_STEPS` retargeted, an audit entry per cluster), then sends each moved cluster a
signed `configure` with its new zone chain and waits a while for the acknowledgements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from speakerctl.app import records, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.controller.reconfigure import Outcome, Reconfigured, announced_minor, configure_clusters
from speakerctl.errors import InventoryError, UsageError
from speakerctl.fleet import ZoneTree
from speakerctl.fleet.remap import RemapMapping, RemapPlan, load_mapping, plan_remap
from speakerctl.i18n import _
from speakerctl.store import RemapChange, ScheduleRecord, Store


@dataclass(frozen=True, slots=True)
class Planned:
    """A remap worked out against the store: the plan and the schedules it rewrites."""

    mapping: RemapMapping
    plan: RemapPlan
    tree: ZoneTree
    schedules: dict[str, tuple[ScheduleRecord, tuple[str, ...]]]


def plan(store: Store, mapping_ref: str | Path, actor: Actor) -> Planned:
    """The plan of `mapping_ref` (a packaged name or a file) on the store's fleet; NotAllowed first."""
    mapping = load_mapping(mapping_ref)
    tree = ZoneTree(store.zones.active())
    placed = {d.id: d.zone_id for d in store.devices.all()}
    try:
        worked = plan_remap(mapping, tree.zones.values(), placed)
    except InventoryError as exc:
        raise UsageError(str(exc), hint=_("see `speakerctl zones list` for the zones in use")) from exc
    authorize(actor, Action.REMAP, [*worked.retired, *(z for z, _ in worked.moved.values())], tree)
    rewritten = {s.id: (s, worked.retarget(s.targets)) for s in store.schedules.all()}
    changed = {i: (s, new) for i, (s, new) in rewritten.items() if new != s.targets}
    return Planned(mapping, worked, ZoneTree([*tree.zones.values(), *worked.added]), changed)


async def remap(
    ctx: AppContext, mapping_ref: str | Path, actor: Actor, *, apply: bool = False, wait_s: float = 10.0
) -> views.RemapView:
    """Plan the remap (dry run), or apply it and configure the moved clusters."""
    store = ctx.store()
    planned = plan(store, mapping_ref, actor)
    if not apply:
        return view(planned, applied=False, configured=[])
    if planned.plan.empty:
        raise UsageError(_("nothing to remap"), hint=_("the mapping was applied already"))
    store.remaps.apply(change(planned, actor, ctx))
    minors = {d: announced_minor(store, d) for d in planned.plan.chains}
    async with running_controller(ctx, store) as controller:
        configured = await configure_clusters(controller, planned.plan.chains, minors, wait_s)
    return view(planned, applied=True, configured=configured)


def change(planned: Planned, actor: Actor, ctx: AppContext) -> RemapChange:
    """What the store writes for the plan, in one transaction."""
    p = planned.plan
    return RemapChange(
        mapping=planned.mapping.name,
        actor=actor.name,
        at=ctx.clock.now(),
        added=p.added,
        moves=p.moved,
        retired=p.retired,
        schedules={i: new for i, (_, new) in planned.schedules.items()},
        retarget=p.retarget,
    )


def view(planned: Planned, *, applied: bool, configured: list[Reconfigured]) -> views.RemapView:
    """The remap as the CLI prints it and `--json` gives it."""
    p, tree = planned.plan, planned.tree
    outcomes = Counter(r.outcome for r in configured)
    return views.RemapView(
        mapping=p.mapping,
        applied=applied,
        moved=len(p.moved),
        added=[z.id for z in p.added],
        retired=list(p.retired),
        zones=_zone_views(p, tree),
        schedules=[
            views.RemapScheduleView(schedule=i, name=s.name, before=list(s.targets), after=list(new))
            for i, (s, new) in planned.schedules.items()
        ],
        kept=_kept_views(p, planned.mapping),
        configure=[records.configure_outcome(r) for r in configured],
        acknowledged=outcomes[Outcome.ACKNOWLEDGED],
        needs_reprovisioning=outcomes[Outcome.NEEDS_REPROVISIONING],
    )


def _zone_views(p: RemapPlan, tree: ZoneTree) -> list[views.RemapZoneView]:
    into = Counter(new for _, new in p.moved.values())
    sources: dict[str, list[str]] = {}
    for old, new in dict.fromkeys(p.moved.values()):
        sources.setdefault(new, []).append(old)
    added = {z.id for z in p.added}
    return [
        views.RemapZoneView(
            zone=z,
            name=tree.name(z),
            kind=tree.zones[z].kind,
            added=z in added,
            clusters=into[z],
            from_zones=sources.get(z, []),
        )
        for z in tree.tree_order()
        if z in added or into[z]
    ]


def _kept_views(p: RemapPlan, mapping: RemapMapping) -> list[views.RemapKeptView]:
    per_zone = Counter(p.kept.values())
    return [
        views.RemapKeptView(zone=m.source, clusters=per_zone[m.source], reason=m.reason)
        for m in mapping.undetermined
        if per_zone[m.source]
    ]
