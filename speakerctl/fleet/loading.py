"""Inventory files: the packaged ones by name, any other by path, validated whole against the profiles.

Loading checks the whole file and raises InventoryError naming the file, the record and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from speakerctl.errors import InventoryError
from speakerctl.fleet.profiles import DATA_PACKAGE, HardwareProfile, load_profiles
from speakerctl.fleet.records import DeviceSpec, Inventory
from speakerctl.fleet.validate import check_format, read_json, record, records, where
from speakerctl.fleet.zonetree import Zone

DEFAULT_INVENTORY: Final = "soc_trang"

_BARE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ZONE_FIELDS = frozenset({"id", "name", "kind", "parent"})
_DEVICE_FIELDS = frozenset({"id", "name", "zone", "model", "lat", "lon", "network"})
_INVENTORY_FIELDS = frozenset({"format", "name", "timezone", "zones", "devices"})


def available_inventories() -> tuple[str, ...]:
    """Names of the packaged inventories, for load_inventory(name)."""
    folder = resources.files(DATA_PACKAGE) / "inventories"
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


def load_inventory(name_or_path: str | Path = DEFAULT_INVENTORY) -> Inventory:
    """A packaged inventory by bare name ("soc_trang"), or the inventory file at a path."""
    if isinstance(name_or_path, str) and _BARE_NAME.match(name_or_path):
        resource: Traversable | Path = _packaged_inventory(name_or_path)
        source = f"{DATA_PACKAGE}/inventories/{name_or_path}.json"
    else:
        resource, source = Path(name_or_path), str(name_or_path)
    return inventory_from_dict(read_json(resource, source), source=source)


def _packaged_inventory(name: str) -> Traversable:
    """The packaged inventory file `name`.json, or InventoryError listing what there is."""
    resource = resources.files(DATA_PACKAGE) / "inventories" / f"{name}.json"
    if not resource.is_file():
        known = ", ".join(available_inventories()) or "none"
        raise InventoryError(f"no packaged inventory {name!r} (available: {known})")
    return resource


def inventory_from_dict(
    d: object,
    *,
    profiles: Mapping[str, HardwareProfile] | None = None,
    source: str = "<inventory>",
) -> Inventory:
    """Validate a decoded inventory file; device models are checked against `profiles`."""
    with where(source):
        w = record(d, _INVENTORY_FIELDS, "inventory")
        check_format(w["format"])
        inventory = Inventory(
            name=w["name"],
            timezone=w["timezone"],
            zones=records(w, "zones", "zone", _zone_from_wire),
            devices=records(w, "devices", "device", _device_from_wire),
        )
        _check_models(inventory.devices, load_profiles() if profiles is None else profiles)
        return inventory


def _zone_from_wire(d: object) -> Zone:
    """A zone record."""
    w = record(d, _ZONE_FIELDS, "zone")
    return Zone(id=w["id"], name=w["name"], kind=w["kind"], parent=w["parent"])


def _device_from_wire(d: object) -> DeviceSpec:
    """A device record."""
    w = record(d, _DEVICE_FIELDS, "device")
    return DeviceSpec(
        id=w["id"],
        name=w["name"],
        zone=w["zone"],
        model=w["model"],
        lat=w["lat"],
        lon=w["lon"],
        network=w["network"],
    )


def _check_models(devices: Iterable[DeviceSpec], profiles: Mapping[str, HardwareProfile]) -> None:
    """Every device's model has a profile, and the profile supports the device's network."""
    for device in devices:
        profile = profiles.get(device.model)
        if profile is None:
            known = ", ".join(sorted(profiles)) or "none"
            raise InventoryError(
                f"device {device.id!r}: model {device.model!r} has no hardware profile (known: {known})"
            )
        if device.network not in profile.networks:
            raise InventoryError(
                f"device {device.id!r}: model {device.model!r} has no {device.network.value!r} "
                f"link (it supports {', '.join(n.value for n in profile.networks)})"
            )
