"""What the operator console shows a signed-in user: their part of the fleet, what is on air, the week.

Read models only; the console's actions are in the services of their nouns (broadcasts, remote, alerts).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.schedules import preview
from speakerctl.controller.fleetview import BroadcastReach, DeviceHealth, FleetSnapshot, ZoneCounts
from speakerctl.fleet import ZoneTree
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.plan import Segment
from speakerctl.store import Store

OUTLINE_MARGIN_DEG = 0.004
"""How far (about 400 m) a commune's outline reaches beyond its outermost clusters."""


def scope(actor: Actor, tree: ZoneTree) -> frozenset[str]:
    """The zones the actor may see (their zone's subtree; every zone for an unscoped actor)."""
    authorize(actor, Action.VIEW, [actor.zone_id] if actor.zone_id else [], tree)
    return tree.subtree([actor.zone_id]) if actor.zone_id else frozenset(tree.zones)


@dataclass(frozen=True, slots=True)
class OnAir:
    """One broadcast playing now and where: the communes and the number of clusters playing it."""

    broadcast_id: str
    title: str
    places: tuple[str, ...]
    clusters: int


@dataclass(frozen=True, slots=True)
class Console:
    """The fleet as one user sees it: zones, clusters, open alerts and broadcasts within their scope."""

    at: datetime
    zones: list[ZoneCounts]
    devices: list[DeviceHealth]
    alerts_by_place: list[tuple[str, list[AlertRow]]]
    broadcasts: list[BroadcastReach]
    on_air: list[OnAir]
    names: dict[str, str]


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An open alert with the cluster's name and whether someone acknowledged it."""

    id: int
    kind: str
    device_id: str
    device_name: str
    opened_at: datetime
    detail: str
    acknowledged_by: str | None


def console(
    snap: FleetSnapshot, tree: ZoneTree, actor: Actor, titles: dict[str, str], acks: dict[int, str]
) -> Console:
    """The snapshot cut to the actor's zones; `titles` per broadcast id, `acks` (who) per alert id."""
    mine = scope(actor, tree)
    devices = [d for d in snap.devices if d.device.zone_id in mine]
    ids = {d.device.id for d in devices}
    names = {d.device.id: d.device.name for d in devices}
    alerts = [a for a in snap.alerts if a.device_id in ids]
    zone_of = {d.device.id: d.device.zone_id for d in devices}
    grouped: dict[str, list[AlertRow]] = defaultdict(list)
    for a in alerts:
        row = AlertRow(a.id, a.kind, a.device_id, names[a.device_id], a.opened_at, a.detail, acks.get(a.id))
        grouped[tree.name(zone_of[a.device_id])].append(row)
    reaches = [b for b in snap.broadcasts if b.counts and _visible(b, mine, zone_of, tree)]
    return Console(
        snap.at,
        [z for z in snap.zones if z.zone_id in mine],
        devices,
        sorted(grouped.items()),
        reaches,
        on_air(devices, tree, titles),
        names,
    )


def _visible(b: BroadcastReach, mine: frozenset[str], zone_of: dict[str, str], tree: ZoneTree) -> bool:
    """Whether a broadcast reached into the actor's zones (a target zone above theirs does)."""
    return any(t in zone_of or (t in tree.zones and tree.subtree([t]) & mine) for t in b.broadcast.targets)


def on_air(devices: list[DeviceHealth], tree: ZoneTree, titles: dict[str, str]) -> list[OnAir]:
    """Broadcasts the online clusters report playing now, with the communes they play in."""
    playing: dict[str, list[DeviceHealth]] = defaultdict(list)
    for d in devices:
        if d.online and d.device.playing:
            playing[d.device.playing].append(d)
    return [
        OnAir(b, titles.get(b, b), tuple(sorted({tree.name(d.device.zone_id) for d in ds})), len(ds))
        for b, ds in sorted(playing.items())
    ]


def titles(store: Store, snap: FleetSnapshot) -> dict[str, str]:
    """The bulletin title of each recent broadcast, by broadcast id."""
    wanted = {b.broadcast.bulletin_id for b in snap.broadcasts}
    found = {b.id: b.title for b in store.bulletins.all() if b.id in wanted}
    return {b.broadcast.id: found.get(b.broadcast.bulletin_id, "") for b in snap.broadcasts}


@dataclass(frozen=True, slots=True)
class Day:
    """One local day of the calendar and what airs on it, after priority resolution."""

    day: date
    segments: list[Segment]


def places(actor: Actor, tree: ZoneTree, device_ids: set[str]) -> frozenset[str]:
    """Targets whose airings reach the actor's zones: their zones, the zones above, their clusters."""
    above = set(tree.ancestors(actor.zone_id)) if actor.zone_id else set()
    return scope(actor, tree) | above | device_ids


def week(store: Store, actor: Actor, first: date, timezone: str) -> list[Day]:
    """Seven local days from `first`, each with what airs where the actor's zones hear it."""
    tree = ZoneTree(store.zones.all())
    mine = scope(actor, tree)
    heard = places(actor, tree, {d.id for d in store.devices.all() if d.zone_id in mine})
    book = ScheduleBook(store)
    days = [first + timedelta(days=n) for n in range(7)]
    return [Day(d, [s for s in preview(store, book, d, timezone) if s.target in heard]) for d in days]


def today(now: datetime, timezone: str) -> date:
    """The local date now."""
    return now.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True, slots=True)
class Place:
    """A commune on the map: its name, outline ([lat, lon] ring) and cluster count."""

    zone_id: str
    name: str
    outline: list[tuple[float, float]]


def outlines(devices: list[DeviceHealth], tree: ZoneTree) -> list[Place]:
    """An approximate outline per commune: the convex hull of its clusters, widened by a margin.

    Drawn without any map tiles, so the map works in a commune office with no Internet.
    """
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for d in devices:
        if d.device.lat is not None and d.device.lon is not None:
            points[d.device.zone_id].append((d.device.lat, d.device.lon))
    return [Place(z, tree.name(z), _widened(hull(p))) for z, p in sorted(points.items())]


def hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of the points, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return half(pts) + half(pts[::-1])


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _widened(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each corner pushed away from the centre (a lone cluster or a pair becomes a small diamond)."""
    m = OUTLINE_MARGIN_DEG
    if len(ring) < 3:
        corners = ((m, 0.0), (0.0, m), (-m, 0.0), (0.0, -m))
        return hull([(round(la + dy, 5), round(lo + dx, 5)) for la, lo in ring for dy, dx in corners])
    clat = sum(p[0] for p in ring) / len(ring)
    clon = sum(p[1] for p in ring) / len(ring)
    return [(round(_away(lat, clat), 5), round(_away(lon, clon), 5)) for lat, lon in ring]


def _away(value: float, centre: float) -> float:
    step = OUTLINE_MARGIN_DEG
    return value + step if value > centre else value - step if value < centre else value
