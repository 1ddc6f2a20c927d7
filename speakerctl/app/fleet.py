"""Fleet and devices: the zone tree, clusters and their health, one cluster in detail, the whole fleet."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from speakerctl.app import names, records, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.controller.fleetview import FleetSnapshot, device_health, fleet_snapshot, reach_latency_s
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import BroadcastResult
from speakerctl.errors import UsageError
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.store import Store


class Reachability(StrEnum):
    """The `--state` filter of `devices list`."""

    ONLINE = "online"
    OFFLINE = "offline"


def parse_reachability(value: str | None) -> Reachability | None:
    """`online`, `offline` or nothing."""
    if value is None:
        return None
    try:
        return Reachability(value)
    except ValueError:
        raise UsageError(
            _("unknown state {value!r}").format(value=value), hint=_("use --state online or --state offline")
        ) from None


def zones(ctx: AppContext, *, retired: bool = False) -> list[views.ZoneView]:
    """Every zone in use (and those a remap retired, if asked), with the number of clusters directly in it."""
    store = ctx.store()
    per_zone = Counter(d.zone_id for d in store.devices.all())
    shown = store.zones.all() if retired else store.zones.active()
    return [records.zone(z, per_zone[z.id]) for z in shown]


@dataclass(frozen=True, slots=True)
class ZoneBranch:
    """A zone with the clusters in it and below it, and its sub-zones: the tree as the CLI draws it."""

    zone: views.ZoneView
    total: int
    children: tuple[ZoneBranch, ...]


def zone_branches(ctx: AppContext, *, retired: bool = False) -> list[ZoneBranch]:
    """The zone tree from its roots down, each zone with its total of clusters at any depth below."""
    store = ctx.store()
    per_zone = Counter(d.zone_id for d in store.devices.all())
    tree = ZoneTree(store.zones.all() if retired else store.zones.active())

    def branch(zone_id: str) -> ZoneBranch:
        view = records.zone(tree.zones[zone_id], per_zone[zone_id])
        total = sum(per_zone[z] for z in tree.subtree([zone_id]))
        return ZoneBranch(view, total, tuple(branch(c.id) for c in tree.children(zone_id)))

    return [branch(root.id) for root in tree.roots()]


def zone_ids(store: Store, zone: str | None) -> list[str] | None:
    """The filter for a zone (and the zones below it, which the store includes); NotFound if unknown."""
    return [names.zone_id(store, zone)] if zone else None


def devices(
    ctx: AppContext, zone: str | None = None, state: str | None = None, fault_only: bool = False
) -> list[views.DeviceHealthView]:
    """Clusters under `zone` with their effective online state, filtered by reachability and fault."""
    wanted = parse_reachability(state)
    store = ctx.store()
    health = device_health(
        store.devices.all(zone_ids=zone_ids(store, zone)),
        store.alerts.all(open_only=True),
        ctx.clock.now(),
        HealthPolicy.from_settings(ctx.settings),
    )
    return [
        records.device_health(h)
        for h in health
        if (wanted is None or h.online == (wanted is Reachability.ONLINE)) and (h.fault or not fault_only)
    ]


def zone_path(store: Store, zone_id: str) -> str:
    """The zone's names from the root down, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
    return ZoneTree(store.zones.all()).path(zone_id)


def device(ctx: AppContext, device_id: str, history: int = 10) -> views.DeviceDetailView:
    """One cluster with where it is, its recent statuses, alerts and remote actions."""
    store = ctx.store()
    return device_in(store, names.device_id(store, device_id), history)


def device_seen_by(store: Store, actor: Actor, device_id: str, history: int = 10) -> views.DeviceDetailView:
    """One cluster in detail, if it is in the actor's zones (NotAllowed otherwise)."""
    zone = store.devices.get(device_id).zone_id
    authorize(actor, Action.VIEW, [zone], ZoneTree(store.zones.all()))
    return device_in(store, device_id, history)


def device_in(store: Store, device_id: str, history: int = 10) -> views.DeviceDetailView:
    """One cluster in detail, from an open store."""
    found = store.devices.get(device_id)
    return records.device_detail(
        found,
        zone_path(store, found.zone_id),
        store.statuses.history(found.id, limit=history),
        store.alerts.all(device_id=found.id, limit=history),
        store.audit.entries(found.id, limit=history),
    )


def map_link(lat: float, lon: float) -> str:
    """An OpenStreetMap link centred on the point."""
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"


def locate(ctx: AppContext, device_id: str) -> views.LocationView:
    """Where a cluster stands: the inventory's coordinates and a map link."""
    store = ctx.store()
    d = store.devices.get(names.device_id(store, device_id))
    link = map_link(d.lat, d.lon) if d.lat is not None and d.lon is not None else None
    return views.LocationView(
        device=d.id, name=d.name, zone_path=zone_path(store, d.zone_id), lat=d.lat, lon=d.lon, map=link
    )


def snapshot(ctx: AppContext) -> FleetSnapshot:
    """Per-zone counts, every cluster's health, open alerts and recent broadcasts, read once."""
    return fleet_snapshot(ctx.store(), ctx.clock.now(), HealthPolicy.from_settings(ctx.settings))


@dataclass(frozen=True, slots=True)
class Overview:
    """What the operator page, its API and /metrics show, read in one go."""

    snapshot: FleetSnapshot
    deliveries: dict[str, int]
    reach_latency_s: float | None

    @property
    def view(self) -> views.FleetView:
        """The fleet view of the snapshot."""
        return records.fleet(self.snapshot)


def overview(
    store: Store, ctx: AppContext, policy: HealthPolicy, measured: BroadcastResult | None = None
) -> Overview:
    """The snapshot, delivery totals and the last broadcast's reach latency (`measured` if it is that one)."""
    snap = fleet_snapshot(store, ctx.clock.now(), policy)
    last = snap.broadcasts[0].broadcast if snap.broadcasts else None
    latency = reach_latency_s(store, last) if last else None
    if measured is not None and last is not None and measured.broadcast_id == last.id:
        # Measured by the controller on one monotonic clock: better than the devices' stamps.
        latency = measured.reach_latency_s or latency
    return Overview(snap, store.deliveries.totals(), latency)
