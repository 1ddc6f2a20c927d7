"""What a user may read through the HTTP API: the fleet, clusters, alerts, broadcasts and schedules cut
to the actor's zones by the same rule as the console (`console.scope`, `authorize(VIEW)`).

Each function takes the running controller's open store; the records are the views every `--json` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from speakerctl.app import cap, console, names, records, reports, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.bulletins import details, library_of
from speakerctl.app.context import AppContext
from speakerctl.app.fleet import parse_reachability
from speakerctl.app.policy import zone_tree
from speakerctl.app.schedules import list_all, show
from speakerctl.controller.fleetview import BroadcastReach, FleetSnapshot, fleet_snapshot
from speakerctl.controller.health import HealthPolicy
from speakerctl.errors import NotFound
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.store import CapRecord, Store

CAP_PAGE = 200
"""CAP messages read at a time while looking for those a zone's user may see."""


@dataclass(frozen=True, slots=True)
class DeviceQuery:
    """The filters of a device list: a zone (default: the actor's), online/offline, faults only."""

    zone: str | None = None
    state: str | None = None
    fault: bool = False


def within(store: Store, actor: Actor, zone: str | None) -> tuple[ZoneTree, str | None]:
    """The zone tree and the zone asked for (its id; the actor's own zone if none), authorized to VIEW."""
    tree = zone_tree(store)
    top = names.zone_id(store, zone) if zone else actor.zone_id
    authorize(actor, Action.VIEW, [top] if top else [], tree)
    return tree, top


def cut(snap: FleetSnapshot, tree: ZoneTree, actor: Actor) -> FleetSnapshot:
    """The snapshot as the actor sees it on the console: their zones, clusters, alerts and broadcasts."""
    seen = console.console(snap, tree, actor, {}, {})
    ids = {d.device.id for d in seen.devices}
    alerts = [a for a in snap.alerts if a.device_id in ids]
    return FleetSnapshot(snap.at, seen.zones, seen.devices, alerts, seen.broadcasts)


def fleet(store: Store, snap: FleetSnapshot, actor: Actor) -> views.FleetView:
    """`/api/v1/fleet`: the fleet at a glance (a snapshot the server read), within the actor's zones."""
    return records.fleet(cut(snap, ZoneTree(store.zones.active()), actor))


def zones(store: Store, actor: Actor) -> list[views.ZoneView]:
    """The zones in use within the actor's scope, each with the clusters directly in it."""
    mine = console.scope(actor, ZoneTree(store.zones.active()))
    per_zone: dict[str, int] = {}
    for d in store.devices.all():
        per_zone[d.zone_id] = per_zone.get(d.zone_id, 0) + 1
    return [records.zone(z, per_zone.get(z.id, 0)) for z in store.zones.active() if z.id in mine]


def devices(
    store: Store, snap: FleetSnapshot, actor: Actor, query: DeviceQuery
) -> list[views.DeviceHealthView]:
    """Clusters of a snapshot in a zone (default: the actor's) and below, by reachability and fault."""
    wanted = parse_reachability(query.state)
    tree, top = within(store, actor, query.zone)
    under = tree.subtree([top]) if top else None
    return [
        records.device_health(h)
        for h in snap.devices
        if (under is None or h.device.zone_id in under)
        and (wanted is None or h.online == (wanted.value == "online"))
        and (h.fault or not query.fault)
    ]


def alerts(
    store: Store, actor: Actor, zone: str | None, open_only: bool, limit: int
) -> list[views.AlertView]:
    """Alerts, newest first, in a zone (default: the actor's) and below."""
    _tree, top = within(store, actor, zone)
    found = store.alerts.all(open_only=open_only, zone_ids=[top] if top else None, limit=limit)
    return [records.alert(a) for a in found]


