"""The office report: what a set of broadcasts did in each commune, and which clusters did not air and why.

For the district or province office: per broadcast, who started, approved and stopped it; per commune
(as it was when the broadcast aired, after a remap too), clusters targeted, aired (played to the end)
and not aired, counted by why; and the list of clusters that did not air. `why` is one code an office
can count (`WHY`): `stopped`, `offline` (not heard from since before the broadcast was sent),
`unreached` (heard from, but never reported it), `preempted`, `expired`, `failed` (any other failure;
its reason is in the list) or `not_final` (still running).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from speakerctl.fleet import ZoneTree
from speakerctl.protocol import Reason
from speakerctl.protocol.lifecycle import EXPIRED, FAILED, FINISHED, MISSED, STOPPED
from speakerctl.store import BroadcastInfo, DeliveryInfo, DeviceInfo, Store

WHY = ("stopped", "offline", "unreached", "preempted", "expired", "failed", "not_final")
"""Why a cluster did not air a broadcast, in the order the report's columns show them."""


def approved_by(info: BroadcastInfo) -> str:
    """Who approved the broadcast ("" when the store does not record approvals with broadcasts)."""
    return str(getattr(info, "approved_by", "") or "")


def why(delivery: DeliveryInfo, device: DeviceInfo | None, sent_at: datetime) -> str:
    """Why a cluster did not air a broadcast (one of `WHY`)."""
    if delivery.state is STOPPED:
        return "stopped"
    if delivery.state in MISSED:
        heard = device.last_seen if device else None
        return "offline" if heard is None or heard < sent_at else "unreached"
    if delivery.state is EXPIRED:
        return "expired"
    if delivery.state is FAILED:
        return "preempted" if delivery.reason == Reason.PREEMPTED.value else "failed"
    return "not_final"


@dataclass(frozen=True, slots=True)
class BroadcastLine:
    """One broadcast of the report, with its bulletin's title and its totals in the report's zone."""

    info: BroadcastInfo
    bulletin: str
    clusters: int
    aired: int

    @property
    def approved_by(self) -> str:
        """Who approved it ("" if nobody had to)."""
        return approved_by(self.info)


@dataclass(slots=True)
class CommuneLine:
    """One broadcast in one commune: clusters targeted, aired, and not aired by why."""

    broadcast: BroadcastLine
    zone_id: str
    name: str
    path: str
    targeted: int = 0
    aired: int = 0
    why: Counter[str] = field(default_factory=Counter)

    @property
    def not_aired(self) -> int:
        """Clusters that did not play it to the end."""
        return self.targeted - self.aired


@dataclass(frozen=True, slots=True)
class Miss:
    """One cluster that did not air one broadcast, and why."""

    broadcast: BroadcastLine
    commune: str
    device_id: str
    device_name: str
    delivery: DeliveryInfo
    why: str
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class OfficeReport:
    """The broadcasts, the per-commune summary and the clusters that did not air."""

    broadcasts: list[BroadcastLine]
    communes: list[CommuneLine]
    misses: list[Miss]


def office_report(store: Store, broadcast_ids: Sequence[str], zone_id: str | None = None) -> OfficeReport:
    """The office report of these broadcasts, counting only deliveries that aired in `zone_id`'s subtree."""
    tree = ZoneTree(store.zones.all())
    devices = {d.id: d for d in store.devices.all()}
    inside = tree.subtree([zone_id]) if zone_id else None
    report = OfficeReport([], [], [])
    for broadcast_id in broadcast_ids:
        deliveries = [d for d in store.deliveries.of(broadcast_id) if _aired_in(d, devices, inside)]
        if deliveries:
            _add(report, store, tree, devices, store.broadcasts.get(broadcast_id), deliveries)
    return report


def _aired_in(delivery: DeliveryInfo, devices: dict[str, DeviceInfo], inside: frozenset[str] | None) -> bool:
    """Whether the delivery aired in the report's zone (its zone then, else the cluster's zone now)."""
    zone_id = delivery.zone_id or devices[delivery.device_id].zone_id
    return inside is None or zone_id in inside


def _add(
    report: OfficeReport,
    store: Store,
    tree: ZoneTree,
    devices: dict[str, DeviceInfo],
    info: BroadcastInfo,
    deliveries: list[DeliveryInfo],
) -> None:
    aired = sum(d.state is FINISHED for d in deliveries)
    line = BroadcastLine(info, store.bulletins.get(info.bulletin_id).title, len(deliveries), aired)
    report.broadcasts.append(line)
    communes: dict[str, CommuneLine] = {}
    for delivery in deliveries:
        device = devices[delivery.device_id]
        zone_id = delivery.zone_id or device.zone_id  # where it aired, even if the cluster moved since
        commune = communes.get(zone_id) or CommuneLine(line, zone_id, tree.name(zone_id), tree.path(zone_id))
        communes[zone_id] = commune
        commune.targeted += 1
        if delivery.state is FINISHED:
            commune.aired += 1
            continue
        reason = why(delivery, device, info.created_at)
        commune.why[reason] += 1
        report.misses.append(
            Miss(line, commune.name, device.id, device.name, delivery, reason, device.last_seen)
        )
    rank = {z: i for i, z in enumerate(tree.tree_order())}
    report.communes.extend(sorted(communes.values(), key=lambda c: rank.get(c.zone_id, len(rank))))
