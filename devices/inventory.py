"""Fleet inventories and hardware profiles: validated loaders and zone-tree queries.

An inventory is a tree of zones of any depth (province › district › commune on the pre-2025
map; the 2025 mergers flatten it) with the loudspeaker clusters hung on its zones. Loading
checks the whole file and raises InventoryError naming the file, the record and the problem.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speakerctl.errors import InventoryError, ProtocolError
from speakerctl.protocol import fields as f
from speakerctl.protocol.topics import check_id

__all__ = [
    "DEFAULT_INVENTORY",
    "FORMAT",
    "DeviceSpec",
    "HardwareProfile",
    "Inventory",
    "Network",
    "Zone",
    "ZoneKind",
    "available_inventories",
    "inventory_from_dict",
    "load_inventory",
    "load_profiles",
    "profiles_from_dict",
]

FORMAT: Final = 1
"""The inventory and profile file format this module reads."""
DEFAULT_INVENTORY: Final = "soc_trang"
PATH_SEPARATOR: Final = " › "
MAX_AMPLIFIER_WATTS: Final = 10_000
MAX_STORAGE_MB: Final = 1_048_576

_PACKAGE: Final = "devices"
_BARE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ZONE_FIELDS = frozenset({"id", "name", "kind", "parent"})
_DEVICE_FIELDS = frozenset({"id", "name", "zone", "model", "lat", "lon", "network"})
_PROFILE_FIELDS = frozenset(
    {
        "id",
        "vendor",
        "description",
        "codecs",
        "amplifier_watts",
        "max_volume",
        "storage_mb",
        "networks",
    }
)
_INVENTORY_FIELDS = frozenset({"format", "name", "timezone", "zones", "devices"})
_PROFILES_FILE_FIELDS = frozenset({"format", "profiles"})


class _HasId(Protocol):
    """A record with an id (zone, device, profile)."""

    @property
    def id(self) -> str: ...


E = TypeVar("E", bound=StrEnum)
R = TypeVar("R", bound=_HasId)
T = TypeVar("T")


class ZoneKind(StrEnum):
    """The administrative level of a zone (a label only: the tree may have any depth)."""

    PROVINCE = "province"
    CITY = "city"
    TOWN = "town"
    DISTRICT = "district"
    WARD = "ward"
    COMMUNE = "commune"
    TOWNSHIP = "township"
    HAMLET = "hamlet"


class Network(StrEnum):
    """How a cluster reaches the broker."""

    LTE = "4g"
    UMTS = "3g"
    WIRED = "wired"


@contextmanager
def _where(place: str) -> Iterator[None]:
    """Prefix any InventoryError or ProtocolError raised inside with `place`."""
    try:
        yield
    except (InventoryError, ProtocolError) as exc:
        raise InventoryError(f"{place}: {exc}") from exc


def _valid_id(value: str, what: str) -> str:
    """`value` if it is a valid id, with the protocol's ProtocolError translated."""
    try:
        return check_id(value, what)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc


def _text(value: str, what: str) -> str:
    """Non-empty bounded text, NFC-normalised so Vietnamese names compare equal."""
    try:
        f.check_text(value, what)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc
    if not value.strip():
        raise InventoryError(f"{what} must not be empty")
    return unicodedata.normalize("NFC", value)


def _member(cls: type[E], value: object, what: str) -> E:
    """The member of `cls` whose value is `value`."""
    for member in cls:
        if member.value == value:
            return member
    allowed = ", ".join(m.value for m in cls)
    raise InventoryError(f"{what} must be one of {allowed}, got {value!r}")


def _int_in(value: int, lo: int, hi: int, what: str) -> int:
    """An integer within [lo, hi]."""
    try:
        return f.check_range(value, lo, hi, what)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc


def _degrees(value: float, limit: float, what: str) -> float:
    """A finite coordinate within [-limit, limit], as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InventoryError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise InventoryError(f"{what} must be within -{limit:g}..{limit:g}, got {value!r}")
    return float(value)


def _unique(values: Sequence[T], what: str) -> tuple[T, ...]:
    """`values` as a non-empty tuple without repeats."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise InventoryError(f"{what} must be a non-empty list")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise InventoryError(f"{what} lists {', '.join(repeated)} more than once")
    return tuple(values)


