"""The fleet's records: the clusters as installed and the inventory that places them on the zone tree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from speakerctl.errors import InventoryError
from speakerctl.fleet.validate import degrees, index, member, text, timezone, valid_id
from speakerctl.fleet.zonetree import Zone, ZoneTree


class Network(StrEnum):
    """How a cluster reaches the broker."""

    LTE = "4g"
    UMTS = "3g"
    WIRED = "wired"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One loudspeaker cluster as installed: where it hangs in the tree, what it is, where it is."""

    id: str
    name: str
    zone: str
    model: str
    lat: float
    lon: float
    network: Network

    def __post_init__(self) -> None:
        valid_id(self.id, "id")
        valid_id(self.zone, "zone")
        valid_id(self.model, "model")
        object.__setattr__(self, "name", text(self.name, "name"))
        object.__setattr__(self, "lat", degrees(self.lat, 90, "lat"))
        object.__setattr__(self, "lon", degrees(self.lon, 180, "lon"))
        object.__setattr__(self, "network", member(Network, self.network, "network"))


@dataclass(frozen=True, slots=True)
class Inventory:
    """A fleet: the zone tree (one root, any depth) and the clusters placed on it."""

    name: str
    timezone: str
    zones: tuple[Zone, ...]
    devices: tuple[DeviceSpec, ...]
    tree: ZoneTree = field(init=False, repr=False, compare=False)
    _devices: dict[str, DeviceSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", text(self.name, "inventory name"))
        timezone(self.timezone)
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "devices", tuple(self.devices))
        zones, devices = index(self.zones, "zone"), index(self.devices, "device")
        _check_disjoint(zones, devices)
        tree = ZoneTree(self.zones)
        tree.check()
        _check_placed(devices, zones)
        object.__setattr__(self, "tree", tree)
        object.__setattr__(self, "_devices", devices)

    @property
    def root(self) -> Zone:
        """The one zone without a parent."""
        return self.tree.roots()[0]

    def zone(self, zone_id: str) -> Zone:
        """The zone `zone_id`, or InventoryError."""
        try:
            return self.tree.zones[zone_id]
        except KeyError:
            raise InventoryError(f"no zone {zone_id!r} in inventory {self.name!r}") from None

    def device(self, device_id: str) -> DeviceSpec:
        """The cluster `device_id`, or InventoryError."""
        try:
            return self._devices[device_id]
        except KeyError:
            raise InventoryError(f"no device {device_id!r} in inventory {self.name!r}") from None

    def children(self, zone_id: str) -> tuple[Zone, ...]:
        """The zones directly under `zone_id`, in file order."""
        return self.tree.children(self.zone(zone_id).id)

    def ancestors(self, zone_id: str) -> tuple[str, ...]:
        """`zone_id` itself, then its parent, and so on up to the root."""
        return tuple(reversed(self.tree.ancestors(self.zone(zone_id).id)))

    def subtree(self, zone_id: str) -> frozenset[str]:
        """`zone_id` and every zone below it, at any depth."""
        return self.tree.subtree([self.zone(zone_id).id])

    def devices_under(self, zone_id: str) -> tuple[DeviceSpec, ...]:
        """The clusters placed on `zone_id` or any zone below it, in file order."""
        inside = self.subtree(zone_id)
        return tuple(d for d in self.devices if d.zone in inside)

    def path_names(self, zone_id: str) -> str:
        """The names from the root down to `zone_id`, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
        return self.tree.path(self.zone(zone_id).id)


def scaled_inventory(inventory: Inventory, count: int) -> Inventory:
    """The inventory with `count` clusters: cut short, or padded with copies spread over its communes."""
    devices = list(inventory.devices)
    if count <= len(devices):
        return replace(inventory, devices=tuple(devices[:count]))
    extra = [
        replace(base, id=f"{base.id[:56]}-x{i:05d}")
        for i, base in ((i, devices[i % len(devices)]) for i in range(count - len(devices)))
    ]
    return replace(inventory, devices=tuple(devices + extra))


def _check_disjoint(zones: Mapping[str, Zone], devices: Mapping[str, DeviceSpec]) -> None:
    """Zone and device ids share one namespace in a file."""
    both = sorted(zones.keys() & devices.keys())
    if both:
        raise InventoryError(f"id {both[0]!r} names both a zone and a device")


def _check_placed(devices: Mapping[str, DeviceSpec], zones: Mapping[str, Zone]) -> None:
    """Every device hangs on an existing zone."""
    for device in devices.values():
        if device.zone not in zones:
            raise InventoryError(f"device {device.id!r}: zone {device.zone!r} does not exist")
