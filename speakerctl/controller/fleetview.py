"""The fleet at a glance: per-zone counts, devices with their health, open alerts, recent broadcasts.

One snapshot feeds `speakerctl fleet status`, the operator web page and its JSON API.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from speakerctl.controller.health import FAULT_KINDS, HealthPolicy, is_online
from speakerctl.fleet import ZoneTree
from speakerctl.protocol.lifecycle import FINISHED, REPORTED
from speakerctl.store import AlertInfo, BroadcastInfo, DeviceInfo, Store


@dataclass(slots=True)
class ZoneCounts:
    """Counts over a zone and everything below it."""

    zone_id: str
    name: str
    kind: str
    depth: int
    total: int = 0
    online: int = 0
    offline: int = 0
    fault: int = 0
    last_targeted: int = 0
    last_reached: int = 0
    last_played: int = 0


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """A device with its effective online state and open alert kinds."""

    device: DeviceInfo
    online: bool
    fault: bool
    alerts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BroadcastReach:
    """A recent broadcast and how far it got."""

    broadcast: BroadcastInfo
    counts: dict[str, int]

    @property
    def targeted(self) -> int:
        """Devices addressed."""
        return sum(self.counts.values())

    @property
    def reached(self) -> int:
        """Devices that answered at all."""
        return sum(n for s, n in self.counts.items() if s in REPORTED)

    @property
    def played(self) -> int:
        """Devices that played it to the end."""
        return self.counts.get(FINISHED, 0)


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Everything the operator sees."""

    at: datetime
    zones: list[ZoneCounts]
    devices: list[DeviceHealth]
    alerts: list[AlertInfo]
    broadcasts: list[BroadcastReach] = field(default_factory=list)

    @property
    def online(self) -> int:
        """Devices online now."""
        return sum(d.online for d in self.devices)


def device_health(
    devices: list[DeviceInfo], alerts: list[AlertInfo], now: datetime, policy: HealthPolicy
) -> list[DeviceHealth]:
    """Each device with its effective online state and open alerts."""
    kinds: dict[str, list[str]] = defaultdict(list)
    for alert in alerts:
        if alert.open:
            kinds[alert.device_id].append(alert.kind)
    out = []
    for d in devices:
        fault = d.amplifier == "fault" or any(k in FAULT_KINDS for k in kinds[d.id])
        out.append(DeviceHealth(d, is_online(d, now, policy), fault, tuple(sorted(kinds[d.id]))))
    return out


def fleet_snapshot(store: Store, now: datetime, policy: HealthPolicy, recent: int = 10) -> FleetSnapshot:
    """Read the store once and count per zone."""
    tree = ZoneTree(store.zones.active())
    alerts = store.alerts.all(open_only=True)
    health = device_health(store.devices.all(), alerts, now, policy)
    reaches = [
        BroadcastReach(b, store.deliveries.counts(b.id)) for b in store.broadcasts.latest(limit=recent)
    ]
    last = {d.device_id: d.state for d in store.deliveries.of(reaches[0].broadcast.id)} if reaches else {}
    zones = {z: ZoneCounts(z, tree.name(z), tree.zones[z].kind, tree.depth(z)) for z in tree.tree_order()}
    for h in health:
        for zone_id in tree.ancestors(h.device.zone_id):
            _count(zones[zone_id], h, last.get(h.device.id))
    return FleetSnapshot(now, list(zones.values()), health, alerts, reaches)


def _count(zone: ZoneCounts, h: DeviceHealth, last_state: str | None) -> None:
    zone.total += 1
    zone.online += h.online
    zone.offline += not h.online
    zone.fault += h.fault
    if last_state is not None:
        zone.last_targeted += 1
        zone.last_reached += last_state in REPORTED
        zone.last_played += last_state == FINISHED


def state_counts(snapshot: FleetSnapshot) -> Counter[str]:
    """Devices online, offline and faulty over the whole fleet."""
    return Counter(
        online=snapshot.online,
        offline=len(snapshot.devices) - snapshot.online,
        fault=sum(d.fault for d in snapshot.devices),
    )


def reach_latency_s(store: Store, broadcast: BroadcastInfo) -> float | None:
    """Seconds from the command until the last cluster that played started playing (device clocks)."""
    started = [d.playing_at for d in store.deliveries.of(broadcast.id) if d.playing_at is not None]
    if not started:
        return None
    return max(0.0, (max(started) - broadcast.issued_at).total_seconds())
