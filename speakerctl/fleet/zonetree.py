"""The zone tree: the zone record and the one owner of every walk over it (up, down, depth, order, checks)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from speakerctl.errors import InventoryError
from speakerctl.fleet.validate import member, text, valid_id
from speakerctl.i18n import LANGUAGES, N_, _, translations

PATH_SEPARATOR: Final = " › "


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
    SPECIAL_ZONE = "special_zone"
    """Đặc khu: an island zone at commune level on the 2025 map (Law on Local Government 2025)."""

    @property
    def label(self) -> str:
        """The kind as the law names it, in the language in use: tỉnh, thành phố, xã, phường, đặc khu…"""
        return _(_KIND_NAMES[self])


_KIND_NAMES: Final = {
    ZoneKind.PROVINCE: N_("province"),
    ZoneKind.CITY: N_("city"),
    ZoneKind.TOWN: N_("town"),
    ZoneKind.DISTRICT: N_("district"),
    ZoneKind.WARD: N_("ward"),
    ZoneKind.COMMUNE: N_("commune"),
    ZoneKind.TOWNSHIP: N_("township"),
    ZoneKind.HAMLET: N_("hamlet"),
    ZoneKind.SPECIAL_ZONE: N_("special zone"),
}
"""Vietnamese: tỉnh, thành phố, thị xã, huyện, phường, xã, thị trấn, ấp, đặc khu (see the catalogue)."""


def kind_names(kind: ZoneKind) -> tuple[str, ...]:
    """The kind in every language the interface speaks (to find "huyen ke sach" and "district ke sach")."""
    return tuple(dict.fromkeys(translations(code).gettext(_KIND_NAMES[kind]) for code in LANGUAGES))


def kind_name(kind: str) -> str:
    """A zone kind (the enum or its stored value) for people; an unknown value as it is."""
    try:
        return ZoneKind(kind).label
    except ValueError:
        return kind


@dataclass(frozen=True, slots=True)
class Zone:
    """An administrative area that broadcasts can target; `parent` is None for the root."""

    id: str
    name: str
    kind: ZoneKind
    parent: str | None = None

    def __post_init__(self) -> None:
        valid_id(self.id, "id")
        object.__setattr__(self, "name", text(self.name, "name"))
        object.__setattr__(self, "kind", member(ZoneKind, self.kind, "kind"))
        if self.parent is not None:
            valid_id(self.parent, "parent")
        if self.parent == self.id:
            raise InventoryError(f"parent {self.parent!r} is the zone itself")


class ZoneTree:
    """Zones by id with their parents, in the order given; level 0 is the root (the province).

    The walks tolerate a partial tree (a zone whose parent is not here counts as a root), as the store
    may hold; `check()` is what an inventory must pass: parents exist, no cycle, exactly one root.
    """

    def __init__(self, zones: Iterable[Zone]) -> None:
        self.zones: dict[str, Zone] = {z.id: z for z in zones}
        self.order = list(self.zones)
        self._children: dict[str, list[Zone]] = {}
        for zone in self.zones.values():
            if zone.parent is not None:
                self._children.setdefault(zone.parent, []).append(zone)

    def check(self) -> None:
        """InventoryError unless every parent exists, no zone is its own ancestor and there is one root."""
        for zone in self.zones.values():
            if zone.parent is not None and zone.parent not in self.zones:
                raise InventoryError(f"zone {zone.id!r}: parent {zone.parent!r} does not exist")
        for zone in self.zones.values():
            _check_reaches_root(zone, self.zones)
        roots = [z.id for z in self.zones.values() if z.parent is None]
        if len(roots) != 1:
            found = ", ".join(repr(r) for r in roots) or "none"
            raise InventoryError(f"the zone tree needs exactly one root (parent null), found {found}")

    def children(self, zone_id: str) -> tuple[Zone, ...]:
        """The zones directly under `zone_id`, in the order given."""
        return tuple(self._children.get(zone_id, ()))

    def roots(self) -> tuple[Zone, ...]:
        """The zones whose parent is not in the tree."""
        return tuple(z for z in self.zones.values() if z.parent not in self.zones)

    def ancestors(self, zone_id: str) -> list[str]:
        """`zone_id` and its ancestors, from the root down (empty for an unknown zone)."""
        chain: list[str] = []
        current: str | None = zone_id
        while current is not None and current in self.zones and len(chain) <= len(self.zones):
            chain.append(current)
            current = self.zones[current].parent
        return list(reversed(chain))

    def depth(self, zone_id: str) -> int:
        """0 for a root zone."""
        return len(self.ancestors(zone_id)) - 1

    def at_level(self, zone_id: str, level: int) -> str:
        """The ancestor of `zone_id` at `level` (1: the district), or `zone_id` if it is above it."""
        chain = self.ancestors(zone_id)
        return chain[min(level, len(chain) - 1)]

    def unknown(self, zone_ids: Iterable[str]) -> list[str]:
        """Those of `zone_ids` that are not in the tree, sorted."""
        return sorted(set(zone_ids) - self.zones.keys())

    def subtree(self, zone_ids: Collection[str]) -> frozenset[str]:
        """`zone_ids` and every zone below them, at any depth (unknown ids are left out)."""
        found: set[str] = set()
        todo = [z for z in zone_ids if z in self.zones]
        while todo:
            zone_id = todo.pop()
            if zone_id not in found:
                found.add(zone_id)
                todo.extend(c.id for c in self._children.get(zone_id, ()))
        return frozenset(found)

    def name(self, zone_id: str) -> str:
        """The zone's name (its id if unknown)."""
        zone = self.zones.get(zone_id)
        return zone.name if zone else zone_id

    def path(self, zone_id: str) -> str:
        """Names from the root down, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
        return PATH_SEPARATOR.join(self.name(z) for z in self.ancestors(zone_id))

    def tree_order(self) -> list[str]:
        """Every zone, each followed by its subtree (depth first, in the order given)."""
        out: list[str] = []
        todo = [z.id for z in reversed(self.roots())]
        while todo:
            zone_id = todo.pop()
            out.append(zone_id)
            todo.extend(reversed([c.id for c in self._children.get(zone_id, ())]))
        return out


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


def zone_title(name: str, kind: str) -> str:
    """A zone as people name it: "xã An Mỹ" / "An Mỹ (commune)"; "Phường 1" already says its kind."""
    label = kind_name(kind)
    if name.casefold().startswith(label.casefold() + " "):
        return name
    return _("{name} ({kind})").format(name=name, kind=label)