@dataclass(frozen=True, slots=True)
class Zone:
    """An administrative area that broadcasts can target; `parent` is None for the root."""

    id: str
    name: str
    kind: ZoneKind
    parent: str | None

    def __post_init__(self) -> None:
        _valid_id(self.id, "id")
        object.__setattr__(self, "name", _text(self.name, "name"))
        object.__setattr__(self, "kind", _member(ZoneKind, self.kind, "kind"))
        if self.parent is not None:
            _valid_id(self.parent, "parent")
        if self.parent == self.id:
            raise InventoryError(f"parent {self.parent!r} is the zone itself")


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
        _valid_id(self.id, "id")
        _valid_id(self.zone, "zone")
        _valid_id(self.model, "model")
        object.__setattr__(self, "name", _text(self.name, "name"))
        object.__setattr__(self, "lat", _degrees(self.lat, 90, "lat"))
        object.__setattr__(self, "lon", _degrees(self.lon, 180, "lon"))
        object.__setattr__(self, "network", _member(Network, self.network, "network"))


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """What a cluster model can do: codecs (preferred first), power, volume cap, storage, links."""

    id: str
    vendor: str
    description: str
    codecs: tuple[str, ...]
    amplifier_watts: int
    max_volume: int
    storage_mb: int
    networks: tuple[Network, ...]

    def __post_init__(self) -> None:
        _valid_id(self.id, "id")
        object.__setattr__(self, "vendor", _text(self.vendor, "vendor"))
        object.__setattr__(self, "description", _text(self.description, "description"))
        object.__setattr__(self, "codecs", _codecs(self.codecs))
        _int_in(self.amplifier_watts, 1, MAX_AMPLIFIER_WATTS, "amplifier_watts")
        _int_in(self.max_volume, 1, 100, "max_volume")
        _int_in(self.storage_mb, 1, MAX_STORAGE_MB, "storage_mb")
        networks = tuple(_member(Network, n, "network") for n in _unique(self.networks, "networks"))
        object.__setattr__(self, "networks", networks)

    def supports(self, codec: str) -> bool:
        """Whether this model decodes `codec`."""
        return codec in self.codecs

    def preferred_codec(self, offered: Iterable[str]) -> str | None:
        """The first codec of this model's preference order that is among `offered`."""
        available = set(offered)
        return next((c for c in self.codecs if c in available), None)


def _codecs(values: Sequence[str]) -> tuple[str, ...]:
    """A non-empty tuple of distinct codec tokens."""
    codecs = _unique(values, "codecs")
    try:
        return tuple(f.check_token(c, "codec") for c in codecs)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Inventory:
    """A fleet: the zone tree (one root, any depth) and the clusters placed on it."""

    name: str
    timezone: str
    zones: tuple[Zone, ...]
    devices: tuple[DeviceSpec, ...]
    _zones: dict[str, Zone] = field(init=False, repr=False, compare=False)
    _devices: dict[str, DeviceSpec] = field(init=False, repr=False, compare=False)
    _children: dict[str, tuple[Zone, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _text(self.name, "inventory name"))
        _check_timezone(self.timezone)
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "devices", tuple(self.devices))
        zones, devices = _index(self.zones, "zone"), _index(self.devices, "device")
        _check_disjoint(zones, devices)
        _check_tree(zones)
        _check_placed(devices, zones)
        object.__setattr__(self, "_zones", zones)
        object.__setattr__(self, "_devices", devices)
        object.__setattr__(self, "_children", _children_of(self.zones))

    @property
    def root(self) -> Zone:
        """The one zone without a parent."""
        return next(z for z in self.zones if z.parent is None)

    def zone(self, zone_id: str) -> Zone:
        """The zone `zone_id`, or InventoryError."""
        try:
            return self._zones[zone_id]
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
        return self._children.get(self.zone(zone_id).id, ())

    def ancestors(self, zone_id: str) -> tuple[str, ...]:
        """`zone_id` itself, then its parent, and so on up to the root."""
        chain = [self.zone(zone_id)]
        while (parent := chain[-1].parent) is not None:
            chain.append(self._zones[parent])
        return tuple(z.id for z in chain)

    def subtree(self, zone_id: str) -> frozenset[str]:
        """`zone_id` and every zone below it, at any depth."""
        found, stack = {self.zone(zone_id).id}, [zone_id]
        while stack:
            for child in self._children.get(stack.pop(), ()):
                found.add(child.id)
                stack.append(child.id)
        return frozenset(found)

    def devices_under(self, zone_id: str) -> tuple[DeviceSpec, ...]:
        """The clusters placed on `zone_id` or any zone below it, in file order."""
        inside = self.subtree(zone_id)
        return tuple(d for d in self.devices if d.zone in inside)

    def path_names(self, zone_id: str) -> str:
        """The names from the root down to `zone_id`, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
        return PATH_SEPARATOR.join(self._zones[z].name for z in reversed(self.ancestors(zone_id)))


def _check_timezone(name: str) -> None:
    """Raise unless `name` is an IANA time zone known to this system."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InventoryError(f"timezone {name!r} is not a known IANA time zone") from None