def broadcasts(
    store: Store, actor: Actor, now: datetime, policy: HealthPolicy, limit: int
) -> list[views.BroadcastReachView]:
    """The latest broadcasts that reached into the actor's zones, newest first."""
    if actor.zone_id is None:  # every zone: no need to place each cluster
        console.scope(actor, zone_tree(store))
        found = store.broadcasts.latest(limit=limit)
        return [records.reach(BroadcastReach(b, store.deliveries.counts(b.id))) for b in found]
    snap = fleet_snapshot(store, now, policy, recent=limit)
    return [records.reach(b) for b in cut(snap, ZoneTree(store.zones.active()), actor).broadcasts]


def broadcast(ctx: AppContext, store: Store, actor: Actor, broadcast_id: str) -> views.BroadcastReportView:
    """One broadcast's report, if it reached into the actor's zones (NotFound otherwise)."""
    info = store.broadcasts.get(broadcast_id)
    tree = zone_tree(store)
    mine = console.scope(actor, tree)
    zones = {d.id: d.zone_id for d in store.devices.all()}
    places = {zones.get(t, t) for t in info.targets}
    if actor.zone_id and not any(p in tree.zones and tree.subtree([p]) & mine for p in places):
        raise NotFound(_("no broadcast {id!r} in your zones").format(id=broadcast_id))
    return reports.broadcast_report(ctx, broadcast_id).view


def schedules(ctx: AppContext, store: Store, actor: Actor) -> list[views.ScheduleView]:
    """The schedules that air in the actor's zones (targets in, above or below them)."""
    tree = zone_tree(store)
    mine = console.scope(actor, tree)
    in_scope = {d.id for d in store.devices.all() if d.zone_id in mine}
    places = console.places(actor, tree, in_scope)
    return [v for s, v in list_all(ctx, ScheduleBook(store)) if not actor.zone_id or set(s.targets) & places]


def plays(
    ctx: AppContext, store: Store, actor: Actor, since: str, until: str | None, zone: str | None
) -> list[views.PlayView]:
    """The play log of a period in a zone (default: the actor's) and below."""
    _tree, top = within(store, actor, zone)
    return reports.play_log(ctx, since, until, top).views()


def bulletins(store: Store, actor: Actor) -> list[views.BulletinView]:
    """The library: every user who may view sees it (bulletins are not tied to a zone)."""
    console.scope(actor, zone_tree(store))
    return library_of(store)


def bulletin(ctx: AppContext, store: Store, actor: Actor, bulletin_id: int) -> views.BulletinDetailView:
    """A bulletin with its encodings and airings."""
    console.scope(actor, zone_tree(store))
    return details(ctx, bulletin_id)


def schedule(ctx: AppContext, store: Store, actor: Actor, schedule_id: str) -> views.ScheduleDetailView:
    """One schedule with its next air times and recent runs, if it airs in the actor's zones."""
    if not any(v.id == schedule_id for v in schedules(ctx, store, actor)):
        raise NotFound(_("no schedule {id!r} in your zones").format(id=schedule_id))
    return show(ctx, schedule_id, ScheduleBook(store))[1]


def cap_alerts(store: Store, actor: Actor, limit: int) -> list[views.CapAlertView]:
    """The latest CAP messages the actor may see, newest first: every one for a user of every zone, else
    those whose targets reach into their zones and those they sent themselves."""
    tree = zone_tree(store)
    mine = console.scope(actor, tree)
    places = console.places(actor, tree, {d.id for d in store.devices.all() if d.zone_id in mine})
    sent_by = {f"api:{actor.name}", f"post:{actor.name}"}

    def seen(record: CapRecord) -> bool:
        return not actor.zone_id or bool(set(record.targets) & places) or record.source in sent_by

    found = _cap_records(store, seen, limit)
    return [cap.cap_view(r, airings=store.cap.airings(r.id)) for r in found]


def _cap_records(store: Store, seen: Callable[[CapRecord], bool], limit: int) -> list[CapRecord]:
    """The newest `limit` records that `seen` keeps, read a page at a time."""
    found: list[CapRecord] = []
    offset = 0
    while len(found) < limit:
        page = store.cap.latest(CAP_PAGE, offset)
        found += [r for r in page if seen(r)]
        if len(page) < CAP_PAGE:
            break
        offset += CAP_PAGE
    return found[:limit]
