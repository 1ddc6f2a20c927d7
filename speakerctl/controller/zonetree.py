"""The zone tree as the reports see it: depth, names, and the district (or any level) of a zone."""

from __future__ import annotations

from collections.abc import Sequence

from speakerctl.store import ZoneInfo

PATH_SEPARATOR = " › "


class ZoneTree:
    """Zones by id with their parents; level 0 is the root (the province)."""

    def __init__(self, zones: Sequence[ZoneInfo]) -> None:
        self.zones = {z.id: z for z in zones}
        self.order = [z.id for z in zones]

    def ancestors(self, zone_id: str) -> list[str]:
        """`zone_id` and its ancestors, from the root down."""
        chain: list[str] = []
        current: str | None = zone_id
        while current is not None and current in self.zones and len(chain) <= len(self.zones):
            chain.append(current)
            current = self.zones[current].parent_id
        return list(reversed(chain))

    def depth(self, zone_id: str) -> int:
        """0 for a root zone."""
        return len(self.ancestors(zone_id)) - 1

    def at_level(self, zone_id: str, level: int) -> str:
        """The ancestor of `zone_id` at `level` (1: the district), or `zone_id` if it is above it."""
        chain = self.ancestors(zone_id)
        return chain[min(level, len(chain) - 1)]

    def name(self, zone_id: str) -> str:
        """The zone's name (its id if unknown)."""
        zone = self.zones.get(zone_id)
        return zone.name if zone else zone_id

    def path(self, zone_id: str) -> str:
        """Names from the root down, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
        return PATH_SEPARATOR.join(self.name(z) for z in self.ancestors(zone_id))

    def tree_order(self) -> list[str]:
        """Every zone, each followed by its subtree (depth first, in inventory order)."""
        children: dict[str | None, list[str]] = {}
        for zone_id in self.order:
            children.setdefault(self.zones[zone_id].parent_id, []).append(zone_id)
        out: list[str] = []
        todo = list(reversed([z for z in self.order if self.zones[z].parent_id not in self.zones]))
        while todo:
            zone_id = todo.pop()
            out.append(zone_id)
            todo.extend(reversed(children.get(zone_id, [])))
        return out