def _index(records: Iterable[R], what: str) -> dict[str, R]:
    """Records by id; InventoryError on a repeated id."""
    index: dict[str, R] = {}
    for record in records:
        if record.id in index:
            raise InventoryError(f"{what} id {record.id!r} is used more than once")
        index[record.id] = record
    return index


def _check_disjoint(zones: Mapping[str, Zone], devices: Mapping[str, DeviceSpec]) -> None:
    """Zone and device ids share one namespace in a file."""
    both = sorted(zones.keys() & devices.keys())
    if both:
        raise InventoryError(f"id {both[0]!r} names both a zone and a device")


def _check_tree(zones: Mapping[str, Zone]) -> None:
    """Every parent exists, no zone is its own ancestor, and there is exactly one root."""
    for zone in zones.values():
        if zone.parent is not None and zone.parent not in zones:
            raise InventoryError(f"zone {zone.id!r}: parent {zone.parent!r} does not exist")
    for zone in zones.values():
        _check_reaches_root(zone, zones)
    roots = [z.id for z in zones.values() if z.parent is None]
    if len(roots) != 1:
        found = ", ".join(repr(r) for r in roots) or "none"
        raise InventoryError(f"the zone tree needs exactly one root (parent null), found {found}")


def _check_reaches_root(start: Zone, zones: Mapping[str, Zone]) -> None:
    """Walk up from `start`; InventoryError naming the loop if a zone comes round again."""
    seen: dict[str, None] = {}
    zone: Zone | None = start
    while zone is not None:
        if zone.id in seen:
            loop = [*list(seen)[list(seen).index(zone.id) :], zone.id]
            raise InventoryError(f"zones form a cycle: {' → '.join(loop)}")
        seen[zone.id] = None
        zone = None if zone.parent is None else zones[zone.parent]


def _check_placed(devices: Mapping[str, DeviceSpec], zones: Mapping[str, Zone]) -> None:
    """Every device hangs on an existing zone."""
    for device in devices.values():
        if device.zone not in zones:
            raise InventoryError(f"device {device.id!r}: zone {device.zone!r} does not exist")


def _children_of(zones: Iterable[Zone]) -> dict[str, tuple[Zone, ...]]:
    """Child zones by parent id, in file order."""
    children: dict[str, list[Zone]] = {}
    for zone in zones:
        if zone.parent is not None:
            children.setdefault(zone.parent, []).append(zone)
    return {parent: tuple(kids) for parent, kids in children.items()}


# --- loading -----------------------------------------------------------------------------


def available_inventories() -> tuple[str, ...]:
    """Names of the inventories packaged with `devices`, for load_inventory(name)."""
    folder = resources.files(_PACKAGE) / "inventories"
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


def load_inventory(name_or_path: str | Path = DEFAULT_INVENTORY) -> Inventory:
    """A packaged inventory by bare name ("soc_trang"), or the inventory file at a path."""
    if isinstance(name_or_path, str) and _BARE_NAME.match(name_or_path):
        resource: Traversable | Path = _packaged_inventory(name_or_path)
        source = f"devices/inventories/{name_or_path}.json"
    else:
        resource, source = Path(name_or_path), str(name_or_path)
    return inventory_from_dict(_read_json(resource, source), source=source)


def _packaged_inventory(name: str) -> Traversable:
    """The packaged inventory file `name`.json, or InventoryError listing what there is."""
    resource = resources.files(_PACKAGE) / "inventories" / f"{name}.json"
    if not resource.is_file():
        known = ", ".join(available_inventories()) or "none"
        raise InventoryError(f"no packaged inventory {name!r} (available: {known})")
    return resource


def load_profiles(path: str | Path | None = None) -> dict[str, HardwareProfile]:
    """The packaged hardware profiles by id, or those of the profiles file at `path`."""
    if path is None:
        resource: Traversable | Path = resources.files(_PACKAGE) / "profiles" / "profiles.json"
        source = "devices/profiles/profiles.json"
    else:
        resource, source = Path(path), str(path)
    return profiles_from_dict(_read_json(resource, source), source=source)


def inventory_from_dict(
    d: object,
    *,
    profiles: Mapping[str, HardwareProfile] | None = None,
    source: str = "<inventory>",
) -> Inventory:
    """Validate a decoded inventory file; device models are checked against `profiles`."""
    with _where(source):
        w = _record(d, _INVENTORY_FIELDS, "inventory")
        _check_format(w["format"])
        inventory = Inventory(
            name=w["name"],
            timezone=w["timezone"],
            zones=_records(w, "zones", "zone", _zone_from_wire),
            devices=_records(w, "devices", "device", _device_from_wire),
        )
        _check_models(inventory.devices, load_profiles() if profiles is None else profiles)
        return inventory


def profiles_from_dict(d: object, *, source: str = "<profiles>") -> dict[str, HardwareProfile]:
    """Validate a decoded profiles file into profiles by id."""
    with _where(source):
        w = _record(d, _PROFILES_FILE_FIELDS, "profiles file")
        _check_format(w["format"])
        profiles = _records(w, "profiles", "profile", _profile_from_wire)
        return _index(profiles, "profile")


def _read_json(resource: Traversable | Path, source: str) -> object:
    """The decoded JSON of a file; InventoryError if it cannot be read or parsed."""
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{source}: cannot read: {exc}") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys)
    except json.JSONDecodeError as exc:
        raise InventoryError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except InventoryError as exc:
        raise InventoryError(f"{source}: {exc}") from exc


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json would keep the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        repeated = sorted({k for k, _ in pairs if [p[0] for p in pairs].count(k) > 1})
        raise InventoryError(f"key {repeated[0]!r} appears twice in one JSON object")
    return obj


def _check_format(value: object) -> None:
    """Only files of this module's FORMAT are read."""
    if isinstance(value, bool) or value != FORMAT:
        raise InventoryError(f"format {value!r} is not supported (expected {FORMAT})")


def _record(d: object, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """`d` as a JSON object with exactly the fields `allowed`."""
    w = f.obj(d, what)
    unknown, missing = sorted(w.keys() - allowed), sorted(allowed - w.keys())
    if unknown:
        raise InventoryError(f"unknown field {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
    if missing:
        raise InventoryError(f"missing field {missing[0]!r}")
    return w


def _records(w: Mapping[str, Any], key: str, what: str, build: Callable[[object], T]) -> tuple[T, ...]:
    """The records of array `key`, each built inside a label naming it."""
    items = w[key]
    if not isinstance(items, list):
        raise InventoryError(f"{key!r} must be an array")
    built: list[T] = []
    for i, item in enumerate(items):
        with _where(_label(key, what, i, item)):
            built.append(build(item))
    return tuple(built)


def _label(key: str, what: str, index: int, item: object) -> str:
    """How an error names a record: by its id if it has a usable one, else by position."""
    rid = item.get("id") if isinstance(item, dict) else None
    return f"{what} {rid!r}" if isinstance(rid, str) and rid else f"{key}[{index}]"


def _zone_from_wire(d: object) -> Zone:
    """A zone record."""
    w = _record(d, _ZONE_FIELDS, "zone")
    return Zone(id=w["id"], name=w["name"], kind=w["kind"], parent=w["parent"])


def _device_from_wire(d: object) -> DeviceSpec:
    """A device record."""
    w = _record(d, _DEVICE_FIELDS, "device")
    return DeviceSpec(
        id=w["id"],
        name=w["name"],
        zone=w["zone"],
        model=w["model"],
        lat=w["lat"],
        lon=w["lon"],
        network=w["network"],
    )


def _profile_from_wire(d: object) -> HardwareProfile:
    """A hardware profile record."""
    w = _record(d, _PROFILE_FIELDS, "profile")
    return HardwareProfile(
        id=w["id"],
        vendor=w["vendor"],
        description=w["description"],
        codecs=tuple(f.str_list(w["codecs"], "codecs")),
        amplifier_watts=w["amplifier_watts"],
        max_volume=w["max_volume"],
        storage_mb=w["storage_mb"],
        networks=tuple(_member(Network, n, "network") for n in f.str_list(w["networks"], "networks")),
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
